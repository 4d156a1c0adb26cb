// Package ctxname uses a package named ctx in the signatures: the
// generated file imports it as ctx, so the parameters must be named
// otherwise, and used.
package ctxname

import (
	"context"

	"github.com/txkit/txkit/cmd/txdecorate/testdata/corpus/ctx"
)

// Store is decorated.
type Store interface {
	Put(ctx context.Context, item ctx.Item) error
	Get(c context.Context, id string) (ctx.Item, error)
	List(context.Context) ([]ctx.Item, int, error)
}
