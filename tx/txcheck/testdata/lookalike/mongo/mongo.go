// Package mongo is not the driver: same names, another import path.
package mongo

import "context"

type Collection struct{}

func (c *Collection) InsertOne(ctx context.Context, doc any) (any, error) { return nil, nil }

type Session struct{}

func (s *Session) WithTransaction(ctx context.Context, fn func(ctx context.Context) (any, error)) (any, error) {
	return fn(ctx)
}
