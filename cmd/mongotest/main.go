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

// errUsage reports bad flags, which the flag package has already printed.
var errUsage = errors.New("usage")

func main() {
	switch err := run(os.Args[1:]); {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, err) // errors from package mongotest name it already
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
		return errUsage
	}

	log, err := zap.NewProduction() // JSON to stderr
	if err != nil {
		return fmt.Errorf("mongotest: create logger: %w", err)
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
		return fmt.Errorf("mongotest: print URI: %w", err)
	}

	<-ctx.Done()
	log.Info("shutting down", zap.String("reason", context.Cause(ctx).Error()))
	return srv.Close()
}
