// Command txchaos runs the credits and payments modules under a concurrent
// workload while it injects faults (MongoDB fail points, cancelled and
// expiring contexts, optionally a killed client process), and checks the
// ledger's money invariants as it goes and at the end.
//
//	go run ./cmd/txchaos -duration 20s -seed 1
//
// It runs against an embedded mongotest server, or the replica set at
// $MONGODB_URI (which must allow configureFailPoint: enableTestCommands).
// The last line of its output is exactly
//
//	txchaos: N ops, F faults, C checks, V violations
//
// and it exits with status 1 when V > 0. docs/chaos.md has the rest.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/chaos"
	"github.com/txkit/txkit/mongotest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// flags are the command line.
type flags struct {
	duration   time.Duration
	seed       uint64
	workers    int
	accounts   int
	hot        int
	rates      chaos.Rates
	checkEvery time.Duration
	lateAfter  time.Duration
	maxOpen    time.Duration
	progress   time.Duration
	jsonPath   string
	crash      bool
	crashEvery time.Duration
	http       bool
	app        string
	db         string

	// Set by a crash-mode parent for the worker process it starts.
	worker string // the worker's log file
	uri    string
	epoch  int
}

func parse(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flagSet(f)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.workers < 1 || f.accounts < 2 || f.hot < 0 || f.duration <= 0 || f.checkEvery <= 0 {
		return nil, errors.New("-workers ≥ 1, -accounts ≥ 2, -hot ≥ 0, -duration and -check-every > 0")
	}
	if f.http && f.crash {
		return nil, errors.New("-http and -crash do not combine")
	}
	if f.seed == 0 {
		f.seed = uint64(time.Now().UnixNano()%1_000_000 + 1)
	}
	if f.db == "" {
		f.db = fmt.Sprintf("txchaos_%d", f.seed)
	}
	return f, nil
}

// flagSet returns the command's flags, bound to f.
func flagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("txchaos", flag.ContinueOnError)
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "how long to run the workload")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of every random choice (0: pick one and print it)")
	fs.IntVar(&f.workers, "workers", 8, "concurrent workload clients")
	fs.IntVar(&f.accounts, "accounts", 24, "accounts")
	fs.IntVar(&f.hot, "hot", 3, "hot accounts, which take half of the traffic")
	fs.Float64Var(&f.rates.Transient, "transient", 2, "transient errors and write conflicts armed per second")
	fs.Float64Var(&f.rates.UnknownCommit, "unknown-commit", 1, "UnknownTransactionCommitResult commits armed per second")
	fs.Float64Var(&f.rates.WriteConcern, "write-concern", 1, "write-concern errors armed per second")
	fs.Float64Var(&f.rates.Close, "close", 1, "closeConnection faults armed per second")
	fs.Float64Var(&f.rates.Block, "block", 1, "blockConnection faults armed per second")
	fs.Float64Var(&f.rates.Cancel, "cancel", 0.05, "probability that an operation's context is cancelled or expires at a random point")
	fs.DurationVar(&f.checkEvery, "check-every", 2*time.Second, "period of the continuous invariant checks (a check that took d is followed by the next no sooner than 5·d after it began)")
	fs.DurationVar(&f.lateAfter, "late", chaos.DefaultLateAfter, "how long an operation may run on after its context ended before it is a violation")
	fs.DurationVar(&f.maxOpen, "max-open", 0, "the longest a workload transaction may stay open on the server before it is a violation (0: 3/4 of the server's transactionLifetimeLimitSeconds; negative: not watched; never with -crash, whose killed workers leave theirs to the limit)")
	fs.DurationVar(&f.progress, "progress", 5*time.Second, "period of the progress line (0: none)")
	fs.StringVar(&f.jsonPath, "json", "", "write a JSON report to this file")
	fs.BoolVar(&f.crash, "crash", false, "run the workload in a child process that is killed and restarted; the server outlives it")
	fs.DurationVar(&f.crashEvery, "crash-every", 4*time.Second, "with -crash, the mean time between kills")
	fs.BoolVar(&f.http, "http", false, "drive the workload through the app's HTTP API (a child process of the app)")
	fs.StringVar(&f.app, "app", "", "with -http, the app's binary (default: go build ./app)")
	fs.StringVar(&f.db, "db", "", "database name (default txchaos_<seed>); it must not hold anything else")
	fs.StringVar(&f.worker, "worker", "", "internal: run as a crash-mode worker logging to this file")
	fs.StringVar(&f.uri, "uri", "", "internal: the crash-mode worker's server")
	fs.IntVar(&f.epoch, "epoch", 0, "internal: the crash-mode worker's generation")
	return fs
}

