package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

// Config configures a [Run].
type Config struct {
	Seed     uint64
	Duration time.Duration
	Workers  int
	Accounts int
	Hot      int
	Rates    Rates
	// CheckEvery is the period of the continuous checks; an expensive
	// check spaces them more (see runChecks).
	CheckEvery time.Duration
	// Progress is the period of the progress line (0: none).
	Progress time.Duration
	// LateAfter is how long an operation may run on after its caller's
	// context ended before it breaks InvBounded (0: DefaultLateAfter).
	LateAfter time.Duration
	// MaxOpen, if set, is the longest a workload transaction may stay open
	// on the server before it breaks InvNotLeftOpen (see [OpenWatch];
	// [DefaultMaxOpen] of the server's lifetime limit is the usual bound).
	MaxOpen time.Duration

	// Client runs the workload; its app name is AppName, which the fail
	// points aim at, and it should carry [Monitor]. Checker reads the
	// ledger and arms the fail points; no fault touches it.
	Client  *mongo.Client
	Checker *mongo.Client
	AppName string
	DB      string
	// Backend, if set, replaces the modules on Client (for -http).
	Backend Backend

	Out io.Writer // progress, violations and the summary
}

// Report is the result of a run.
type Report struct {
	Seed         uint64                   `json:"seed"`
	Duration     string                   `json:"duration"`
	Workers      int                      `json:"workers"`
	Accounts     int                      `json:"accounts"`
	Hot          int                      `json:"hot"`
	Rates        Rates                    `json:"rates"`
	Ops          int                      `json:"ops"`
	OpsByKind    map[Kind]map[Outcome]int `json:"ops_by_kind"`
	Faults       int                      `json:"faults"`
	FaultsByKind map[string]int           `json:"faults_by_kind"`
	Checks       int64                    `json:"checks"`
	Latency      map[Kind]Latency         `json:"latency"`
	// OpenReads counts the reads of the open transactions (see
	// [OpenWatch]), MaxOpen their bound; 0 when they were not watched.
	OpenReads  int64       `json:"open_reads"`
	MaxOpen    string      `json:"max_open,omitempty"`
	Violations []Violation `json:"violations"`
	Errors     []string    `json:"errors,omitempty"`
}

// DefaultLateAfter is how long an operation may run on after its caller's
// context ended: a commit once sent is carried to an outcome (within the
// runner's budget, see docs/transactions.md) and credits resolves a write
// whose outcome is unknown, but neither may hold the caller for long.
const DefaultLateAfter = 30 * time.Second

// Latency is how long the operations of one kind took, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	// Slowest is the slowest operation.
	Slowest string `json:"slowest"`
}

// latencies summarises how long the operations of each kind took.
func latencies(ops []Op) map[Kind]Latency {
	byKind := map[Kind][]Op{}
	for _, o := range ops {
		if o.Outcome != Pending && !o.End.IsZero() {
			byKind[o.Kind] = append(byKind[o.Kind], o)
		}
	}
	out := map[Kind]Latency{}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for k, os := range byKind {
		sort.Slice(os, func(i, j int) bool { return os[i].End.Sub(os[i].Start) < os[j].End.Sub(os[j].Start) })
		at := func(q float64) time.Duration {
			o := os[int(q*float64(len(os)-1))]
			return o.End.Sub(o.Start)
		}
		last := os[len(os)-1]
		out[k] = Latency{P50: ms(at(0.5)), P99: ms(at(0.99)), Max: ms(last.End.Sub(last.Start)), Slowest: last.String()}
	}
	return out
}

// late returns an InvBounded violation for each operation that returned
// more than after past the end of its caller's context.
func late(ops []Op, after time.Duration) []Violation {
	if after <= 0 {
		after = DefaultLateAfter
	}
	var vs []Violation
	for _, o := range ops {
		if o.CtxEnd.IsZero() || o.End.IsZero() {
			continue
		}
		if over := o.End.Sub(o.CtxEnd); over > after {
			vs = append(vs, Violation{Invariant: InvBounded, Account: o.Account, Ops: []string{o.ID},
				Detail: fmt.Sprintf("%s returned %s after its context ended (%s; limit %s): %s",
					o.Kind, over.Round(time.Millisecond), o.Fault, after, o.Outcome)})
		}
	}
	return vs
}

// Services are the modules a run drives, built on one client.
type Services struct {
	Runner   *tx.Runner
	Credits  *credits.Service
	Payments *payments.Service
}

// NewServices builds the modules on db.
func NewServices(db *mongo.Database) *Services {
	r := tx.NewRunner(db.Client())
	c := credits.NewService(db, r, credits.WithSweepInterval(500*time.Millisecond), credits.WithFlushEvery(64))
	return &Services{Runner: r, Credits: c, Payments: payments.NewService(db, r, c)}
}

