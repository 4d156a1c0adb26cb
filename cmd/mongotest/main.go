// Command mongotest runs the in-process MongoDB-compatible server of
// package mongotest as a standalone program.
//
// It prints the server's connection string on one line of standard output
// once it is listening, logs to standard error and serves until SIGINT or
// SIGTERM:
//
//	$ mongotest -addr 127.0.0.1:27017 -replset rs0
//	mongodb://127.0.0.1:27017/?replicaSet=rs0
//
// The server has NO AUTHENTICATION: whoever reaches its port can read and
// rewrite everything. It listens on the loopback interface unless -addr
// says otherwise, and says so loudly on standard error when it starts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/txkit/txkit/mongotest"
)

// errUsage reports bad flags, which the flag package has already printed.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, err) // errors from package mongotest name it already
		os.Exit(1)
	}
}

// run serves until ctx is done, printing the URI on stdout and logging
// JSON to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mongotest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:27017", "TCP address to listen on; the server has no authentication, so keep it on loopback")
	replSet := fs.String("replset", "rs0", "replica set name to report")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}

	log := zap.New(zapcore.NewCore(
		zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(stderr),
		zap.InfoLevel,
	))
	defer func() { _ = log.Sync() }()

	srv, err := mongotest.NewServer(
		mongotest.WithAddr(*addr),
		mongotest.WithReplicaSet(*replSet),
		mongotest.WithLogger(log),
	)
	if err != nil {
		return err
	}
	warning := "mongotest: WARNING: NO AUTHENTICATION: any process that reaches " + srv.Addr() + " can read and change all data"
	if !loopback(srv.Addr()) {
		warning += "; it listens beyond loopback: anyone on the network can"
	}
	fmt.Fprintln(stderr, warning)
	log.Warn("no authentication", zap.String("addr", srv.Addr()), zap.Bool("loopback", loopback(srv.Addr())))
	if _, err := fmt.Fprintln(stdout, srv.URI()); err != nil {
		_ = srv.Close()
		return fmt.Errorf("mongotest: print URI: %w", err)
	}

	<-ctx.Done()
	log.Info("shutting down", zap.String("reason", context.Cause(ctx).Error()))
	return srv.Close()
}

// loopback reports whether addr (host:port) is on the loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
