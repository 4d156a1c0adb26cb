package idempotency

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Claim combining. A claim is one small insert, so concurrent claims cost
// one round trip each unless they share one. A store queues its claims;
// one caller at a time leads: it takes the queued claims and sends them
// as ONE unordered insert, hands each caller its own document's outcome,
// then hands the lead to the next queued caller (the leader/queue pattern
// of modules/credits' write lanes). Callers that queued while an insert
// was in flight share the next one. Each insert runs on a goroutine of
// its own, which its leader waits for unless the leader's ctx ends.
//
// Each document's outcome is its own: inserted, a duplicate key (another
// claim of the key, perhaps an earlier one of the same batch, or this
// claim resent by the driver's retryable write) or another write error.
// An error of the whole insert (network, write concern, deadline) is every
// caller's: some of their claims may have been written, which a claim
// allows (it can land after its caller gave up). Each caller's error has
// the shape of InsertOne's, so that callers classify it as before.
//
// A caller whose ctx ends while its claim is still queued leaves with
// ctx's error and nothing written. Once its claim is taken into a batch,
// ctx ending returns ctx's error at once (the claim may be written), the
// leader's too: the leader sends from a goroutine that ends with the
// insert, which claimContext bounds, and that hands the lead on.

// Bounds of one combined insert. Far below the server's 100,000 writes per
// command; the byte bound keeps a batch one command of at most one
// document's maximum size, so that the driver never splits it. A document
// bigger than that goes alone.
const (
	maxClaimBatch      = 64
	maxClaimBatchBytes = 16 << 20
)

// claimSendBound bounds the insert of a batch with a caller that has no
// deadline. It is longer than MongoDB's default transaction lifetime (60
// s), the longest a transaction writing the same key can hold the insert on
// the server, so such a caller meets it only when the server is stuck;
// its claim then fails as on a network error.
const claimSendBound = 90 * time.Second

type claimQueue struct {
	mu    sync.Mutex
	queue []*claimReq
	busy  bool           // a leader is sending
	sends sync.WaitGroup // the inserts in flight (see insertClaim)
}

type claimReq struct {
	ctx  context.Context // the caller's: a claim whose ctx ended is not sent
	doc  bson.Raw
	done chan error // receives the outcome, or errLeadClaims
}

// errLeadClaims hands the lead of the claim queue to the caller that
// receives it.
var errLeadClaims = errors.New("idempotency: internal: lead the claims")

// insertClaim inserts doc, combined with concurrent claims. It returns
// doc's own outcome: nil, its write error as a [mongo.WriteException],
// the batch's error or ctx's.
func (s *Store) insertClaim(ctx context.Context, doc bson.Raw) error {
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	if mongo.SessionFromContext(ctx) != nil {
		// The caller's session, which a batch must not lend to others'
		// claims.
		_, err := s.coll.InsertOne(ctx, doc)
		return err
	}
	q := &s.claims
	r := &claimReq{ctx: ctx, doc: doc, done: make(chan error, 1)}
	if err := q.await(ctx, r); err != errLeadClaims {
		return err
	}
	q.mu.Lock()
	batch := q.take()
	q.mu.Unlock()
	if len(batch) == 0 {
		q.handOff()
		return <-r.done // ctx's error: take dropped it unsent
	}
	// The send, and the lead's hand-off after it, are the batch's, not
	// this caller's: they go on if its ctx ends, on a goroutine that ends
	// with the insert (bounded by claimContext).
	sent := make(chan struct{})
	q.sends.Add(1)
	go func() {
		defer q.sends.Done()
		defer close(sent)
		s.sendClaims(ctx, batch)
		q.handOff()
	}()
	select {
	case <-sent:
	case <-ctx.Done():
		return ctx.Err() // as a follower's: its claim may be written
	}
	err := <-r.done
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// await queues r and waits until it leads (errLeadClaims), or returns the
// outcome a leader sent it, or ctx's error. When it returns errLeadClaims,
// q is busy with r at the head of its queue.
func (q *claimQueue) await(ctx context.Context, r *claimReq) error {
	q.mu.Lock()
	q.queue = append(q.queue, r)
	if !q.busy {
		q.busy = true
		q.mu.Unlock()
		return errLeadClaims
	}
	q.mu.Unlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		q.leave(r)
		// Left unsent, or taken into a batch and perhaps written: either
		// way ctx's error, and the leader's send (buffered) never blocks.
		return ctx.Err()
	}
}

