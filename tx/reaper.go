package tx

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Reaping. A transaction that the runner could not abort (the database
// stalled or the connection broke during abortTransaction) or whose commit
// ended with an unknown outcome may still be open on the server, holding
// its documents until the server's transactionLifetimeLimitSeconds (60 s by
// default). The runner does not end such a session: ended, it would go back
// to the driver's pool, and killing it later would kill the next
// transaction that reuses it. It hands it to its reaper instead, which
// sends killSessions for it (aborting what it left open) as soon as the
// database answers, retrying with backoff, and only then ends it.

const (
	// maxReap bounds the sessions waiting to be killed. A session that
	// finds the queue full is ended at once, as before there was a reaper:
	// the server ends its transaction at the lifetime limit, or sooner if
	// the pooled session is reused (a new transaction on a session aborts
	// the one left open on it).
	maxReap = 1024
	// reapFor is how long the reaper tries to kill a session: well past
	// MongoDB's default transaction lifetime limit, after which the server
	// has aborted the transaction itself.
	reapFor = 5 * time.Minute
	// killTimeout bounds one killSessions.
	killTimeout = 5 * time.Second
	// Backoff between killSessions that failed.
	reapBackoffInitial = 50 * time.Millisecond
	reapBackoffMax     = 2 * time.Second
)

// reaper kills, on the server, the sessions that the runner left behind.
// Its goroutine runs only while sessions wait, and stops at [Runner.Close].
type reaper struct {
	client *mongo.Client

	ctx  context.Context // cancelled by close
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	pending []reapee
	running bool // the goroutine runs
	closed  bool
}

type reapee struct {
	sess  *mongo.Session
	since time.Time
}

func newReaper(client *mongo.Client) *reaper {
	ctx, stop := context.WithCancel(context.Background())
	return &reaper{client: client, ctx: ctx, stop: stop}
}

// add takes sess, to kill it on the server and then end it. It reports
// false, leaving sess to its caller, when the reaper is closed or full.
func (r *reaper) add(sess *mongo.Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.pending) >= maxReap {
		return false
	}
	r.pending = append(r.pending, reapee{sess: sess, since: time.Now()})
	if !r.running {
		r.running = true
		r.wg.Add(1)
		go r.run()
	}
	return true
}

// run kills the pending sessions until none is left, the reaper is
// closed, or the client is disconnected.
func (r *reaper) run() {
	defer r.wg.Done()
	wait := reapBackoffInitial
	for {
		r.mu.Lock()
		batch := append([]reapee(nil), r.pending...)
		if len(batch) == 0 || r.closed {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()

		ctx, cancel := context.WithTimeout(r.ctx, killTimeout)
		err := r.kill(ctx, batch)
		cancel()
		switch {
		case err == nil:
			r.done(batch, true)
			wait = reapBackoffInitial
			continue
		case errors.Is(err, mongo.ErrClientDisconnected):
			r.done(batch, false)
			continue
		}
		r.expire()
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, reapBackoffMax)
	}
}

// kill sends one killSessions for batch.
func (r *reaper) kill(ctx context.Context, batch []reapee) error {
	ids := make(bson.A, len(batch))
	for i, x := range batch {
		ids[i] = x.sess.ID()
	}
	return r.client.Database("admin").RunCommand(ctx, bson.D{{Key: "killSessions", Value: ids}}).Err()
}

// done removes batch from the pending sessions. Killed sessions are
// ended: nothing is left open on them, so the driver may reuse them.
// Others are dropped without being ended, so that nobody reuses them.
func (r *reaper) done(batch []reapee, killed bool) {
	r.mu.Lock()
	r.pending = r.pending[len(batch):] // add only appends: batch is the head
	r.mu.Unlock()
	if !killed {
		return
	}
	// A cancelled ctx: the driver, which may still think a transaction
	// runs, sends no abort for it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, x := range batch {
		x.sess.EndSession(ctx)
	}
}

// expire drops the sessions that waited longer than reapFor.
func (r *reaper) expire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(r.pending) && time.Since(r.pending[n].since) > reapFor {
		n++
	}
	r.pending = r.pending[n:]
}

// close stops the reaper: it makes one last attempt, bounded by ctx, to kill
// the sessions still pending, and drops those it could not kill.
func (r *reaper) close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.stop()
	r.wg.Wait()

	r.mu.Lock()
	batch := append([]reapee(nil), r.pending...)
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := r.kill(ctx, batch)
	r.done(batch, err == nil)
	return err
}
