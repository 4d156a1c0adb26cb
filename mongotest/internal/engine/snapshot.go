package engine

import (
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// advanceHorizon records that versions older than what snapshot oldest
// sees may now be gone; e.mu must be held.
func (e *Engine) advanceHorizon(oldest uint64) {
	if oldest <= e.horizon {
		return
	}
	e.horizon = oldest
	// Cluster times below the horizon can no longer be read at.
	if drop := e.horizon - e.stampBase; drop > 1024 {
		e.stamps = append(e.stamps[:0], e.stamps[drop:]...)
		e.stampBase += drop
	}
}

// SetHistoryWindow keeps every snapshot of the last d readable at its
// cluster time, as MongoDB's minSnapshotHistoryWindowInSeconds does: the
// versions a write replaces are kept for d after the write. Memory grows
// with the writes of one window (every version written within it) and is
// released as later writes to the same documents prune older versions.
func (e *Engine) SetHistoryWindow(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.history = uint32(d / time.Second)
}

// windowSnapshot is the oldest snapshot a read within the history window
// sees: the last commit before the window's start; e.mu must be held.
func (e *Engine) windowSnapshot() uint64 {
	last := e.stamps[len(e.stamps)-1]
	if e.history == 0 {
		return e.clock
	}
	if last.T <= e.history {
		return e.stampBase
	}
	start := last.T - e.history
	i := sort.Search(len(e.stamps), func(i int) bool { return e.stamps[i].T >= start })
	if i == 0 {
		return e.stampBase
	}
	return e.stampBase + uint64(i-1)
}

// ClusterTimeOf returns the cluster time of snapshot ts.
func (e *Engine) ClusterTimeOf(ts uint64) bson.Timestamp {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ts < e.stampBase {
		return e.stamps[0]
	}
	return e.stamps[ts-e.stampBase]
}

// BeginAtClusterTime starts a transaction reading at cluster time ct, as
// snapshotAt resolves it; checking the history and registering the reader
// happen under one lock, so no commit can prune what it needs in between.
func (e *Engine) BeginAtClusterTime(ct, now bson.Timestamp) (*Txn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts, err := e.snapshotAt(ct, now)
	if err != nil {
		return nil, err
	}
	t := &Txn{e: e, snap: ts, done: make(chan struct{})}
	e.active[t] = struct{}{}
	return t, nil
}

// snapshotAt returns the snapshot that a read at cluster time ct sees: the
// newest commit at or before ct. It fails with SnapshotTooOld when that
// snapshot's history is gone, and with InvalidOptions when ct is later
// than every commit and than now.
// e.mu must be held.
func (e *Engine) snapshotAt(ct, now bson.Timestamp) (uint64, error) {
	after := func(a, b bson.Timestamp) bool { return a.T > b.T || (a.T == b.T && a.I > b.I) }
	last := e.stamps[len(e.stamps)-1]
	if after(ct, last) && after(ct, now) {
		return 0, merr.New(merr.InvalidOptions, "readConcern atClusterTime value must not be greater than the current clusterTime. Requested clusterTime: { ts: Timestamp(%d, %d) }; current clusterTime: { ts: Timestamp(%d, %d) }", ct.T, ct.I, now.T, now.I)
	}
	// The first stamp after ct; the snapshot is the one before it.
	i := sort.Search(len(e.stamps), func(i int) bool { return after(e.stamps[i], ct) })
	if i == 0 {
		return 0, merr.New(merr.SnapshotTooOld, "Read timestamp Timestamp(%d, %d) is older than the oldest available timestamp.", ct.T, ct.I)
	}
	ts := e.stampBase + uint64(i-1)
	if ts < e.horizon {
		return 0, merr.New(merr.SnapshotTooOld, "Read timestamp Timestamp(%d, %d) is older than the oldest available timestamp.", ct.T, ct.I)
	}
	return ts, nil
}

// Pin keeps t's snapshot readable after t ends, until the returned
// function is called: a snapshot session reads the same point in time
// across many operations.
func (t *Txn) Pin() (unpin func()) {
	e := t.e
	e.mu.Lock()
	defer e.mu.Unlock()
	ts := t.snap
	e.pins[ts]++
	done := false
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if done {
			return
		}
		done = true
		if e.pins[ts]--; e.pins[ts] <= 0 {
			delete(e.pins, ts)
		}
	}
}
