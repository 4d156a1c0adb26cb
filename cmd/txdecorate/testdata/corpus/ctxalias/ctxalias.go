// Package ctxalias names context.Context through aliases.
package ctxalias

import (
	"context"

	"github.com/txkit/txkit/cmd/txdecorate/testdata/corpus/ctxalias/actx"
)

// Ctx is context.Context.
type Ctx = context.Context

// Service is decorated.
type Service interface {
	Local(ctx Ctx, n int) error
	Remote(ctx actx.C, n int) (int, error)
	Plain(ctx context.Context) error
}
