package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/txkit/txkit/app/api"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/mongofx"
	"github.com/txkit/txkit/tx"
)

// newApp returns the service's application; extra options come last, so
// that callers (the demo) can populate or decorate.
func newApp(cfg Config, extra ...fx.Option) *fx.App {
	return fx.New(appOptions(cfg), fx.Options(extra...))
}

// appOptions composes the service: the reference for composing txkit
// modules in an Fx application. newApp and the end-to-end tests (through
// fxtest) both use it.
func appOptions(cfg Config) fx.Option {
	opts := []fx.Option{
		fx.Supply(cfg),
		fx.Provide(newLogger),
		fx.WithLogger(func(log *zap.Logger) fxevent.Logger {
			l := newFxLogger(log)
			if cfg.steps != nil {
				cfg.steps.next = l
				return cfg.steps
			}
			return l
		}),
		// Stopping drains HTTP first (its hooks were appended last), then
		// the modules' background work, then the database client.
		fx.StopTimeout(cfg.ShutdownTimeout + cfg.MongoTimeout),

		fx.Provide(mongoConfig, apiConfig, newTelemetry),
		fx.Provide(fx.Annotate(runnerObservers, fx.ResultTags(`group:"tx.options"`))),
		mongofx.Module,
		tx.Module,
		credits.Module,
		payments.Module,
		api.Module,

		fx.Provide(serverHandler, NewServer),
		fx.Invoke(func(*Server) {}),
	}
	if !cfg.embedded() {
		// The embedded server dies with the process: nothing to reap.
		opts = append(opts, fx.Provide(fx.Annotate(orphanReaping, fx.ResultTags(`group:"tx.options"`))))
	}
	if cfg.Out != nil {
		opts = append(opts, fx.Invoke(printBanner))
	}
	return fx.Options(opts...)
}

// newLogger builds the service's logger from Config.LogFormat, writing to
// standard error.
func newLogger(cfg Config) *zap.Logger {
	return buildLogger(cfg.LogFormat, zapcore.Lock(os.Stderr))
}

// buildLogger builds the service's logger: JSON, or a human format for
// "console". It never samples: the access log has exactly one line per
// request and no error is dropped. Stack traces are for panics only (the
// handler logs those itself), not for every error line.
func buildLogger(format string, out zapcore.WriteSyncer) *zap.Logger {
	var enc zapcore.Encoder
	if format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("2006-01-02 15:04:05.000Z07:00")
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		ec.StacktraceKey = ""
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "time"
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		ec.StacktraceKey = ""
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, out, zap.InfoLevel), zap.ErrorOutput(out)).Named("txkit")
}

// newFxLogger routes Fx's own events to the log at debug level (so they
// are quiet at the default info level); its errors stay errors.
func newFxLogger(log *zap.Logger) fxevent.Logger {
	l := &fxevent.ZapLogger{Logger: log.Named("fx")}
	l.UseLogLevel(zapcore.DebugLevel)
	return l
}

func mongoConfig(cfg Config) mongofx.Config {
	return mongofx.Config{
		URI:                    cfg.MongoURI,
		Database:               cfg.DB,
		AppName:                "txkit",
		Embedded:               cfg.embedded(),
		ServerSelectionTimeout: cfg.MongoTimeout,
		ConnectTimeout:         cfg.MongoTimeout,
	}
}

func apiConfig(cfg Config) api.Config {
	return api.Config{APIToken: cfg.APIToken, WebhookSecret: cfg.WebhookSecret, RequestTimeout: cfg.RequestTimeout}
}

// printBanner prints, once the server listens, where it is and, in
// embedded mode, the generated secrets with a curl that works as printed.
// It is printed, not logged: secrets never go to the log.
func printBanner(lc fx.Lifecycle, cfg Config, srv *Server) {
	lc.Append(fx.Hook{OnStart: func(context.Context) error {
		w := cfg.Out
		base := srv.URL()
		fmt.Fprintf(w, "\ntxkit credits service listening on %s\n", base)
		if cfg.embedded() {
			fmt.Fprintln(w, "DATABASE: embedded in-memory server; every change is lost when the service stops (set MONGODB_URI for a real replica set)")
		}
		if cfg.tokenGenerated {
			fmt.Fprintf(w, "generated API token (set TXKIT_API_TOKEN to choose one):\n  export TXKIT_API_TOKEN=%s\n", cfg.APIToken)
		}
		if cfg.secretGenerated {
			fmt.Fprintf(w, "generated webhook secret (set TXKIT_WEBHOOK_SECRET to choose one):\n  export TXKIT_WEBHOOK_SECRET=%s\n", cfg.WebhookSecret)
		}
		// Double quotes: the shell expands $TXKIT_API_TOKEN in them (a
		// generated token is hex, which needs no quoting).
		tok := "$TXKIT_API_TOKEN"
		if cfg.tokenGenerated {
			tok = cfg.APIToken
		}
		fmt.Fprintf(w, "try:\n  curl -s -X POST -H \"Authorization: Bearer %s\" -H 'Content-Type: application/json' -H 'Idempotency-Key: welcome-alice' -d '{\"amount\":100,\"reason\":\"welcome\"}' %s/v1/accounts/alice/credits\n", tok, base)
		fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer %s\" %s/v1/accounts/alice\n\n", tok, base)
		return nil
	}})
}

// startError is the message of a failed start: the step that failed or
// did not finish, when known, and the error.
func startError(err error, step string) string {
	if step == "" {
		return "txkit: start: " + err.Error()
	}
	return "txkit: start: step " + step + " did not finish: " + err.Error()
}

// run is main without os.Exit: it returns the process's exit code.
func run(args []string, getenv func(string) string) int {
	if len(args) > 0 && args[0] == "demo" {
		return runDemo(args[1:], os.Stdout)
	}
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "txkit:", err)
		return 2
	}
	cfg.Out = os.Stdout
	cfg.steps = &startSteps{}
	app := newApp(cfg)
	startCtx, cancel := context.WithTimeout(context.Background(), cfg.MongoTimeout+15*time.Second)
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		fmt.Fprintln(os.Stderr, startError(err, cfg.steps.step()))
		return 1
	}
	sig := <-app.Wait() // SIGINT, SIGTERM, or a fatal server error
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+cfg.MongoTimeout)
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "txkit: stop:", err)
		return 1
	}
	return sig.ExitCode
}

// sessionsCollection holds the runner's record of server sessions and the
// leases of the running processes (see tx.WithOrphanReaping).
const sessionsCollection = "tx_sessions"

// orphanReaping is the tx.Module default that lets the next process kill
// the transactions that a killed process left open, instead of leaving
// their accounts held until the server's transaction lifetime limit.
func orphanReaping(cfg Config, db *mongo.Database) tx.Option {
	return tx.WithOrphanReaping(tx.OrphanReaping{Collection: db.Collection(sessionsCollection), Instance: cfg.Instance})
}
