package tx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Reaping. A transaction that the runner could not abort (the database
// stalled or the connection broke during abortTransaction) or whose commit
// ended with an unknown outcome may still be open on the server, holding
// its documents until the server's transactionLifetimeLimitSeconds (60 s by
// default). The runner does not end such a session: ended, it would go back
// to the driver's pool, and killing it later would kill the next
// transaction that reuses it. It hands it to its reaper instead, which
// sends killSessions for it (aborting what it left open) as soon as the
// database answers, retrying with backoff.
//
// A kill is not the end of it. A statement whose reply the caller gave up
// on (its ctx ended, the connection broke) may reach the server after the
// abort and after the kill: if it was the transaction's first statement,
// the abort found no transaction (NoSuchTransaction, which the driver does
// not report) and the kill nothing to kill, and the statement then starts
// the transaction and holds what it writes. Only a command with a higher
// transaction number on the session ends that for sure: it aborts a
// transaction the late statement started, or makes the server refuse the
// statement (TransactionTooOld) if it comes later still. So right after
// the kill the reaper runs a fence on the session: a transaction that
// reads a collection that does not exist, which a second kill aborts (see
// fenceOne). Its number is above the cut one's, so a statement of the cut
// transaction that arrives after it is refused, and one that arrived
// before it is aborted by it: nothing is left open even if the runner
// never starts another transaction. The driver discards such a session (a network
// error makes it dirty) instead of reusing it, so the reaper also keeps
// the sessions it killed, and the runner's next transactions run on them
// (see take) before it starts new ones: they supersede the cut
// transaction too when the fence could not run.

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
	// maxSpare bounds the killed sessions kept for the next transactions;
	// beyond it a session is ended (and its late statement, if one comes,
	// left to the lifetime limit, as before there was a reaper).
	maxSpare = 64
	// fenceTimeout bounds the fences that follow one killSessions.
	fenceTimeout = 5 * time.Second
	// fenceAbortTimeout bounds a fence's abortTransaction, sent (even
	// when the fences' time ran out during its read) only when
	// killSessions is refused.
	fenceAbortTimeout = time.Second
	// The fence reads the collection fenceCollection, which nobody
	// creates, in the database of the orphan registry (WithOrphanReaping),
	// whose user may read it, else in fenceDatabase.
	fenceCollection = "txkit_fence"
	fenceDatabase   = "txkit"
	// Backoff between killSessions that failed.
	reapBackoffInitial = 50 * time.Millisecond
	reapBackoffMax     = 2 * time.Second
)

// reaper kills, on the server, the sessions that the runner left behind.
// Its goroutine runs only while sessions wait, and stops at [Runner.Close].
type reaper struct {
	client *mongo.Client
	fence  *mongo.Collection // what a fence reads (see fenceOne)

	ctx  context.Context // cancelled by close
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	pending []*reapee
	spare   []*reapee // killed, for the runner's next transactions
	running bool      // the goroutine runs
	closed  bool
	refused int // sessions left open that nobody will supersede: refused by add, or ended unfenced at close
}

type reapee struct {
	sess   *mongo.Session
	since  time.Time
	fenced bool // its fence was tried; written by the reaper's goroutine, or by close once it stopped
	// fenceOK: the fence's read was answered, so no statement of an
	// earlier transaction can start one on the session any more. Written
	// by the fence's goroutine, read after fenceAll waited for it.
	fenceOK bool
	// fenceErr: the error of the fence's read, when it was sent and not
	// answered. No answer (see fenceCut): it may still reach the server,
	// or never did, and close fences the session again; an answer of the
	// server (a refusal): close reports it. Written as fenceOK.
	fenceErr error
}

// fenceCut reports whether x's fence's read got no answer (a connection
// that broke, ctx, no connection).
func (x *reapee) fenceCut() bool {
	return x.fenceErr != nil && !serverAnswered(x.fenceErr)
}

// newReaper returns a reaper for client whose fences read fence.
func newReaper(client *mongo.Client, fence *mongo.Collection) *reaper {
	ctx, stop := context.WithCancel(context.Background())
	return &reaper{client: client, fence: fence, ctx: ctx, stop: stop}
}

// add takes sess, to kill it on the server and then end it. It reports
// false, leaving sess to its caller, when the reaper is closed or full.
func (r *reaper) add(sess *mongo.Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.pending) >= maxReap {
		r.refused++
		return false
	}
	r.pending = append(r.pending, &reapee{sess: sess, since: time.Now()})
	if !r.running {
		r.running = true
		r.wg.Add(1)
		go r.run()
	}
	return true
}

