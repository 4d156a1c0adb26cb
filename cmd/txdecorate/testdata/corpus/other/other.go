// Package other declares an interface that testdata/full embeds.
package other

import "context"

// Closer is embedded by full.Service.
type Closer interface {
	// Close passes through: it takes no ctx.
	Close() error
	// Flush is wrapped with the defaults of the embedding interface.
	Flush(ctx context.Context) error
}

// Item is a type from another package.
type Item struct{ ID string }
