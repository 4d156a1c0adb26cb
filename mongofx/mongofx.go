// Package mongofx provides a *mongo.Client and a *mongo.Database to an Fx
// application, with their lifecycle: the client is pinged when the
// application starts and disconnected when it stops.
//
//	fx.New(
//		fx.Supply(mongofx.Config{URI: os.Getenv("MONGODB_URI"), Database: "credits"}),
//		mongofx.Module,
//		tx.Module,
//		…
//	)
//
// # Embedded mode
//
// With an empty URI and Embedded set, the module starts an in-process
// mongotest server and connects to it in memory, through the server's
// dialer: no network port is opened, so no other process can reach (and
// rewrite) the data, which has no authentication. The application runs
// with no MongoDB installed. Its data lives in memory only and is gone
// when the application stops; the module says so loudly in the log.
// Tests and demos reach the server through [Embedded], for instance to
// set fail points.
package mongofx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/txkit/txkit/mongotest"
)

// Module provides a *mongo.Client built from the graph's [Config], and the
// *mongo.Database that Config.Database names (see [NewDatabase]).
var Module = fx.Module("mongofx", fx.Provide(newClient, NewDatabase))

// Embedded gives tests and demos the in-process server of embedded mode.
// Server is nil when the client connects to Config.URI.
type Embedded struct {
	Server *mongotest.Server
}

// result is what [Module] provides: the client and the embedded server.
type result struct {
	fx.Out

	Client   *mongo.Client
	Embedded *Embedded
}

func newClient(p Params) (result, error) {
	c, srv, err := connect(p)
	return result{Client: c, Embedded: &Embedded{Server: srv}}, err
}

// Config says where and how to connect.
type Config struct {
	// URI is the connection string, e.g.
	// "mongodb://localhost:27017/?replicaSet=rs0". Transactions need a
	// replica set or a sharded cluster.
	URI string
	// Database names the database [NewDatabase] provides; when empty, the
	// database of the URI's path (mongodb://host/<db>), if any.
	Database string
	// AppName is reported to the server and shows in its logs; the
	// driver's default when empty.
	AppName string
	// ConnectTimeout bounds the opening of each connection; the driver's
	// default (30s) when zero.
	ConnectTimeout time.Duration
	// ServerSelectionTimeout bounds the wait for a suitable server, and so
	// the start-up ping; the driver's default (30s) when zero.
	ServerSelectionTimeout time.Duration
	// Embedded, with an empty URI, starts an in-memory mongotest server
	// and connects to it. Ignored when URI is set.
	Embedded bool
}

// Params are the dependencies of [New].
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Logger    *zap.Logger `optional:"true"`
}

// ErrNoURI is returned by [New] when Config has neither a URI nor Embedded.
var ErrNoURI = errors.New("mongofx: Config.URI is empty; set it, or set Embedded for an in-memory server")

// New returns a client for p.Config and registers its lifecycle: ping on
// start, disconnect on stop (then, in embedded mode, close the server).
// The driver connects lazily, so New itself does no network I/O.
func New(p Params) (*mongo.Client, error) {
	c, _, err := connect(p)
	return c, err
}

func connect(p Params) (*mongo.Client, *mongotest.Server, error) {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("mongofx")

	uri := p.Config.URI
	var srv *mongotest.Server
	opts := options.Client()
	if uri == "" {
		if !p.Config.Embedded {
			return nil, nil, ErrNoURI
		}
		var err error
		srv, err = mongotest.NewServer(mongotest.WithoutListener(), mongotest.WithLogger(log.Named("mongotest")))
		if err != nil {
			return nil, nil, fmt.Errorf("mongofx: start embedded server: %w", err)
		}
		uri = srv.URI()
		opts.SetDialer(srv.Dialer())
		log.Warn("EMBEDDED IN-MEMORY MONGODB: data lives in memory only and is lost when the application stops; set Config.URI for a real deployment",
			zap.String("uri", uri), zap.Bool("network_port", false))
	}

	client, err := mongo.Connect(clientOptions(p.Config, uri), opts)
	if err != nil {
		if srv != nil {
			_ = srv.Close()
		}
		return nil, nil, fmt.Errorf("mongofx: connect: %w", err)
	}

	// Fx runs OnStop only for hooks whose OnStart succeeded, so a failed
	// ping releases the client (and the server) itself.
	stop := func(ctx context.Context) error {
		err := client.Disconnect(ctx)
		if err != nil {
			err = fmt.Errorf("mongofx: disconnect: %w", err)
		}
		if srv != nil {
			if cerr := srv.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("mongofx: close embedded server: %w", cerr))
			}
		}
		return err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := client.Ping(ctx, nil); err != nil {
				err = fmt.Errorf("mongofx: ping %s: %w", redact(uri), err)
				return errors.Join(err, stop(context.WithoutCancel(ctx)))
			}
			log.Info("connected to MongoDB", zap.String("uri", redact(uri)), zap.Bool("embedded", srv != nil))
			return nil
		},
		OnStop: stop,
	})
	return client, srv, nil
}

// ErrNoDatabase is returned by [NewDatabase] when neither Config.Database
// nor the URI names a database.
var ErrNoDatabase = errors.New("mongofx: no database: set Config.Database (or name one in the URI's path)")

// DatabaseParams are the dependencies of [NewDatabase].
type DatabaseParams struct {
	fx.In

	Client *mongo.Client
	Config Config
}

// NewDatabase returns the database Config.Database names on p.Client, or
// the URI's own database when Database is empty. Modules take the
// *mongo.Database rather than the client, so that one application can
// place them all in one database chosen in one place.
func NewDatabase(p DatabaseParams) (*mongo.Database, error) {
	name := p.Config.Database
	if name == "" && p.Config.URI != "" {
		cs, err := connstring.ParseAndValidate(p.Config.URI)
		if err != nil {
			return nil, fmt.Errorf("mongofx: parse URI: %w", err)
		}
		name = cs.Database
	}
	if name == "" {
		return nil, ErrNoDatabase
	}
	return p.Client.Database(name), nil
}

func clientOptions(cfg Config, uri string) *options.ClientOptions {
	opts := options.Client().ApplyURI(uri)
	if cfg.AppName != "" {
		opts.SetAppName(cfg.AppName)
	}
	if cfg.ConnectTimeout > 0 {
		opts.SetConnectTimeout(cfg.ConnectTimeout)
	}
	if cfg.ServerSelectionTimeout > 0 {
		opts.SetServerSelectionTimeout(cfg.ServerSelectionTimeout)
	}
	return opts
}
