// Package tx is named like txkit's package tx.
package tx

// Receipt is a type of this package tx.
type Receipt struct{ ID string }

// Box is a generic type of another package.
type Box[T any] struct{ V T }