// EnsureSchema creates the modules' collections and indexes.
func (s *Services) EnsureSchema(ctx context.Context) error {
	if err := s.Credits.EnsureSchema(ctx); err != nil {
		return err
	}
	return s.Payments.EnsureSchema(ctx)
}

// Fund credits every account of w once (keyed, so that a repeat in a later
// process changes nothing), through k.
func Fund(k *Worker) {
	for _, a := range k.W.Accounts {
		op := &Op{ID: k.W.Prefix + "fund-" + a, Worker: k.ID, Kind: OpAdd, Account: a, Amount: 1000, Key: "fund-" + a, Ref: "fund-" + a}
		if k.W.HTTP {
			op.Key = "fund-" + a + "-" + k.W.Prefix
		}
		k.doWith(op, k.Rng)
	}
}

// testHook, in tests, is given a run's history.
var testHook func(*History)

// Run runs the workload with faults for cfg.Duration, checking as it goes,
// then checks the final state and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	db := cfg.Client.Database(cfg.DB)
	cdb := cfg.Checker.Database(cfg.DB)
	svc := NewServices(db)
	if err := svc.EnsureSchema(ctx); err != nil {
		return nil, err
	}
	backend := cfg.Backend
	if backend == nil {
		backend = &Modules{Runner: svc.Runner, Credits: svc.Credits, Payments: svc.Payments}
		svc.Credits.Start() // else the backend's own sweeper runs
		defer svc.Credits.Stop()
	}
	if cfg.Out != nil {
		cfg.Out = &syncWriter{w: cfg.Out} // progress, checks and workers all print
	}
	h := NewHistory()
	if testHook != nil {
		testHook(h)
	}
	aud := &Auditor{DB: cdb, Colls: DefaultCollections, Credits: credits.NewService(cdb, tx.NewRunner(cfg.Checker)),
		History: h, Seed: cfg.Seed, Out: cfg.Out}

	w := NewWorkload(cfg.Accounts, cfg.Hot, "")
	_, w.HTTP = backend.(*HTTP)
	Fund(&Worker{W: w, ID: 0, Rng: rand.New(rand.NewPCG(cfg.Seed, 0)), B: backend, H: h})
	w.CancelRate = cfg.Rates.Cancel

	runCtx, stopRun := context.WithTimeout(ctx, cfg.Duration)
	defer stopRun()
	var errMu sync.Mutex
	var errs []string
	noteErr := func(err error) {
		errMu.Lock()
		errs = append(errs, err.Error())
		errMu.Unlock()
	}

	var workers sync.WaitGroup
	for i := 1; i <= cfg.Workers; i++ {
		k := &Worker{W: w, ID: i, Rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))), B: backend, H: h, OnRead: aud.CheckRead}
		workers.Add(1)
		go func() { defer workers.Done(); k.Run(runCtx) }()
	}

	injCtx, stopInj := context.WithCancel(ctx)
	inj := &Injector{Rates: cfg.Rates, AppName: cfg.AppName, Rng: rand.New(rand.NewPCG(cfg.Seed, 1<<40)),
		Command: AdminCommand(cfg.Checker), Record: h.AddFault}
	injDone := make(chan struct{})
	go func() {
		defer close(injDone)
		if err := inj.Run(injCtx); err != nil {
			noteErr(err)
		}
	}()

	var bg sync.WaitGroup
	bg.Add(1)
	go func() { // continuous checks
		defer bg.Done()
		runChecks(runCtx, cfg.CheckEvery, wallClock{}, func(ctx context.Context) {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			_ = aud.Audit(cctx, false) // a check that cannot read now runs again later
			cancel()
		})
	}()
	var open *OpenWatch
	if cfg.MaxOpen > 0 {
		open = &OpenWatch{Admin: cfg.Checker.Database("admin"), MaxOpen: cfg.MaxOpen,
			App: cfg.AppName, Report: aud.Report}
		bg.Add(1)
		go func() {
			defer bg.Done()
			if err := open.Run(runCtx); err != nil {
				noteErr(err)
			}
		}()
	}
	if cfg.Progress > 0 && cfg.Out != nil {
		bg.Add(1)
		go func() { // the progress line, on time even while a check runs
			defer bg.Done()
			t := time.NewTicker(cfg.Progress)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					n := h.Len()
					el := time.Since(start)
					fmt.Fprintf(cfg.Out, "txchaos: %s %d ops (%.0f/s), %d faults, %d checks, %d violations\n",
						el.Round(time.Second), n, float64(n)/el.Seconds(), countFaults(h), aud.Checks(), len(aud.Violations()))
				}
			}
		}()
	}

	<-runCtx.Done()
	workers.Wait()
	bg.Wait()
	stopInj()
	<-injDone

	// Quiet now: no fault, no operation in flight. The final check binds
	// every operation.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := aud.Audit(fctx, true); err != nil {
		noteErr(fmt.Errorf("final check: %w", err))
	}
	rep := NewReport(cfg, h, aud, time.Since(start))
	if open != nil {
		rep.OpenReads, rep.MaxOpen = open.Reads(), cfg.MaxOpen.String()
	}
	rep.Errors = errs
	return rep, nil
}

