package mongotest

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// cursorIdleTimeout is how long an untouched cursor lives (MongoDB: 10 min).
const cursorIdleTimeout = 10 * time.Minute

// defaultBatchSize is the first batch's size when the client names none.
const defaultBatchSize = 101

// maxBatchBytes bounds the documents of one reply batch.
const maxBatchBytes = 16 * 1024 * 1024

type cursor struct {
	id      int64
	ns      string
	docs    []bson.D
	lastUse time.Time
	sessKey string
	// noTimeout: never reaped for being idle (find's noCursorTimeout).
	noTimeout bool
	// txn is the transaction the cursor was opened in: when it ends, so
	// does the cursor, as on MongoDB.
	txn *engine.Txn
	// txnNumber is the transaction's number (0: none), which a getMore
	// must carry.
	txnNumber int64
	// atClusterTime is a snapshot read's time (nil: not one), which
	// every getMore reports as the first batch did.
	atClusterTime *bson.Timestamp
	// live, when set, re-reads each document as getMore returns it
	// (false: it is gone): a transaction's cursor sees the transaction's
	// own later writes, a plain one the latest commits.
	live func(d bson.D) (bson.D, bool, error)
}

type cursors struct {
	mu sync.Mutex
	m  map[int64]*cursor
}

func newCursors() *cursors { return &cursors{m: map[int64]*cursor{}} }

func (c *cursors) reap(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cur := range c.m {
		if !cur.noTimeout && now.Sub(cur.lastUse) > cursorIdleTimeout {
			delete(c.m, id)
		}
	}
}

// killSessions closes the cursors opened on the sessions with keys (nil:
// every cursor opened in a session), as MongoDB's
// killCursorsWithMatchingSessions does for killSessions and for sessions
// ended by endSessions. It returns how many it closed.
func (c *cursors) killSessions(keys []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id, cur := range c.m {
		if cur.sessKey == "" || keys != nil && !slices.Contains(keys, cur.sessKey) {
			continue
		}
		delete(c.m, id)
		n++
	}
	return n
}

// batch splits off up to n documents (n <= 0: all) within the size limit.
func batch(docs []bson.D, n int) (head, rest []bson.D) {
	if n <= 0 || n > len(docs) {
		n = len(docs)
	}
	if n <= 1 {
		return docs[:n], docs[n:] // one document always fits: no need to measure it
	}
	size := 0
	for i := 0; i < n; i++ {
		sz, _ := bsonkit.Size(docs[i])
		size += sz
		if size > maxBatchBytes && i > 0 {
			return docs[:i], docs[i:]
		}
	}
	return docs[:n], docs[n:]
}

// open returns the first batch of docs (batchSize 0: an empty one) and a
// cursor id for the rest (0: none).
func (c *cursors) open(o *op, ns string, docs []bson.D, batchSize int, single bool) (bson.D, int64) {
	reply, id, _ := c.openLive(o, ns, docs, batchSize, single, nil, nil)
	return reply, id
}

// openLive is open for a cursor whose documents live re-reads as the first
// batch returns them, and later as getMore does (nil: they are returned as
// given).
func (c *cursors) openLive(o *op, ns string, docs []bson.D, batchSize int, single bool, live, later func(bson.D) (bson.D, bool, error)) (bson.D, int64, error) {
	first, rest := []bson.D(nil), docs
	if batchSize != 0 {
		first, rest = batch(docs, batchSize)
	}
	first, err := refresh(first, live)
	if err != nil {
		return nil, 0, err
	}
	if single || len(rest) == 0 {
		return o.withClusterTime(cursorDoc(o.replies.cursor(), ns, "firstBatch", first, 0)), 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := rand.Int64N(1<<62) + 1
	cur := &cursor{id: id, ns: ns, docs: rest, lastUse: time.Now(), live: later}
	if o.sess != nil {
		cur.sessKey = o.sess.s.key
	}
	cur.txn = o.txn
	cur.atClusterTime = o.atClusterTime
	cur.noTimeout = o.noCursorTimeout
	if o.txn != nil {
		cur.txnNumber, _, _ = intField(o.cmd, "txnNumber")
	}
	c.m[id] = cur
	return o.withClusterTime(cursorDoc(o.replies.cursor(), ns, "firstBatch", first, id)), id, nil
}

// refresh passes docs through live, dropping the documents that are gone.
func refresh(docs []bson.D, live func(bson.D) (bson.D, bool, error)) ([]bson.D, error) {
	if live == nil {
		return docs, nil
	}
	out := make([]bson.D, 0, len(docs))
	for _, d := range docs {
		nd, ok, err := live(d)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, nd)
		}
	}
	return out, nil
}

