package engine

import (
	"cmp"
	"context"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Txn is a unit of work that reads one snapshot plus its own writes and
// publishes its writes atomically at Commit. Plain (non-transaction)
// operations use a Txn too, for one statement.
type Txn struct {
	e    *Engine
	snap uint64
	// order is the pending writes, in the order of their first write;
	// writes indexes it by record once it is long (a linear search is
	// cheaper than a map for the few writes of most transactions).
	order  []pendingWrite
	first  [1]pendingWrite // order's array while it holds one write
	writes map[*record]int
	// done is closed when the transaction ends; made (under e.mu) only
	// when someone waits for that.
	done  chan struct{}
	state txnState
	ts    uint64 // commit timestamp
	// multi: a multi-document transaction, whose new collections stay
	// invisible to others until it commits (created lists them).
	multi   bool
	created []*collection
	// touched are the collections a multi-document transaction has read
	// or written: dropping one waits for the transaction, as MongoDB's
	// collection locks make it.
	touched map[*collection]struct{}
}

// touch records that t used c; e.mu must be held.
func (t *Txn) touch(c *collection) {
	if !t.multi || c == nil {
		return
	}
	if t.touched == nil {
		t.touched = map[*collection]struct{}{}
	}
	t.touched[c] = struct{}{}
}

type pendingWrite struct {
	c   *collection
	r   *record
	doc bson.D // the pending document (nil: deleted)
}

// indexWritesFrom is the number of writes from which writes indexes order.
const indexWritesFrom = 8

// written returns t's pending document for r (nil: deleted) and whether
// t wrote r; e.mu must be held.
func (t *Txn) written(r *record) (bson.D, bool) {
	if t.writes != nil {
		i, ok := t.writes[r]
		if !ok {
			return nil, false
		}
		return t.order[i].doc, true
	}
	for i := range t.order {
		if t.order[i].r == r {
			return t.order[i].doc, true
		}
	}
	return nil, false
}

type txnState int

const (
	txnOpen txnState = iota
	txnCommitted
	txnAborted
)

// Conflict is a write conflict with another open transaction.
type Conflict struct{ holder *Txn }

func (c *Conflict) Error() string { return "write conflict" }

// Wait blocks until the conflicting transaction ends or ctx is done.
func (c *Conflict) Wait(ctx context.Context) error {
	if c.holder == nil {
		return nil
	}
	select {
	case <-c.holder.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Begin starts a transaction reading the latest committed snapshot.
func (e *Engine) Begin() *Txn {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &Txn{e: e, snap: e.clock}
	e.active[t] = struct{}{}
	return t
}

// SetMultiDocument marks t as a multi-document transaction: collections
// and indexes it creates become visible to others only when it commits,
// and disappear if it aborts.
func (t *Txn) SetMultiDocument() { t.multi = true }

// ensureColl returns ns for a write by t, creating it when missing. A
// collection another open transaction is creating is a *Conflict.
func (t *Txn) ensureColl(ns Namespace, options bson.D) (*collection, bool, error) {
	if c := t.e.coll(ns); c != nil {
		if c.creator != nil && c.creator != t {
			return nil, false, &Conflict{holder: c.creator}
		}
		return c, false, nil
	}
	if err := CheckCreatable(ns); err != nil {
		return nil, false, err
	}
	c, _ := t.e.ensureColl(ns, options)
	if t.multi {
		c.creator = t
		t.created = append(t.created, c)
	}
	return c, true, nil
}

// Snapshot returns the commit timestamp this transaction reads at.
func (t *Txn) Snapshot() uint64 { return t.snap }

// Done is closed when the transaction commits or aborts.
func (t *Txn) Done() <-chan struct{} {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	if t.done == nil {
		if t.state != txnOpen {
			return closedDone
		}
		t.done = make(chan struct{})
	}
	return t.done
}

var closedDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// end closes done, if anyone asked for it; e.mu must be held.
func (t *Txn) end() {
	if t.done != nil {
		close(t.done)
	}
}

// Dirty reports whether the transaction has pending writes.
func (t *Txn) Dirty() bool { return len(t.order) > 0 || len(t.created) > 0 }

func (t *Txn) visible(r *record) bson.D {
	if d, ok := t.written(r); ok {
		return d
	}
	return r.at(t.snap)
}

// Scan calls fn with each document visible to t in natural order until fn
// returns false. Documents are shared: callers must not modify them.
func (t *Txn) Scan(ns Namespace, fn func(doc bson.D) bool) {
	t.e.mu.Lock()
	c := t.e.collFor(ns, t)
	t.touch(c)
	if c == nil {
		t.e.mu.Unlock()
		return
	}
	docs := make([]bson.D, 0, len(c.order))
	for _, r := range c.order {
		if r.removed {
			continue
		}
		if d := t.visible(r); d != nil {
			docs = append(docs, d)
		}
	}
	t.e.mu.Unlock()
	for _, d := range docs {
		if !fn(d) {
			return
		}
	}
}

// FindID returns the document with _id id visible to t, or nil.
func (t *Txn) FindID(ns Namespace, id any) bson.D {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	c := t.e.collFor(ns, t)
	t.touch(c)
	if c == nil {
		return nil
	}
	r := c.lookupKey(id)
	if r == nil {
		return nil
	}
	return t.visible(r)
}

// FindIDs returns the documents visible to t whose _id is one of ids, in
// natural order, each once: ids that are equal (1, 1.0, int64(1)) or
// repeated name one document. It examines only those documents.
func (t *Txn) FindIDs(ns Namespace, ids []any) []bson.D {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	c := t.e.collFor(ns, t)
	t.touch(c)
	if c == nil {
		return nil
	}
	recs := make([]*record, 0, len(ids))
	for _, id := range ids {
		if r := c.lookupKey(id); r != nil {
			recs = append(recs, r)
		}
	}
	// A record's seq is its place in c.order, which Scan follows.
	slices.SortFunc(recs, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
	recs = slices.Compact(recs)
	docs := make([]bson.D, 0, len(recs))
	for _, r := range recs {
		if d := t.visible(r); d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// Insert adds doc (which must carry _id), creating ns if needed. It fails
// with a duplicate key error or a *Conflict.
func (t *Txn) Insert(ns Namespace, doc bson.D) error {
	key, _, ok := idKey(doc)
	if !ok {
		return merr.New(merr.InternalError, "document without _id")
	}
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	if err := t.checkOpen(); err != nil {
		return err
	}
	c, _, err := t.ensureColl(ns, nil)
	if err != nil {
		return err
	}
	t.touch(c)
	r := c.records[key]
	if r != nil {
		// A duplicate visible in t's snapshot is E11000 before any
		// conflict, as MongoDB's storage engine checks it first: even
		// while another transaction deletes or updates that document, or
		// when a commit after t's snapshot deleted it.
		if t.visible(r) != nil {
			return duplicateKey(ns, c.indexes[0], doc)
		}
		if err := t.claim(r); err != nil {
			return err
		}
	} else {
		t.e.seq++
		r = &record{key: key, seq: t.e.seq}
		c.records[key] = r
		c.order = append(c.order, r)
	}
	return t.put(ns, c, r, doc)
}

// Replace swaps the visible document with old's _id for doc.
func (t *Txn) Replace(ns Namespace, old, doc bson.D) error {
	return t.write(ns, old, doc)
}

// Delete removes the visible document with old's _id.
func (t *Txn) Delete(ns Namespace, old bson.D) error {
	return t.write(ns, old, nil)
}

func (t *Txn) write(ns Namespace, old, doc bson.D) error {
	key, _, ok := idKey(old)
	if !ok {
		return merr.New(merr.InternalError, "document without _id")
	}
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	if err := t.checkOpen(); err != nil {
		return err
	}
	c := t.e.collFor(ns, t)
	t.touch(c)
	if c == nil || c.records[key] == nil {
		return &Conflict{} // it vanished under us: the caller retries
	}
	r := c.records[key]
	if err := t.claim(r); err != nil {
		return err
	}
	if t.visible(r) == nil {
		return &Conflict{}
	}
	return t.put(ns, c, r, doc)
}

func (t *Txn) checkOpen() error {
	if t.state != txnOpen {
		return merr.New(merr.NoSuchTransaction, "transaction is no longer open")
	}
	return nil
}

// claim makes t the writer of r: first writer wins, and a record committed
// after t's snapshot is a conflict too.
func (t *Txn) claim(r *record) error {
	if r.owner != nil && r.owner != t {
		return &Conflict{holder: r.owner}
	}
	if v, ok := r.latest(); ok && v.ts > t.snap {
		return &Conflict{}
	}
	return nil
}

// put records doc as r's pending version after the unique index checks.
func (t *Txn) put(ns Namespace, c *collection, r *record, doc bson.D) error {
	if doc != nil {
		for _, ix := range c.indexes[1:] {
			if !ix.unique && !ix.prepareUnique {
				continue
			}
			var had []string
			if !ix.unique {
				// prepareUnique refuses only keys this write adds: the
				// duplicates already there stay writable.
				had = ix.keysOf(t.visible(r))
			}
			if err := t.checkUnique(ns, ix, r, doc, had); err != nil {
				return err
			}
		}
		for _, ix := range c.indexes[1:] {
			ix.add(r, doc)
		}
	}
	prev, seen := t.written(r)
	switch {
	case !seen:
		if t.order == nil {
			t.order = t.first[:0]
		}
		t.order = append(t.order, pendingWrite{c: c, r: r, doc: doc})
		if t.writes != nil {
			t.writes[r] = len(t.order) - 1
		} else if len(t.order) >= indexWritesFrom {
			t.writes = make(map[*record]int, 2*len(t.order))
			for i, w := range t.order {
				t.writes[w.r] = i
			}
		}
	case t.writes != nil:
		t.order[t.writes[r]].doc = doc
	default:
		for i := range t.order {
			if t.order[i].r == r {
				t.order[i].doc = doc
				break
			}
		}
	}
	r.owner = t
	if prev != nil {
		c.unindex(r, prev) // an earlier write of this transaction, now replaced
	}
	return nil
}

func (t *Txn) checkUnique(ns Namespace, ix *index, self *record, doc bson.D, had []string) error {
	for _, k := range ix.keysOf(doc) {
		if hasKey(had, k) {
			continue
		}
		for other := range ix.entries[k] {
			if other == self || other.removed {
				continue
			}
			if d := t.visible(other); d != nil && hasKey(ix.keysOf(d), k) {
				return duplicateKey(ns, ix, doc)
			}
			if other.owner != nil && other.owner != t {
				if d, _ := other.owner.written(other); d != nil && hasKey(ix.keysOf(d), k) {
					return &Conflict{holder: other.owner}
				}
			}
			if v, ok := other.latest(); ok && v.ts > t.snap && v.doc != nil && hasKey(ix.keysOf(v.doc), k) {
				return &Conflict{}
			}
		}
	}
	return nil
}

// Commit publishes every write atomically and returns the commit timestamp.
func (t *Txn) Commit() uint64 {
	e := t.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.state != txnOpen {
		return t.ts
	}
	t.state = txnCommitted
	delete(e.active, t)
	for _, c := range t.created {
		c.creator = nil
	}
	if len(t.order) > 0 || len(t.created) > 0 {
		e.clock++
		t.ts = e.clock
		e.stamps = append(e.stamps, e.tick())
		oldest := e.oldestSnapshot()
		for _, w := range t.order {
			w.r.addVersion(version{ts: t.ts, doc: w.doc})
			w.r.owner = nil
			if !w.r.removed && w.c.records[w.r.key] == w.r {
				e.prune(w.c, w.r, oldest)
			}
		}
	} else {
		t.ts = e.clock
	}
	t.end()
	return t.ts
}

// Abort discards every write.
func (t *Txn) Abort() {
	e := t.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.state != txnOpen {
		return
	}
	t.state = txnAborted
	delete(e.active, t)
	for _, c := range t.created {
		if d := e.dbs[c.db]; d != nil && d.colls[c.name] == c {
			delete(d.colls, c.name)
		}
	}
	for _, w := range t.order {
		w.r.owner = nil
		if len(w.r.versions) == 0 && w.c.records[w.r.key] == w.r {
			delete(w.c.records, w.r.key)
			w.r.removed = true
			w.c.dead++
		}
		w.c.unindex(w.r, w.doc)
	}
	t.end()
}

// ClusterTime is the timestamp of the last commit.
func (e *Engine) ClusterTime() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock
}