func countFaults(h *History) int {
	n := len(h.Faults())
	for _, o := range h.Ops(time.Time{}) {
		if o.Fault != "" {
			n++
		}
	}
	return n
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// AdminCommand returns a function that runs a command on client's admin
// database.
func AdminCommand(client *mongo.Client) func(ctx context.Context, cmd bson.D) error {
	return func(ctx context.Context, cmd bson.D) error {
		return client.Database("admin").RunCommand(ctx, cmd).Err()
	}
}

// NewReport summarises a run.
func NewReport(cfg Config, h *History, aud *Auditor, took time.Duration) *Report {
	rep := &Report{
		Seed: cfg.Seed, Duration: took.Round(time.Millisecond).String(), Workers: cfg.Workers,
		Accounts: cfg.Accounts, Hot: cfg.Hot, Rates: cfg.Rates,
		OpsByKind: map[Kind]map[Outcome]int{}, FaultsByKind: map[string]int{},
		Checks: aud.Checks(), Violations: aud.Violations(),
	}
	ops := h.Ops(time.Time{})
	rep.Latency = latencies(ops)
	rep.Violations = append(rep.Violations, late(ops, cfg.LateAfter)...)
	for _, o := range ops {
		rep.Ops++
		if rep.OpsByKind[o.Kind] == nil {
			rep.OpsByKind[o.Kind] = map[Outcome]int{}
		}
		rep.OpsByKind[o.Kind][o.Outcome]++
		if o.Fault != "" {
			rep.FaultsByKind[strings.Fields(o.Fault)[0]]++
			rep.Faults++
		}
	}
	for _, f := range h.Faults() {
		rep.FaultsByKind[f.Kind]++
		rep.Faults++
	}
	if rep.Violations == nil {
		rep.Violations = []Violation{}
	}
	return rep
}

// Print writes the human summary; its last line is exactly
// "txchaos: N ops, F faults, C checks, V violations".
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\ntxchaos summary (seed %d, %s, %d workers, %d accounts, %d hot)\n", r.Seed, r.Duration, r.Workers, r.Accounts, r.Hot)
	fmt.Fprintln(w, "operations:")
	kinds := make([]string, 0, len(r.OpsByKind))
	for k := range r.OpsByKind {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		m := r.OpsByKind[Kind(k)]
		var parts []string
		total := 0
		for o := Pending; o <= Unknown; o++ {
			if m[o] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", o, m[o]))
				total += m[o]
			}
		}
		fmt.Fprintf(w, "  %-13s %6d  %s\n", k, total, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, "latency (ms):      p50      p99      max")
	for _, k := range kinds {
		if l, ok := r.Latency[Kind(k)]; ok {
			fmt.Fprintf(w, "  %-13s %8.1f %8.1f %8.1f\n", k, l.P50, l.P99, l.Max)
		}
	}
	fmt.Fprintln(w, "faults:")
	fk := sortedKeys(r.FaultsByKind)
	for _, k := range fk {
		fmt.Fprintf(w, "  %-13s %6d\n", k, r.FaultsByKind[k])
	}
	if r.MaxOpen != "" {
		fmt.Fprintf(w, "open transactions: %d reads of $currentOp, each open at most %s\n", r.OpenReads, r.MaxOpen)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if len(r.Violations) > 0 {
		fmt.Fprintf(w, "violations (seed %d; replay with -seed %d):\n", r.Seed, r.Seed)
		byInv := map[string]int{}
		for _, v := range r.Violations {
			byInv[v.Invariant]++
		}
		for _, k := range sortedKeys(byInv) {
			fmt.Fprintf(w, "  %-34s %d\n", k, byInv[k])
		}
		for i, v := range r.Violations {
			if i == 20 {
				fmt.Fprintf(w, "  … %d more\n", len(r.Violations)-20)
				break
			}
			fmt.Fprintf(w, "  - %s\n", v)
		}
	}
	fmt.Fprintf(w, "txchaos: %d ops, %d faults, %d checks, %d violations\n", r.Ops, r.Faults, r.Checks, len(r.Violations))
}