// leave removes r from the queue if no leader has taken it yet. If r had
// just been handed the lead, the lead goes on to the next queued claim.
func (q *claimQueue) leave(r *claimReq) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.queue, r)
	if i < 0 {
		return
	}
	q.queue = slices.Delete(q.queue, i, i+1)
	select {
	case <-r.done: // can only be errLeadClaims: r was queued, not taken
		q.passLead()
	default:
	}
}

// take removes the claims at the head of the queue, the leader's first,
// up to the batch's bounds, and returns those to send. A claim whose
// caller's ctx has ended is dropped unsent, with ctx's error. q.mu is
// held.
func (q *claimQueue) take() []*claimReq {
	var batch []*claimReq
	size, n := 0, 0
	for _, r := range q.queue {
		if len(batch) == maxClaimBatch || len(batch) > 0 && size+len(r.doc) > maxClaimBatchBytes {
			break
		}
		n++
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		batch = append(batch, r)
		size += len(r.doc)
	}
	q.queue = slices.Delete(q.queue, 0, n)
	return batch
}

// handOff passes the lead to the next queued claim, or leaves q idle.
func (q *claimQueue) handOff() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.passLead()
}

// passLead: q.mu is held.
func (q *claimQueue) passLead() {
	if len(q.queue) > 0 {
		q.queue[0].done <- errLeadClaims
	} else {
		q.busy = false
	}
}

// sendClaims inserts the batch's documents and sends each caller its own
// outcome.
func (s *Store) sendClaims(ctx context.Context, batch []*claimReq) {
	ctx, cancel := claimContext(ctx, batch)
	defer cancel()
	docs := make([]any, len(batch))
	for i, r := range batch {
		docs[i] = r.doc
	}
	_, err := s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	errs := claimErrors(err, len(batch))
	for i, r := range batch {
		r.done <- errs[i]
	}
}

// claimContext returns the context of a batch's insert. The batch belongs
// to several callers, so no caller's cancellation cuts it: it keeps ctx's
// values (ctx carries no session) but not its cancellation. It is bounded
// by the latest of the callers' deadlines, a caller without one counting
// as claimSendBound from now: every caller is waited for as long as it
// would wait alone, and a caller that gave up earlier has its ctx's error
// already.
func claimContext(ctx context.Context, batch []*claimReq) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, r := range batch {
		d, ok := r.ctx.Deadline()
		if !ok {
			d = time.Now().Add(claimSendBound)
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(ctx), last)
}

// claimErrors splits the error of an unordered insert of n documents into
// each document's, shaped as InsertOne's would be: its own write error and
// the batch's write concern error, as a [mongo.WriteException]. Any other
// error (network, deadline) is every document's.
func claimErrors(err error, n int) []error {
	errs := make([]error, n)
	if err == nil {
		return errs
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError == nil && len(bwe.WriteErrors) == 0 ||
		slices.ContainsFunc(bwe.WriteErrors, func(we mongo.BulkWriteError) bool { return we.Index < 0 || we.Index >= n }) {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for _, we := range bwe.WriteErrors {
		errs[we.Index] = mongo.WriteException{WriteErrors: mongo.WriteErrors{we.WriteError}, Labels: bwe.Labels}
	}
	if bwe.WriteConcernError != nil {
		for i, e := range errs {
			we, _ := e.(mongo.WriteException)
			we.WriteConcernError, we.Labels = bwe.WriteConcernError, bwe.Labels
			errs[i] = we
		}
	}
	return errs
}
