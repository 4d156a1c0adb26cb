// Command mongotest runs the in-process MongoDB-compatible server of
// package mongotest as a standalone program.
//
// It prints the server's connection string on one line of standard output
// once it is listening, logs to standard error and serves until SIGINT or
// SIGTERM:
//
//	$ mongotest -addr 127.0.0.1:27017 -replset rs0
//	mongodb://127.0.0.1:27017/?replicaSet=rs0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/txkit/txkit/mongotest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mongotest:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mongotest", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:27017", "TCP address to listen on")
	replSet := fs.String("replset", "rs0", "replica set name to report")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}

	log, err := zap.NewProduction() // JSON to stderr
	if err != nil {
		return fmt.Errorf("create logger: %w", err)
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := mongotest.NewServer(
		mongotest.WithAddr(*addr),
		mongotest.WithReplicaSet(*replSet),
		mongotest.WithLogger(log),
	)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(os.Stdout, srv.URI()); err != nil {
		_ = srv.Close()
		return fmt.Errorf("print URI: %w", err)
	}

	<-ctx.Done()
	log.Info("shutting down", zap.String("reason", context.Cause(ctx).Error()))
	return srv.Close()
}
