package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/txkit/txkit/internal/chaos"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// workerApp is the app name of a crash-mode worker's client.
const workerApp = "txchaos-worker"

// runWorker is a crash-mode worker process: it runs the workload, logging
// every operation's begin and end, until it is killed (or its -duration
// ends).
func runWorker(ctx context.Context, f *flags) error {
	ctx, cancel := context.WithTimeout(ctx, f.duration)
	defer cancel()
	log, err := chaos.CreateOpLog(f.worker)
	if err != nil {
		return err
	}
	defer log.Close()
	client, err := connect(ctx, f.uri, workerApp, true)
	if err != nil {
		return err
	}
	defer disconnect(client)
	// The parent made the schema: creating an index waits for the
	// transactions that a killed generation left open.
	svc := chaos.NewServices(client.Database(f.db))
	svc.Credits.Start()
	defer svc.Credits.Stop()
	backend := &chaos.Modules{Runner: svc.Runner, Credits: svc.Credits, Payments: svc.Payments}

	w := chaos.NewWorkload(f.accounts, f.hot, fmt.Sprintf("e%d-", f.epoch))
	chaos.Fund(&chaos.Worker{W: w, ID: 0, Rng: rand.New(rand.NewPCG(f.seed, 0)), B: backend, H: log})
	w.CancelRate = f.rates.Cancel
	var wg sync.WaitGroup
	for i := 1; i <= f.workers; i++ {
		k := &chaos.Worker{W: w, ID: i, Rng: rand.New(rand.NewPCG(f.seed, uint64(i))), B: backend, H: log}
		wg.Add(1)
		go func() { defer wg.Done(); k.Run(ctx) }()
	}
	wg.Wait()
	return nil
}

// runCrash runs the workload in child processes of this program, killing
// each at a random instant and starting the next, while this process
// injects fail points and checks the ledger between generations.
func runCrash(ctx context.Context, f *flags, uri string, stdout io.Writer) (*chaos.Report, error) {
	start := time.Now()
	checker, err := connect(ctx, uri, "txchaos-checker", false)
	if err != nil {
		return nil, err
	}
	defer disconnect(checker)
	cdb := checker.Database(f.db)
	if err := cdb.Drop(ctx); err != nil {
		return nil, err
	}
	if err := chaos.NewServices(cdb).EnsureSchema(ctx); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "txchaos-crash-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	h := chaos.NewHistory()
	aud := &chaos.Auditor{DB: cdb, Colls: chaos.DefaultCollections, Credits: credits.NewService(cdb, tx.NewRunner(checker)),
		History: h, Seed: f.seed, Out: stdout}
	rng := rand.New(rand.NewPCG(f.seed, 1<<41))

	injCtx, stopInj := context.WithCancel(ctx)
	inj := &chaos.Injector{Rates: f.rates, AppName: workerApp, Rng: rand.New(rand.NewPCG(f.seed, 1<<40)),
		Command: chaos.AdminCommand(checker), Record: h.AddFault}
	injDone := make(chan error, 1)
	go func() { injDone <- inj.Run(injCtx) }()
	defer func() { stopInj(); <-injDone }()

	deadline := start.Add(f.duration)
	var errs []string
	for epoch := 0; time.Now().Before(deadline) && ctx.Err() == nil; epoch++ {
		life := time.Duration(rng.ExpFloat64() * float64(f.crashEvery))
		// At least a second: a worker killed while it starts tests nothing.
		life = max(time.Second, min(life, 3*f.crashEvery, time.Until(deadline)))
		logPath := filepath.Join(dir, fmt.Sprintf("epoch-%d.jsonl", epoch))
		cmd := exec.Command(exe,
			"-worker", logPath, "-uri", uri, "-db", f.db, "-epoch", strconv.Itoa(epoch),
			"-seed", strconv.FormatUint(f.seed*1_000_003+uint64(epoch), 10),
			"-workers", strconv.Itoa(f.workers), "-accounts", strconv.Itoa(f.accounts), "-hot", strconv.Itoa(f.hot),
			"-cancel", strconv.FormatFloat(f.rates.Cancel, 'g', -1, 64), "-duration", (life + time.Minute).String())
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		select {
		case <-time.After(life):
		case <-ctx.Done():
		}
		_ = cmd.Process.Kill() // SIGKILL: no deferred cleanup runs in the worker
		_ = cmd.Wait()
		killed := time.Now()
		h.AddFault(chaos.Fault{At: killed, Kind: "crash", Desc: fmt.Sprintf("worker generation %d killed after %s", epoch, life.Round(time.Millisecond))})
		n, err := readLog(logPath, h, killed)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		// A check that cannot read now (its snapshot outlived the server's
		// transaction lifetime on a large ledger) runs again after the next
		// generation, as in the in-process mode; the final check must read.
		_ = aud.Audit(cctx, false)
		cancel()
		if f.progress > 0 {
			fmt.Fprintf(stdout, "txchaos: %s generation %d killed after %s (%d ops), %d faults, %d checks, %d violations\n",
				time.Since(start).Round(time.Second), epoch, life.Round(time.Millisecond), n, len(h.Faults()), aud.Checks(), len(aud.Violations()))
		}
	}
	stopInj()
	if err := <-injDone; err != nil {
		errs = append(errs, err.Error())
	}
	injDone <- nil // for the deferred stop

	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := aud.Audit(fctx, true); err != nil {
		errs = append(errs, fmt.Sprintf("final check: %v", err))
	}
	cfg := chaos.Config{Seed: f.seed, Workers: f.workers, Accounts: f.accounts, Hot: f.hot, Rates: f.rates, LateAfter: f.lateAfter}
	rep := chaos.NewReport(cfg, h, aud, time.Since(start))
	rep.Errors = errs
	return rep, nil
}

// readLog reads a worker's log into h. A worker killed before it created
// its log ran nothing.
func readLog(path string, h *chaos.History, killed time.Time) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return chaos.ReadOpLog(f, h, killed)
}
