// Package full exercises every shape of method txdecorate handles.
package full

import (
	"context"
	ctxpkg "context"
	"time"

	"github.com/txkit/txkit/cmd/txdecorate/testdata/corpus/other"
)

// tx is a package-level name that clashes with the tx import: the
// generated file must import package tx under another name.
const tx = "clash"

// Account is a type named like a parameter of Service.Rename.
type Account struct{}

// Service is decorated.
//
//txkit:timeout=1500ms
//txkit:max_attempts=5
type Service interface {
	other.Closer

	// Get has unnamed parameters and a result from another package.
	Get(context.Context, string) (*other.Item, error)

	// Put returns only an error.
	//
	//txkit:propagation=mandatory
	Put(ctx context.Context, item other.Item) error

	// Many has three results.
	//txkit:name=svc.many
	Many(ctx ctxpkg.Context, ids ...string) (map[string]other.Item, int, error)

	// Rename has parameters named like the names the generated code uses.
	Rename(ctx context.Context, Account Account, d, r0, err string) (Account, error) //txkit:propagation=requires_new

	// Wait has a parameter of type time.Duration and an overriding timeout.
	//
	//txkit:timeout=2h
	//txkit:propagation=not_supported
	Wait(ctx context.Context, d time.Duration) error

	// Read is not transactional.
	//
	//txkit:none
	Read(ctx context.Context, id string) (string, error)

	// NoError has a ctx but returns no error: it passes through.
	NoError(ctx context.Context) int

	// NoResult passes through.
	NoResult(s string)

	// Blank has a blank parameter name.
	Blank(_ context.Context, _ int) error
}
