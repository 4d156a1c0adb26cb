// Package dotimport dot-imports the package of its signatures' types.
package dotimport

import (
	. "context"

	. "github.com/txkit/txkit/cmd/txdecorate/testdata/corpus/other"
)

// Service is decorated.
type Service interface {
	Closer
	Get(ctx Context, id string) (*Item, error)
}
