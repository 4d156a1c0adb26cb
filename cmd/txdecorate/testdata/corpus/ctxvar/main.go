// Command ctxvar has package-level names like those the generated code
// uses: its ctx must never be the one a transaction runs on.
package main

import (
	"context"
	"fmt"
)

//go:generate txdecorate -type Store

// ctx is the program's root context.
var ctx = context.Background()

// Names of the package, named like the generated code's.
var (
	err    error
	next   = 1
	r      = "r"
	d      = 2
	runner = "runner"
	a1     = 3
	z0     = 4
)

// Store is decorated.
type Store interface {
	// Save returns only an error.
	Save(ctx context.Context, v int) error
	// Load returns a value.
	Load(ctx context.Context, id string) (int, error)
	// Many returns two values.
	Many(ctx context.Context, ids ...string) ([]int, int, error)
	// Unnamed has no parameter names.
	Unnamed(context.Context, string) error
}

func main() {
	fmt.Println(ctx, err, next, r, d, runner, a1, z0)
}
