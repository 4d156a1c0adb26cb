package credits

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Write combining. Writes to one document are applied one at a time by the
// server, so a hot account's throughput is one write per round trip at
// best, however many callers wait. A lane queues this process's writes for
// one account; one caller at a time leads: it takes the queued writes and
// sends them as ONE guarded update (one $inc of their total, one $push of
// all their entries), then hands the lead to the next caller in the queue.
// Callers that queued while a write was in flight share the next round
// trip. Lanes are per account and a leader takes a write slot only to
// send, so writers waiting behind an account (held by a transaction, say)
// hold up that account only. A caller whose context ends while its write
// is still queued (not yet sent) leaves the queue with ctx's error: nothing
// of it was written.
//
// The combined guard is exact: the update applies only if the account can
// take every entry of the batch in some order (credits first), which any
// serial order of concurrent calls allows. If it does not apply, every
// entry of the batch is written alone, with its own guard and its own
// error, as if there had been no batch. Two callers posting the same entry
// id (the same idempotency key) share one write: the first one's entry is
// sent, and the other learns that another call applied it.

// maxBatch bounds the entries of one combined write.
const maxBatch = 64

type lane struct {
	mu    sync.Mutex
	queue []*laneReq
	busy  bool // a leader is writing
}

type laneReq struct {
	e     sent
	epoch epoch
	// shared: other callers may send the same entry (it is an
	// idempotency key's), so epoch must stay the one the caller observed
	// before it learned that the entry was not applied. An entry only
	// this caller sends may use any count observed later (see writeBatch).
	shared   bool
	barrier  bool       // a transaction's turn (see hold), not a write
	deadline time.Time  // the caller's; zero without one
	done     chan error // receives the outcome, or errLead
}

// errLead hands the lead of a lane to the caller that receives it.
var errLead = fmt.Errorf("credits: internal: lead the lane")

// combinedWrite applies e through its lane, combined with concurrent
// writes to the same account. It returns e's own outcome.
func (w *hotWriter) combinedWrite(ctx context.Context, e sent, ep epoch, shared bool) error {
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	l := w.lane(e.Account)
	r := &laneReq{e: e, epoch: ep, shared: shared, done: make(chan error, 1)}
	r.deadline, _ = ctx.Deadline()
	if err := l.await(ctx, r); err != errLead {
		return err
	}
	l.mu.Lock()
	batch := l.take(r)
	l.mu.Unlock()

	bctx, cancel := batchContext(ctx, batch)
	w.writeBatch(bctx, batch)
	cancel()
	w.handOff(e.Account, l)
	return <-r.done
}

// batchContext returns the context of batch's writes. The batch belongs to
// several callers: one caller's cancellation must not fail the others'
// writes, and once sent, a write's outcome must be learned, so it keeps
// ctx's values but not its cancellation. It does keep the earliest of the
// callers' deadlines, which the driver sends as maxTimeMS: a write held up
// on the server (by a transaction holding the account, one the application
// abandoned, say) is refused there when it passes, instead of applying
// long after its callers gave up. Learning the outcome of a write that the
// deadline cut takes at most [ResolveGrace] more (see resolve).
func batchContext(ctx context.Context, batch []*laneReq) (context.Context, context.CancelFunc) {
	var first time.Time
	for _, r := range batch {
		if !r.deadline.IsZero() && (first.IsZero() || r.deadline.Before(first)) {
			first = r.deadline
		}
	}
	ctx = context.WithoutCancel(ctx)
	if first.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, first)
}

// hold gives the transaction in ctx the turn on each account's lane (in
// order, so that two holders cannot wait for each other), and returns the
// function that gives it back. Meanwhile this process sends no
// single-document write to those accounts: one committed after the
// transaction's snapshot began would make its write of the account a
// write conflict, and a steady stream of them would starve it. Once the
// transaction has written an account, later writes wait for its commit on
// the server instead, so the turn is given back when its callback
// returns.
func (w *hotWriter) hold(ctx context.Context, accounts ...string) (release func(), err error) {
	accounts = slices.Clone(accounts)
	slices.Sort(accounts)
	accounts = slices.Compact(accounts)
	// The lanes taken, not the accounts: the lane an account maps to may
	// be another by release (one idle when it was looked up is dropped,
	// and the next caller makes a new one), and handing that one off would
	// give its lead to a second caller while this one stays busy.
	type turn struct {
		account string
		l       *lane
	}
	var held []turn
	release = func() {
		for _, h := range slices.Backward(held) {
			w.handOff(h.account, h.l)
		}
		held = nil
	}
	for _, a := range accounts {
		l := w.lane(a)
		r := &laneReq{barrier: true, done: make(chan error, 1)}
		if err := l.await(ctx, r); err != errLead {
			release()
			return func() {}, err
		}
		l.mu.Lock()
		l.take(r)
		l.mu.Unlock()
		held = append(held, turn{a, l})
	}
	return release, nil
}

