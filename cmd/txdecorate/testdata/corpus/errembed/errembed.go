// Package errembed embeds the built-in error interface.
package errembed

import "context"

// Failure is an error with a transactional method.
type Failure interface {
	error
	Retry(ctx context.Context) error
}
