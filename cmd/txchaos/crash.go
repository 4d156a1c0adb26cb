package main

import (
	"context"
	"errors"
	"io"

	"github.com/txkit/txkit/internal/chaos"
)

func runWorker(ctx context.Context, f *flags) error { return errors.New("todo") }

func runCrash(ctx context.Context, f *flags, uri string, stdout io.Writer) (*chaos.Report, error) {
	return nil, errors.New("todo")
}

func startHTTP(ctx context.Context, uri, db string) (func(), chaos.Backend, error) {
	return nil, nil, errors.New("todo")
}
