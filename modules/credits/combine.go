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
// best, however many callers wait. A lane queues this process's fast-path
// writes for one account; one caller at a time leads: it takes the queued
// writes and sends them as ONE guarded update (one $inc of their total,
// one $push of all their entries), then hands the lead to the next caller
// in the queue. Callers that queued while a write was in flight share the
// next round trip. Lanes are per account, so a write stuck behind another
// transaction holds up writes to that account only; and a caller whose
// context ends while its write is still queued (not yet sent) leaves the
// queue with ctx's error: nothing of it was written.
//
// The combined guard is exact: the update applies only if the account can
// take every entry of the batch in some order (credits first), which any
// serial order of concurrent calls allows. If it does not apply, every
// entry of the batch is written alone, with its own guard and its own
// error, as if there had been no batch.

// maxBatch bounds the entries of one combined write.
const maxBatch = 64

type lane struct {
	mu    sync.Mutex
	queue []*fastReq
	busy  bool // a leader is writing
}

type fastReq struct {
	e    Entry
	done chan error // receives the outcome, or errLead
}

// errLead hands the lead of a lane to the caller that receives it.
var errLead = fmt.Errorf("credits: internal: lead the lane")

// combinedWrite applies e through its lane, combined with concurrent
// writes to the same account. It returns e's own outcome.
func (s *Service) combinedWrite(ctx context.Context, e Entry) error {
	l := s.lane(e.Account)
	r := &fastReq{e: e, done: make(chan error, 1)}
	l.lock()
	l.queue = append(l.queue, r)
	if l.busy {
		l.unlock()
		select {
		case err := <-r.done:
			if err != errLead {
				return err
			}
		case <-ctx.Done():
			if l.leave(r) {
				return ctx.Err()
			}
			// Already taken into a batch (or handed the lead): its outcome
			// is on the way and must be waited for.
			if err := <-r.done; err != errLead {
				return err
			}
		}
		l.lock()
	}
	l.busy = true
	batch := l.take(r)
	l.unlock()

	// The batch belongs to several callers: one caller's cancellation
	// must not fail the others' writes, and once sent a write's outcome
	// must be known, so the write is not cut short.
	s.writeBatch(context.WithoutCancel(ctx), batch)

	l.lock()
	if len(l.queue) > 0 {
		l.queue[0].done <- errLead
	} else {
		l.busy = false
		s.dropLane(e.Account, l)
	}
	l.unlock()
	return <-r.done
}

// lane returns account's lane, creating it.
func (s *Service) lane(account string) *lane {
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	l := s.lanes[account]
	if l == nil {
		l = &lane{}
		if s.lanes == nil {
			s.lanes = map[string]*lane{}
		}
		s.lanes[account] = l
	}
	return l
}

// dropLane forgets account's lane l once it is idle; l.mu is held. A
// caller that already holds l then leads it alone, which only costs
// combining, never correctness: every write is guarded on its own.
func (s *Service) dropLane(account string, l *lane) {
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	if s.lanes[account] == l {
		delete(s.lanes, account)
	}
}

// leave removes r from the queue if no leader has taken it yet. If r had
// just been handed the lead, the lead goes on to the next queued request.
// It reports whether r left.
func (l *lane) leave(r *fastReq) bool {
	l.lock()
	defer l.unlock()
	i := slices.Index(l.queue, r)
	if i < 0 {
		return false
	}
	l.queue = slices.Delete(l.queue, i, i+1)
	select {
	case err := <-r.done: // can only be errLead: r was queued, not taken
		_ = err
		if len(l.queue) > 0 {
			l.queue[0].done <- errLead
		} else {
			l.busy = false
		}
	default:
	}
	return true
}

func (l *lane) lock()   { l.mu.Lock() }
func (l *lane) unlock() { l.mu.Unlock() }

// take removes from the queue the leader's request (at its head) and the
// requests queued after it, up to maxBatch.
func (l *lane) take(leader *fastReq) []*fastReq {
	batch := []*fastReq{leader}
	rest := l.queue[:0]
	for _, q := range l.queue {
		switch {
		case q == leader:
		case len(batch) < maxBatch:
			batch = append(batch, q)
		default:
			rest = append(rest, q)
		}
	}
	clear(l.queue[len(rest):])
	l.queue = rest
	return batch
}

// writeBatch writes the batch and sends each request its outcome.
func (s *Service) writeBatch(ctx context.Context, batch []*fastReq) {
	if len(batch) > 1 {
		ok, err := s.writeCombined(ctx, batch)
		if ok || err != nil {
			for _, r := range batch {
				r.done <- err
			}
			return
		}
	}
	for _, r := range batch {
		r.done <- s.fastWrite(ctx, r.e)
	}
}

// writeCombined tries to apply the batch as one guarded update. It
// reports false when the guard did not match.
func (s *Service) writeCombined(ctx context.Context, batch []*fastReq) (bool, error) {
	var credits, debits int64
	entries := make(bson.A, len(batch))
	ids := make(bson.A, len(batch))
	var last time.Time
	for i, r := range batch {
		var overflow bool
		if r.e.Amount > 0 {
			credits, overflow = addInt64(credits, r.e.Amount)
		} else {
			debits, overflow = addInt64(debits, -r.e.Amount)
		}
		if overflow {
			return false, nil
		}
		entries[i], ids[i] = r.e, r.e.ID
		if r.e.CreatedAt.After(last) {
			last = r.e.CreatedAt
		}
	}
	account := batch[0].e.Account
	filter := bson.D{
		{Key: "_id", Value: account},
		{Key: "pending._id", Value: bson.D{{Key: "$nin", Value: ids}}},
		{Key: fmt.Sprintf("pending.%d", maxPending-len(batch)), Value: bson.D{{Key: "$exists", Value: false}}},
	}
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
		{Key: "$min", Value: bson.D{{Key: "pendingSince", Value: batch[0].e.CreatedAt}}},
	}
	res, err := s.accounts.UpdateOne(ctx, filter, update, options.UpdateOne())
	if err != nil {
		return false, fmt.Errorf("write account: %w", err)
	}
	return res.MatchedCount == 1, nil
}
