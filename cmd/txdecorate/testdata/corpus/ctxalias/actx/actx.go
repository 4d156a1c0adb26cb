// Package actx aliases context.Context in another package.
package actx

import "context"

// C is context.Context.
type C = context.Context