// await queues r and waits until it leads the lane (errLead), or returns
// the outcome another leader sent it, or ctx's error if r left the queue
// unsent. When it returns errLead, l is busy with r as its leader.
func (l *lane) await(ctx context.Context, r *laneReq) error {
	l.mu.Lock()
	l.queue = append(l.queue, r)
	if !l.busy {
		l.busy = true
		l.mu.Unlock()
		return errLead
	}
	l.mu.Unlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if l.leave(r) {
			return ctx.Err()
		}
		// Already taken into a batch (or handed the lead): its outcome is
		// on the way and must be waited for.
		return <-r.done
	}
}

// handOff passes l's lead to the next queued request, or leaves l idle.
func (w *hotWriter) handOff(account string, l *lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) > 0 {
		l.queue[0].done <- errLead
	} else {
		l.busy = false
		w.dropLane(account, l)
	}
}

// lane returns account's lane, creating it.
func (w *hotWriter) lane(account string) *lane {
	w.lanesMu.Lock()
	defer w.lanesMu.Unlock()
	l := w.lanes[account]
	if l == nil {
		l = &lane{}
		if w.lanes == nil {
			w.lanes = map[string]*lane{}
		}
		w.lanes[account] = l
	}
	return l
}

// dropLane forgets account's lane l once it is idle; l.mu is held. A
// caller that already holds l then leads it alone, which only costs
// combining, never correctness: every write is guarded on its own.
func (w *hotWriter) dropLane(account string, l *lane) {
	w.lanesMu.Lock()
	defer w.lanesMu.Unlock()
	if w.lanes[account] == l {
		delete(w.lanes, account)
	}
}

// leave removes r from the queue if no leader has taken it yet. If r had
// just been handed the lead, the lead goes on to the next queued request.
// It reports whether r left.
func (l *lane) leave(r *laneReq) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.Index(l.queue, r)
	if i < 0 {
		return false
	}
	l.queue = slices.Delete(l.queue, i, i+1)
	select {
	case <-r.done: // can only be errLead: r was queued, not taken
		if len(l.queue) > 0 {
			l.queue[0].done <- errLead
		} else {
			l.busy = false
		}
	default:
	}
	return true
}

// take removes from the queue the leader's request (at its head) and,
// for a write, the writes queued after it, up to maxBatch and up to the
// first barrier.
func (l *lane) take(leader *laneReq) []*laneReq {
	batch := []*laneReq{leader}
	rest := l.queue[:0]
	stop := leader.barrier
	for _, q := range l.queue {
		stop = stop || q.barrier && q != leader
		switch {
		case q == leader:
		case !stop && len(batch) < maxBatch:
			batch = append(batch, q)
		default:
			rest = append(rest, q)
		}
	}
	clear(l.queue[len(rest):])
	l.queue = rest
	return batch
}

// post is one entry of a batch and the requests that posted it.
type post struct {
	e     sent
	epoch epoch // the oldest of its requests' (see epoch.older)
	reqs  []*laneReq
}

// writeBatch writes the batch and sends each request its outcome.
func (w *hotWriter) writeBatch(ctx context.Context, batch []*laneReq) {
	// An entry only its caller sends is not applied, and no send of it is
	// on its way, as of when its epoch was observed (it is new, or was
	// found unapplied): any count observed since on the same incarnation
	// is as safe, and the latest one most likely current.
	latest, cached := w.cachedEpoch(batch[0].e.Account)
	var posts []*post
	for _, r := range batch {
		if !r.shared && cached && latest.incarnation == r.epoch.incarnation {
			r.epoch.flushes = max(r.epoch.flushes, latest.flushes)
		}
		i := slices.IndexFunc(posts, func(p *post) bool { return p.e.ID == r.e.ID })
		if i < 0 {
			posts = append(posts, &post{e: r.e, epoch: r.epoch, reqs: []*laneReq{r}})
			continue
		}
		posts[i].reqs = append(posts[i].reqs, r)
		posts[i].epoch = posts[i].epoch.older(r.epoch)
	}
	done := func(p *post, err error) {
		for i, r := range p.reqs {
			if i > 0 && err == nil {
				err = errAppliedByAnother // p.e is the first request's
			}
			r.done <- err
		}
	}
	select {
	case w.slots <- struct{}{}: // a slot is held for one send: never long
	case <-ctx.Done():
		for _, p := range posts {
			done(p, ctx.Err()) // not sent
		}
		return
	}
	defer func() { <-w.slots }()
	for try := 0; len(posts) > 1 && try < 2; try++ {
		ok, err := w.writeCombined(ctx, posts)
		if err != nil {
			es := make([]sent, len(posts))
			for i, p := range posts {
				es[i] = p.e
			}
			for i, err := range w.resolve(ctx, es, err) {
				done(posts[i], err)
			}
			return
		}
		if ok {
			for _, p := range posts {
				done(p, nil)
			}
			return
		}
		if try == 0 {
			// Most often an epoch is stale (a copy ran since it was
			// observed): learn which entries are applied, and a fresh
			// epoch for the others, in two reads for the whole batch.
			posts = w.refresh(ctx, posts, done)
		}
	}
	for _, p := range posts {
		done(p, w.write(ctx, p.e, p.epoch))
	}
}

