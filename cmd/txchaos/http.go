package main

import (
	"context"
	"errors"

	"github.com/txkit/txkit/internal/chaos"
)

func startHTTP(ctx context.Context, uri, db string) (func(), chaos.Backend, error) {
	return nil, nil, errors.New("todo")
}
