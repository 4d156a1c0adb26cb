// Package ctx is a package named ctx, like a parameter of every generated
// method.
package ctx

// Item is a type of package ctx.
type Item struct{ ID string }