// writeCombined tries to apply the posts as one guarded update. It
// reports false when the guard did not match, or without sending anything
// when the posts' epochs are of different incarnations (one guard cannot
// demand both).
func (w *hotWriter) writeCombined(ctx context.Context, posts []*post) (bool, error) {
	var credits, debits int64
	entries := make(bson.A, len(posts))
	ids := make(bson.A, len(posts))
	ep := posts[0].epoch
	var last time.Time
	for i, p := range posts {
		var overflow bool
		if p.e.Amount > 0 {
			credits, overflow = addInt64(credits, p.e.Amount)
		} else {
			debits, overflow = addInt64(debits, -p.e.Amount)
		}
		if overflow {
			return false, nil
		}
		entries[i], ids[i] = p.e, p.e.ID
		if p.epoch.incarnation != ep.incarnation {
			return false, nil
		}
		ep = ep.older(p.epoch)
		if p.e.CreatedAt.After(last) {
			last = p.e.CreatedAt
		}
	}
	filter := append(bson.D{
		{Key: "_id", Value: posts[0].e.Account},
		{Key: "pending._id", Value: bson.D{{Key: "$nin", Value: ids}}},
		{Key: fmt.Sprintf("pending.%d", maxPending-len(posts)), Value: bson.D{{Key: "$exists", Value: false}}},
	}, ep.filter()...)
	if credits > 0 {
		filter = append(filter, bson.E{Key: "balance", Value: bson.D{{Key: "$lte", Value: math.MaxInt64 - credits}}})
	}
	if debits > credits {
		filter = append(filter, bson.E{Key: "available", Value: bson.D{{Key: "$gte", Value: debits - credits}}})
	}
	net := credits - debits
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "balance", Value: net}, {Key: "available", Value: net}}},
		{Key: "$push", Value: bson.D{{Key: "pending", Value: bson.D{{Key: "$each", Value: entries}}}}},
		{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: last}}},
		{Key: "$min", Value: bson.D{{Key: "pendingSince", Value: posts[0].e.CreatedAt}}},
		clearPlaceholder,
	}
	res, err := w.accounts.UpdateOne(ctx, filter, update, options.UpdateOne())
	if err != nil {
		return false, fmt.Errorf("write account: %w", err)
	}
	return res.MatchedCount == 1, nil
}

// refresh tells the posts that other sends applied so, and returns the
// others with the account's current epoch: observed while they were not
// applied. On a failed read it returns posts as they are.
func (w *hotWriter) refresh(ctx context.Context, posts []*post, done func(*post, error)) []*post {
	var acc accountDoc
	err := w.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: posts[0].e.Account}},
		options.FindOne().SetProjection(bson.D{{Key: "pending._id", Value: 1}, {Key: "flushes", Value: 1}, epochFields})).Decode(&acc)
	if err != nil {
		return posts
	}
	w.noteEpoch(ctx, posts[0].e.Account, acc.epoch())
	ids := make(bson.A, len(posts))
	for i, p := range posts {
		ids[i] = p.e.ID
	}
	cur, err := w.entries.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return posts
	}
	var copied []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &copied); err != nil {
		return posts
	}
	rest := posts[:0]
	for _, p := range posts {
		applied := slices.ContainsFunc(acc.Pending, func(e Entry) bool { return e.ID == p.e.ID }) ||
			slices.ContainsFunc(copied, func(c struct {
				ID string `bson:"_id"`
			}) bool {
				return c.ID == p.e.ID
			})
		if applied {
			done(p, errAppliedByAnother) // the combined write did not match
			continue
		}
		p.epoch = acc.epoch()
		rest = append(rest, p)
	}
	return rest
}