// leftOpen reports how many sessions the reaper left open for good (see refused).
func (r *reaper) leftOpen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// run kills the pending sessions until none is left, the reaper is
// closed, or the client is disconnected.
func (r *reaper) run() {
	defer r.wg.Done()
	wait := reapBackoffInitial
	for {
		r.mu.Lock()
		batch := append([]*reapee(nil), r.pending...)
		if len(batch) == 0 || r.closed {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()

		ctx, cancel := context.WithTimeout(r.ctx, killTimeout)
		err := r.kill(ctx, batch)
		cancel()
		if err == nil || refused(err) {
			// Without killSessions, the fence is what aborts the
			// transaction left open.
			ctx, cancel := context.WithTimeout(r.ctx, fenceTimeout)
			again := r.fenceAll(ctx, batch, err != nil)
			cancel()
			if again {
				continue // kill the fences' transactions
			}
		}
		if err == nil || refused(err) || errors.Is(err, mongo.ErrClientDisconnected) {
			r.done(batch)
			wait = reapBackoffInitial
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
func (r *reaper) kill(ctx context.Context, batch []*reapee) error {
	lsids := make(bson.A, len(batch))
	for i, x := range batch {
		lsids[i] = x.sess.ID()
	}
	return killSessions(ctx, r.client.Database("admin"), lsids)
}

// killNow sends killSessions for sess at once, outside the reaper's
// goroutine: for a runner's attempt that must not wait for what the last
// attempt on sess left open (see scope.endLeftOpen).
func (r *reaper) killNow(ctx context.Context, sess *mongo.Session) error {
	return killSessions(ctx, r.client.Database("admin"), bson.A{sess.ID()})
}

// killSessions sends one killSessions of lsids (session ids, {id: UUID})
// to admin: the one command txkit kills sessions with, for its own
// sessions and for a dead process's.
func killSessions(ctx context.Context, admin *mongo.Database, lsids bson.A) error {
	return admin.RunCommand(ctx, bson.D{{Key: "killSessions", Value: lsids}}).Err()
}

// fenceParallel is how many fences of one round run at a time.
const fenceParallel = 16

// fenceTxn are the options of a fence's transaction, whatever the
// client's defaults: a transaction reads from the primary only, and
// cannot run with an unacknowledged write concern.
var fenceTxn = options.Transaction().
	SetReadPreference(readpref.Primary()).
	SetReadConcern(readconcern.Local()).
	SetWriteConcern(writeconcern.W1())

// fenceAll fences, within ctx, the sessions of batch that were not
// fenced yet, each once, up to fenceParallel at a time (each fence waits
// for the database on its own connection): one whose fence was tried and
// failed is still superseded by the runner's next transaction on it (see
// take). A session is marked fenced only when its fence is tried: those
// that ctx's bound did not reach stay unfenced, for the next round. It
// reports whether a kill of batch must follow and then another fenceAll:
// it sent a fence's read, whose transaction the server then holds open
// (holding nothing) until that kill, or it left sessions unfenced. With
// abort (killSessions refused), each fence aborts its own transaction
// instead. Each round tries at least one fence, so the rounds end.
func (r *reaper) fenceAll(ctx context.Context, batch []*reapee, abort bool) (again bool) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent bool
		left bool
	)
	slots := make(chan struct{}, fenceParallel)
	for _, x := range batch {
		if x.fenced {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			left = true // the bound did not reach x: the next round fences it
			break
		}
		x.fenced = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			tried, err := r.fenceOne(ctx, x.sess, abort)
			x.fenceOK, x.fenceErr = tried && err == nil, err
			if tried && !abort {
				mu.Lock()
				sent = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return sent || left
}

// fenceOne starts a transaction on sess with the session's next
// transaction number and reads a collection that does not exist (a
// transaction starts on the server with its first statement). From then
// on the server refuses any statement of an earlier transaction on the
// session (TransactionTooOld), and the read aborted the earlier
// transaction if one was open: a late first statement of a cut attempt
// can no longer start it. The next kill aborts the fence's transaction:
// the driver reports killSessions's answer, not abortTransaction's. With
// abort, fenceOne sends abortTransaction itself. It reports whether the
// read was sent, and its error (nil when the read was answered).
func (r *reaper) fenceOne(ctx context.Context, sess *mongo.Session, abort bool) (sent bool, err error) {
	// A session whose commit was cut still runs its transaction for the
	// driver, which refuses to start another: a late commit finds nothing
	// to commit after the kill anyway.
	if sess.StartTransaction(fenceTxn) != nil {
		return false, nil
	}
	sctx := mongo.NewSessionContext(ctx, sess)
	err = r.fence.FindOne(sctx, bson.D{}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		err = nil
	}
	actx, cancel := context.WithCancel(context.Background())
	if abort {
		// Even if ctx ended during the read, which may have reached the
		// server.
		actx, cancel = context.WithTimeout(context.WithoutCancel(ctx), fenceAbortTimeout)
	} else {
		cancel() // the driver's state only: it sends nothing
	}
	defer cancel()
	_ = sess.AbortTransaction(actx)
	return true, err
}

// serverAnswered reports whether err is the server's answer (it refused
// the command), rather than no answer: a connection that broke, a ctx
// that ended, no connection or no server for the send.
func serverAnswered(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code != 0 && !mongo.IsNetworkError(err)
}

// refused reports whether the server refused killSessions for good: the
// user may not run it, or the deployment does not offer it (Atlas's
// shared tiers).
func refused(err error) bool {
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code {
	case 13, 59, 115, 8000: // Unauthorized, CommandNotFound, CommandNotSupported, AtlasError
		return true
	}
	return false
}

// done removes batch, the head of the pending sessions: killed, or given
// up with no kill of them still on its way, so they may be reused. It keeps
// them for the runner's next transactions (see take), as many as fit, and
// ends the others.
func (r *reaper) done(batch []*reapee) {
	r.mu.Lock()
	r.pending = r.pending[len(batch):] // add only appends: batch is the head
	var end []*mongo.Session
	for _, x := range batch {
		// A session the driver still thinks runs a transaction (a commit
		// cut by a deadline) cannot start another one.
		if r.closed || len(r.spare) >= maxSpare || x.sess.TransactionRunning() {
			if r.closed && !x.fenceOK {
				r.refused++ // a late statement may still start a transaction there
			}
			end = append(end, x.sess)
			continue
		}
		r.spare = append(r.spare, x)
	}
	r.mu.Unlock()
	endSessions(end)
}

// take returns a killed session for a new transaction, or nil. The
// transaction's first command, sent with the next transaction number of
// the session, supersedes whatever a late statement started there.
func (r *reaper) take() *mongo.Session {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.spare) == 0 {
		return nil
	}
	x := r.spare[len(r.spare)-1]
	r.spare = r.spare[:len(r.spare)-1]
	return x.sess
}

// endSessions ends sessions on a cancelled ctx: the driver, which may
// still think a transaction runs, sends no abort for it.
func endSessions(sessions []*mongo.Session) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, sess := range sessions {
		sess.EndSession(ctx)
	}
}

// expire gives up the sessions that waited longer than reapFor, by when
// the server has ended their transactions itself. No kill of them is still
// on its way: each ran under a deadline, which the driver sends as
// maxTimeMS, so the server gave it up too.
func (r *reaper) expire() {
	r.mu.Lock()
	n := 0
	for n < len(r.pending) && time.Since(r.pending[n].since) > reapFor {
		n++
	}
	batch := append([]*reapee(nil), r.pending[:n]...)
	r.mu.Unlock()
	if n > 0 {
		r.done(batch)
	}
}

// close stops the reaper: it makes one last attempt, bounded by ctx, to kill
// and fence the sessions still pending, and the spare ones whose fence did
// not take. Those it could not kill are dropped, not ended: that kill may
// still reach the server.
func (r *reaper) close(ctx context.Context) error {
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	var spare []*mongo.Session
	for _, x := range r.spare {
		if !x.fenceOK {
			// Only the runner's next transaction on it would have
			// superseded a late statement of its cut attempt, and none
			// comes: it is pending again, for close to fence.
			r.pending = append(r.pending, x)
			continue
		}
		spare = append(spare, x.sess)
	}
	r.spare = nil
	r.mu.Unlock()
	if first {
		endSessions(spare)
		r.stop()
		r.wg.Wait()
	}

	// The goroutine has stopped: what is pending is close's alone. A
	// session whose kill fails (an answer of the server, or no answer
	// within ctx) stays pending, for the next close to try again
	// (Runner.Close runs one at a time).
	r.mu.Lock()
	batch := append([]*reapee(nil), r.pending...)
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	for _, x := range batch {
		if !x.fenceOK {
			// Its fence's read was cut (by stop, or the database), or
			// refused: a cut read may still reach the server, after the
			// kill below, and start a transaction there. Fence again,
			// with a higher transaction number, which makes the server
			// refuse it.
			x.fenced = false
		}
	}
	wait := reapBackoffInitial
	for {
		// The kill also ends the fences' transactions of the round
		// before.
		err := r.killAgain(ctx, batch)
		if err != nil && !refused(err) {
			return err
		}
		// Without killSessions the fence is what aborts the transaction
		// left open, as in run.
		again := r.fenceAll(ctx, batch, err != nil)
		cut := false
		for _, x := range batch {
			if x.fenceCut() {
				// Close's own fence got no answer: its read, too, may
				// reach the server after the last kill. Fence again,
				// within ctx; when ctx ends, the next kill says so.
				x.fenced, cut = false, true
			}
		}
		if !again && !cut {
			break
		}
		if cut {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			wait = min(2*wait, reapBackoffMax)
		}
	}
	for _, x := range batch {
		if x.fenceErr != nil {
			// The server refused the fence: a late statement of the cut
			// transaction may still start one. The sessions stay
			// pending, for the next close to fence again.
			return fmt.Errorf("fence refused (a late statement may still start a transaction): %w", x.fenceErr)
		}
	}
	r.done(batch)
	return nil
}

// killAgain kills batch for close, trying again within ctx while the kill
// got no answer (a connection that broke, a pool cleared under it): one
// dropped connection at shutdown must not leave what the sessions hold to
// the lifetime limit. Any answer of the server ends it.
func (r *reaper) killAgain(ctx context.Context, batch []*reapee) error {
	wait := reapBackoffInitial
	for {
		err := r.kill(ctx, batch)
		if err == nil || !mongo.IsNetworkError(err) && !checkoutRefused(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, reapBackoffMax)
	}
}
