// Package noctx has an interface whose methods take no ctx: everything
// passes through, and the generated file must not import context.
package noctx

// Closer is decorated.
type Closer interface {
	Close() error
	Name() string
}