// appName is the workload client's app name: the fail points aim at it.
const appName = "txchaos-workload"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "txchaos:", err)
		return 2
	}
	if f.worker != "" {
		if err := runWorker(ctx, f); err != nil {
			fmt.Fprintln(stderr, "txchaos worker:", err)
			return 1
		}
		return 0
	}

	uri := os.Getenv("MONGODB_URI")
	if uri == "" {
		// A transaction left open (by a killed worker, or a client that
		// gave up) blocks writers of its documents until the server's
		// lifetime limit; MongoDB's 60s would stall a short run.
		lifetime := 10 * time.Second
		if f.crash {
			lifetime = 3 * time.Second
		}
		srv, err := mongotest.NewServer(mongotest.WithTransactionLifetimeLimit(lifetime))
		if err != nil {
			fmt.Fprintln(stderr, "txchaos:", err)
			return 1
		}
		defer srv.Close()
		uri = srv.URI()
		fmt.Fprintf(stdout, "txchaos: seed %d, embedded mongotest at %s\n", f.seed, uri)
	} else {
		fmt.Fprintf(stdout, "txchaos: seed %d, MONGODB_URI\n", f.seed)
	}

	var rep *chaos.Report
	if f.crash {
		rep, err = runCrash(ctx, f, uri, stdout)
	} else {
		rep, err = runInProcess(ctx, f, uri, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "txchaos:", err)
		return 1
	}
	if f.jsonPath != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(f.jsonPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "txchaos:", err)
		}
	}
	rep.Print(stdout)
	if len(rep.Violations) > 0 || len(rep.Errors) > 0 {
		return 1
	}
	return 0
}

// connect connects a client to uri with the given app name.
func connect(ctx context.Context, uri, app string, workload bool) (*mongo.Client, error) {
	// A ShutdownInProgress the injector sends (a write concern error or an
	// unknown commit) makes the driver mark the server unknown until its
	// next heartbeat: the server's topology did not really change, so its
	// awaitable hello answers only then, as MongoDB's does. The shortest
	// heartbeat keeps that at half a second instead of 10 s of no traffic.
	opts := options.Client().ApplyURI(uri).SetAppName(app).SetServerSelectionTimeout(30 * time.Second).
		SetHeartbeatInterval(500 * time.Millisecond)
	if workload {
		opts.SetMonitor(chaos.Monitor())
	}
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx, nil); err != nil {
		_ = c.Disconnect(context.Background())
		return nil, err
	}
	return c, nil
}

func disconnect(c *mongo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Disconnect(ctx)
}

func runInProcess(ctx context.Context, f *flags, uri string, stdout io.Writer) (*chaos.Report, error) {
	client, err := connect(ctx, uri, appName, true)
	if err != nil {
		return nil, err
	}
	defer disconnect(client)
	checker, err := connect(ctx, uri, "txchaos-checker", false)
	if err != nil {
		return nil, err
	}
	defer disconnect(checker)
	if err := checker.Database(f.db).Drop(ctx); err != nil {
		return nil, err
	}
	maxOpen := f.maxOpen
	if maxOpen == 0 {
		limit, err := chaos.LifetimeLimit(ctx, checker.Database("admin"))
		if err != nil {
			return nil, fmt.Errorf("%w (set -max-open, or -max-open=-1s not to watch open transactions)", err)
		}
		maxOpen = chaos.DefaultMaxOpen(limit)
	}
	cfg := chaos.Config{
		Seed: f.seed, Duration: f.duration, Workers: f.workers, Accounts: f.accounts, Hot: f.hot,
		Rates: f.rates, CheckEvery: f.checkEvery, Progress: f.progress, LateAfter: f.lateAfter,
		MaxOpen: max(maxOpen, 0), Client: client, Checker: checker, AppName: appName, DB: f.db, Out: stdout,
	}
	if f.http {
		// Schema first: the app's own start would race the drop above.
		if err := chaos.NewServices(checker.Database(f.db)).EnsureSchema(ctx); err != nil {
			return nil, err
		}
		backend, stop, err := startApp(ctx, f.app, uri, f.db)
		if err != nil {
			return nil, err
		}
		defer stop()
		cfg.Backend, cfg.AppName = backend, appClientName
	}
	return chaos.Run(ctx, cfg)
}
