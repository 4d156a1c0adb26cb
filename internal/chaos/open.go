package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/currentop"
)

// InvNotLeftOpen is broken by a transaction that stays open on the server
// for most of its lifetime limit: one the application abandoned (its abort
// failed, its commit was refused before it ran, a statement arrived after
// the abort) and did not kill, which holds the documents it wrote, so
// every writer of those accounts waits until the server aborts it.
const InvNotLeftOpen = "no transaction is left open to the lifetime limit"

// OpenWatch watches the transactions open on the server, with
// $currentOp (idle sessions included), and reports each one that has
// been open longer than MaxOpen. It watches the workload's transactions,
// by their app name: not the checker's own (Reconcile's snapshot reads).
type OpenWatch struct {
	Admin   *mongo.Database // the checker client's admin database
	MaxOpen time.Duration
	// Every is the period of the reads (0: MaxOpen/8, at most a second).
	Every time.Duration
	// App is the workload's app name: a transaction of another app is not
	// watched (one that $currentOp shows without an app name is).
	App    string
	Report func(Violation)

	mu   sync.Mutex
	seen map[string]bool
	n    int64 // reads answered
}

// DefaultMaxOpen is the longest a transaction may stay open, as a share of
// the server's lifetime limit: well past any attempt the workload runs
// (a few statements and their injected faults, each blocked at most half a
// second), short of the limit itself.
func DefaultMaxOpen(limit time.Duration) time.Duration { return limit * 3 / 4 }

// LifetimeLimit reads the server's transactionLifetimeLimitSeconds.
func LifetimeLimit(ctx context.Context, admin *mongo.Database) (time.Duration, error) {
	var reply struct {
		Limit int64 `bson:"transactionLifetimeLimitSeconds"`
	}
	err := admin.RunCommand(ctx, bson.D{{Key: "getParameter", Value: 1}, {Key: "transactionLifetimeLimitSeconds", Value: 1}}).Decode(&reply)
	if err != nil {
		return 0, fmt.Errorf("getParameter transactionLifetimeLimitSeconds: %w", err)
	}
	if reply.Limit <= 0 {
		return 0, fmt.Errorf("getParameter transactionLifetimeLimitSeconds: got %d", reply.Limit)
	}
	return time.Duration(reply.Limit) * time.Second, nil
}

// Reads returns how many reads of $currentOp were answered.
func (w *OpenWatch) Reads() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Run reads until ctx ends. It returns an error only if no read was ever
// answered (the watch did not run); a read that fails now and then (the
// server is busy) is tried again at the next tick.
func (w *OpenWatch) Run(ctx context.Context) error {
	every := w.Every
	if every <= 0 {
		every = min(time.Second, max(10*time.Millisecond, w.MaxOpen/8))
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if w.Reads() == 0 && last != nil {
				return fmt.Errorf("open transactions not watched: %w", last)
			}
			return nil
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := w.Check(rctx); err != nil && ctx.Err() == nil {
				last = err
			}
			cancel()
		}
	}
}

// Check reads the open transactions once and reports those open longer
// than MaxOpen, each once.
func (w *OpenWatch) Check(ctx context.Context) error {
	txns, err := currentop.Open(ctx, w.Admin, w.MaxOpen)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.n++
	w.mu.Unlock()
	for _, c := range txns {
		if w.App != "" && c.AppName != "" && c.AppName != w.App {
			continue
		}
		if c.Open() <= w.MaxOpen {
			continue
		}
		id := c.Session()
		key := fmt.Sprintf("%s/%d", id, c.Number())
		w.mu.Lock()
		if w.seen == nil {
			w.seen = map[string]bool{}
		}
		dup := w.seen[key]
		w.seen[key] = true
		w.mu.Unlock()
		if dup {
			continue
		}
		doing := "idle"
		if c.Type == "op" {
			doing = fmt.Sprintf("running %s on %s", c.Op, c.NS)
		}
		w.Report(Violation{Invariant: InvNotLeftOpen, Detail: fmt.Sprintf(
			"transaction %d of session %s (app %q) open %s on the server, %s (limit for this run %s; the server aborts it at %s)",
			c.Number(), id, c.AppName, c.Open().Round(time.Millisecond),
			doing, w.MaxOpen, c.Transaction.ExpiryTime)})
	}
	return nil
}
