// Package mongo is named like the driver's package.
package mongo

// Filter is a type of this package mongo.
type Filter struct{ Key string }