// withClusterTime adds a snapshot read's atClusterTime to its cursor.
func (o *op) withClusterTime(reply bson.D) bson.D {
	if o == nil {
		return reply
	}
	return withClusterTime(reply, o.atClusterTime)
}

// withClusterTime adds at (nil: none) to reply's cursor document.
func withClusterTime(reply bson.D, at *bson.Timestamp) bson.D {
	if at == nil {
		return reply
	}
	cur := reply[0].Value.(bson.D)
	reply[0].Value = append(cur, bson.E{Key: "atClusterTime", Value: *at})
	return reply
}

// cursorReply is the storage of a cursor reply: both documents and, for a
// batch of one document (a find by _id), the batch's array.
type cursorReply struct {
	e   [5]bson.E
	one [1]any
}

// replyStorage is where a command builds its reply, in its op: a reply is
// encoded before the connection reads its next request, and no command
// keeps its reply (findAndModify, whose retry record keeps it, builds
// its own), so the storage is reused with the op. Each part is handed out
// once per command; a second reply of the same shape gets an allocation
// of its own.
type replyStorage struct {
	cursorReply  cursorReply
	cursorTaken  bool
	insertFields [3]bson.E // n, writeErrors, ok
	insertTaken  bool
}

func (s *replyStorage) cursor() *cursorReply {
	if s.cursorTaken {
		return new(cursorReply)
	}
	s.cursorTaken = true
	return &s.cursorReply
}

// insert returns room for an insert's reply fields.
func (s *replyStorage) insert() bson.D {
	if s.insertTaken {
		return make(bson.D, 0, len(s.insertFields))
	}
	s.insertTaken = true
	return s.insertFields[:0]
}

// cursorDoc builds a cursor reply in r.
func cursorDoc(r *cursorReply, ns, key string, docs []bson.D, id int64) bson.D {
	var arr bson.A
	if len(docs) <= len(r.one) {
		arr = r.one[:len(docs):len(docs)]
	} else {
		arr = make(bson.A, len(docs))
	}
	for i, d := range docs {
		arr[i] = d
	}
	// The documents are capped so that appending to one never writes
	// over the other or the batch.
	e := r.e[:]
	e[0], e[1] = bson.E{Key: "cursor", Value: bson.D(e[2:5:5])}, bson.E{Key: "ok", Value: 1.0}
	e[2], e[3], e[4] = bson.E{Key: key, Value: arr}, bson.E{Key: "id", Value: id}, bson.E{Key: "ns", Value: bsonkit.String(ns)}
	return e[0:2:2]
}

func cmdGetMore(o *op) (bson.D, error) {
	id, ok := o.cmd[0].Value.(int64)
	if !ok {
		return nil, typeErr("getMore", o.cmd[0].Value, "long")
	}
	coll, ok := field(o.cmd, "collection").(string)
	if !ok {
		return nil, typeErr("collection", field(o.cmd, "collection"), "string")
	}
	n, _, err := intField(o.cmd, "batchSize")
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, merr.New(merr.BadValue, "BatchSize value must be non-negative, but received: %d", n)
	}
	cs := o.s.core.cursors
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cur := cs.m[id]
	if cur != nil && cur.txn != nil && txnEnded(cur.txn) {
		delete(cs.m, id)
		cur = nil
	}
	if cur == nil {
		return nil, merr.New(merr.CursorNotFound, "cursor id %d not found", id)
	}
	if cur.ns != o.db+"."+coll {
		return nil, merr.New(merr.Unauthorized, "Requested getMore on namespace '%s.%s', but cursor belongs to a different namespace %s", o.db, coll, cur.ns)
	}
	if err := o.checkCursorOwner(cur); err != nil {
		return nil, err
	}
	// A getMore's maxTimeMS is a tailable awaitData cursor's await time
	// and there are none here (no capped collections): MongoDB refuses it
	// on any other cursor, which stays open (getmore_cmd.cpp).
	if _, has := bsonkit.Get(o.cmd, "maxTimeMS"); has {
		return nil, merr.New(merr.BadValue, "cannot set maxTimeMS on getMore command for a non-awaitData cursor")
	}
	next, rest := batch(cur.docs, int(n))
	next, err = refresh(next, cur.live)
	if err != nil {
		return nil, err
	}
	cur.docs = rest
	cur.lastUse = time.Now()
	outID := id
	if len(rest) == 0 {
		delete(cs.m, id)
		outID = 0
	}
	// As getmore_cmd.cpp, which reports the read concern's atClusterTime
	// the cursor restores (outside a transaction).
	return withClusterTime(cursorDoc(o.replies.cursor(), cur.ns, "nextBatch", next, outID), cur.atClusterTime), nil
}

