package mongotest

import (
	"time"

	"go.uber.org/zap"
)

// An Option configures a [Server].
type Option interface {
	apply(*serverOptions)
}

type serverOptions struct {
	addr        string
	replSet     string
	logger      *zap.Logger
	txnLifetime time.Duration
	listen      bool
}

func defaultOptions() serverOptions {
	return serverOptions{
		addr:        "127.0.0.1:0",
		replSet:     "rs0",
		logger:      zap.NewNop(),
		txnLifetime: 60 * time.Second,
		listen:      true,
	}
}

type optionFunc func(*serverOptions)

func (f optionFunc) apply(o *serverOptions) { f(o) }

// WithAddr sets the TCP address the server listens on. The default,
// "127.0.0.1:0", picks a free loopback port.
func WithAddr(addr string) Option {
	return optionFunc(func(o *serverOptions) { o.addr = addr })
}

// WithReplicaSet sets the replica set name the server reports in hello
// replies and in [Server.URI]. The default is "rs0".
func WithReplicaSet(name string) Option {
	return optionFunc(func(o *serverOptions) { o.replSet = name })
}

// WithLogger sets the logger for server events. A nil logger, like the
// default, discards them.
func WithLogger(log *zap.Logger) Option {
	return optionFunc(func(o *serverOptions) {
		if log == nil {
			log = zap.NewNop()
		}
		o.logger = log
	})
}

// WithTransactionLifetimeLimit sets how long a transaction may stay open
// before the server aborts it, like MongoDB's transactionLifetimeLimitSeconds.
// The default is 60s.
func WithTransactionLifetimeLimit(d time.Duration) Option {
	return optionFunc(func(o *serverOptions) { o.txnLifetime = d })
}

// WithoutListener makes the server open no network port at all: clients
// connect only in memory, through [Server.Dialer] (or
// [Server.ClientOptions]). No other process can reach such a server, and
// its connections make no system calls. [WithAddr] is then ignored.
func WithoutListener() Option {
	return optionFunc(func(o *serverOptions) { o.listen = false })
}