func cmdKillCursors(o *op) (bson.D, error) {
	ids, _, err := arrayField(o.cmd, "cursors")
	if err != nil {
		return nil, err
	}
	cs := o.s.core.cursors
	cs.mu.Lock()
	defer cs.mu.Unlock()
	killed, notFound := bson.A{}, bson.A{}
	for _, v := range ids {
		id, ok := v.(int64)
		if !ok {
			return nil, typeErr("cursors", v, "long")
		}
		if _, ok := cs.m[id]; ok {
			delete(cs.m, id)
			killed = append(killed, id)
		} else {
			notFound = append(notFound, id)
		}
	}
	return ok1(bson.E{Key: "cursorsKilled", Value: killed}, bson.E{Key: "cursorsNotFound", Value: notFound},
		bson.E{Key: "cursorsAlive", Value: bson.A{}}, bson.E{Key: "cursorsUnknown", Value: bson.A{}}), nil
}

// txnEnded reports whether t has committed or aborted.
func txnEnded(t *engine.Txn) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// cursorBatchSize reads a command's cursor: {batchSize} option, the size
// of the first batch (defaultBatchSize when unset).
func cursorBatchSize(cmd bson.D) (int, error) {
	cur, err := docField(cmd, "cursor")
	if err != nil {
		return 0, err
	}
	if err := cursorFields.check(cmd[0].Key+".cursor", cur, false); err != nil {
		return 0, err
	}
	bs, has, err := intField(cur, "batchSize")
	if err != nil {
		return 0, err
	}
	if bs < 0 {
		return 0, merr.New(merr.BadValue, "BatchSize value must be non-negative, but received: %d", bs)
	}
	if !has {
		return defaultBatchSize, nil
	}
	return int(bs), nil
}

// Codes of MongoDB's getMore for a cursor used outside its session or
// transaction (getmore_cmd.cpp).
const (
	codeGetMoreNoSession    int32 = 50737
	codeGetMoreOtherSession int32 = 50738
	codeGetMoreNoTxnNumber  int32 = 50740
	codeGetMoreOtherTxn     int32 = 50741
)

// checkCursorOwner refuses a getMore sent from another session than the
// cursor's, or outside the transaction the cursor was opened in, as
// MongoDB does: a transaction's cursor reads uncommitted data.
func (o *op) checkCursorOwner(cur *cursor) error {
	sess := ""
	if o.sess != nil {
		sess = o.sess.s.key
	}
	if sess != cur.sessKey {
		if cur.sessKey != "" && sess == "" {
			return merr.New(codeGetMoreNoSession, "Cannot run getMore on cursor %d, which was created in session %x, without an lsid", cur.id, cur.sessKey)
		}
		return merr.New(codeGetMoreOtherSession, "Cannot run getMore on cursor %d, which was created in session %x, in session %x", cur.id, cur.sessKey, sess)
	}
	txnNumber, hasTxn, _ := intField(o.cmd, "txnNumber")
	if cur.txnNumber != 0 && (!hasTxn || o.txn == nil) {
		return merr.New(codeGetMoreNoTxnNumber, "Cannot run getMore on cursor %d, which was created in transaction %d, without a txnNumber", cur.id, cur.txnNumber)
	}
	if cur.txnNumber != txnNumber && hasTxn && o.txn != nil {
		return merr.New(codeGetMoreOtherTxn, "Cannot run getMore on cursor %d, which was created in transaction %d, in transaction %d", cur.id, cur.txnNumber, txnNumber)
	}
	return nil
}
