package mongotest

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

type txnState int

const (
	txnNone txnState = iota
	txnInProgress
	txnCommitted
	txnAborted
)

// session is a logical session (lsid). As on MongoDB, only a command with
// a txnNumber (a transaction's statement, a retryable write) checks the
// session out (mu) and runs alone on it; any other command carrying the
// lsid only attaches to it (attach), runs beside the others, and can be
// killed with the session (service_entry_point_common.cpp checks the
// session out only for a txnNumber).
type session struct {
	key string
	id  bson.D

	// mu is held by the command that checked the session out; it guards
	// the transaction state below.
	mu        checkoutLock
	txnNumber int64 // highest txnNumber seen (transactions and retryable writes)
	state     txnState
	txn       *engine.Txn
	started   time.Time
	// expires is when the lifetime reaper aborts the transaction: fixed
	// at its start, started + transactionLifetimeLimitSeconds, as
	// MongoDB's transactionExpireDate.
	expires time.Time
	// abortedReason explains a server-side abort (lifetime limit).
	abortedReason string
	retry         *retryRecord

	// opMu guards what every command on the session touches, checked out
	// or not: a kill does not wait for a command (it may be waiting for a
	// document another transaction holds), it interrupts it.
	opMu    sync.Mutex
	lastUse time.Time
	ops     map[*sessionOp]struct{}
	// ended is set, under mu and opMu both, when the session expires: a
	// command that comes after runs on a new record of the lsid.
	ended bool
	// unpin releases the snapshot this session's snapshot reads use,
	// pinned at pinnedAt for the history window.
	unpin    func()
	pinnedAt time.Time
	// info is what $currentOp shows of the open transaction, under opMu
	// (the command running in the transaction holds mu).
	info txnInfo
}

// sessionOp is a command attached to a session. Its wait context is made
// only when it waits (most never do): interrupt cancels it; killed records
// a kill that came before, which the wait then sees at once.
type sessionOp struct {
	s         *session
	killed    bool
	interrupt context.CancelCauseFunc
}

// errSessionKilled is the cause of a command's context when its session is
// killed.
var errSessionKilled = errors.New("session killed")

// attach records in op, which the command owns (it lives in the
// command's op), that the command runs on s; it returns false if s has
// ended (the command must use a new record). Call detach when it ends.
func (s *session) attach(op *sessionOp) bool {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.ended {
		return false
	}
	s.lastUse = time.Now()
	*op = sessionOp{s: s}
	if s.ops == nil {
		s.ops = map[*sessionOp]struct{}{}
	}
	s.ops[op] = struct{}{}
	return true
}

func (op *sessionOp) detach() {
	op.s.opMu.Lock()
	delete(op.s.ops, op)
	op.s.opMu.Unlock()
}

// interruptOps interrupts the commands running on s.
func (s *session) interruptOps() {
	s.opMu.Lock()
	for op := range s.ops {
		if op.interrupt != nil {
			op.interrupt(errSessionKilled)
		} else {
			op.killed = true
		}
	}
	s.opMu.Unlock()
}

// waitContext returns the context op waits under: ctx, also cancelled
// when its session is killed. Call stop when the wait is over.
func (op *sessionOp) waitContext(ctx context.Context) (wctx context.Context, stop func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	s := op.s
	s.opMu.Lock()
	if op.killed {
		cancel(errSessionKilled)
	} else {
		op.interrupt = cancel
	}
	s.opMu.Unlock()
	return wctx, func() {
		s.opMu.Lock()
		op.interrupt = nil
		s.opMu.Unlock()
		cancel(nil)
	}
}

// pin keeps t's snapshot for s's snapshot reads, unless one is pinned.
func (s *session) pin(t *engine.Txn) {
	s.opMu.Lock()
	if s.unpin == nil {
		s.unpin = t.Pin()
		s.pinnedAt = time.Now()
	}
	s.opMu.Unlock()
}

// unpinOlder releases s's snapshot once it is older than window.
func (s *session) unpinOlder(now time.Time, window time.Duration) {
	s.opMu.Lock()
	if s.unpin != nil && now.Sub(s.pinnedAt) > window {
		s.unpin()
		s.unpin = nil
	}
	s.opMu.Unlock()
}

// release aborts s's open transaction and releases its pinned snapshot;
// s.mu must be held.
func (ss *sessions) release(s *session, reason string) {
	ss.abortOpen(s, reason)
	s.opMu.Lock()
	if s.unpin != nil {
		s.unpin()
		s.unpin = nil
	}
	s.opMu.Unlock()
}

// endIdle marks s ended if it has been idle longer than idle, with no
// command attached, so that a command that comes after runs on a new
// record instead; s.mu must be held.
func (s *session) endIdle(now time.Time, idle time.Duration) bool {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if len(s.ops) > 0 || now.Sub(s.lastUse) <= idle {
		return false
	}
	s.ended = true
	return true
}

// retryRecord remembers the outcome of each statement of the newest
// retryable write, so a retry with the same txnNumber is not re-applied.
type retryRecord struct {
	txnNumber int64
	// stmts are the outcomes of the statements run so far: a list while
	// they are few (most of the time one), a map (byStmt) beyond.
	stmts  []stmtOutcome
	first  [1]stmtOutcome // stmts' array while it holds one
	byStmt map[int]any
	reply  bson.D // whole reply, for single-statement commands (findAndModify)
}

type stmtOutcome struct {
	stmt   int
	result any // inserted{}: an insert, whose record is id
	// id is an inserted document's _id field, a copy: the record must
	// keep nothing of its command (see [retryRecord.record]).
	id bson.E
}

// inserted marks the outcome of an insert, kept in stmtOutcome.id.
type inserted struct{}

// outcome returns the recorded result; an insert's record points at the
// outcome's own _id field.
func (s *stmtOutcome) outcome() any {
	if _, ok := s.result.(inserted); ok {
		return insertRecord{idField: &s.id}
	}
	return s.result
}

// maxListedStmts is the number of outcomes a retryRecord lists before it
// maps them.
const maxListedStmts = 8

func (r *retryRecord) done(stmt int) (any, bool) {
	if r == nil {
		return nil, false
	}
	if r.byStmt != nil {
		v, ok := r.byStmt[stmt]
		return v, ok
	}
	for i := range r.stmts {
		if s := &r.stmts[i]; s.stmt == stmt {
			return s.outcome(), true
		}
	}
	return nil, false
}

// record remembers result as stmt's outcome.
//
// The record outlives its command (until the session's next retryable
// write, or its expiry) and keeps nothing of it: the command's documents
// share one allocation (bsonkit.DecodeCommand), which a pointer into any
// of them keeps whole, with every value of every document. An insert's
// record is a copy of its _id field, a document or array _id a deep copy.
func (r *retryRecord) record(stmt int, result any) {
	if r == nil {
		return
	}
	out := stmtOutcome{stmt: stmt, result: result}
	switch res := result.(type) {
	case insertRecord:
		id, _ := detachedID(res.id())
		out.result, out.id = inserted{}, bson.E{Key: "_id", Value: id}
	case updateResult:
		if id, copied := detachedID(res.upserted); copied {
			res.upserted = id
			out.result = res
		}
	}
	if r.byStmt != nil {
		if _, ok := out.result.(inserted); ok {
			// Past maxListedStmts: an _id field of its own.
			out.result = insertRecord{idField: &bson.E{Key: "_id", Value: out.id.Value}}
		}
		r.byStmt[stmt] = out.result
		return
	}
	for i := range r.stmts {
		if r.stmts[i].stmt == stmt {
			r.stmts[i] = out
			return
		}
	}
	if r.stmts == nil {
		r.stmts = r.first[:0]
	}
	r.stmts = append(r.stmts, out)
	if len(r.stmts) > maxListedStmts {
		r.byStmt = make(map[int]any, 2*len(r.stmts))
		for i := range r.stmts {
			r.byStmt[r.stmts[i].stmt] = r.stmts[i].outcome()
		}
		r.stmts = nil
	}
}

// detachedID returns id, or a copy of it (copied) when it is a document
// or array, which may be a slice of its command's allocation.
func detachedID(id any) (_ any, copied bool) {
	switch id.(type) {
	case bson.D, bson.A:
		return bsonkit.Clone(id), true
	}
	return id, false
}

type sessions struct {
	c  *core
	mu sync.Mutex
	m  map[string]*session

	// blocked are the commands a failCommand blockConnection holds, by
	// session key: they have not checked their session out yet, yet a
	// kill interrupts them (see [sessions.block]).
	blockMu sync.Mutex
	blocked map[string]map[*blockedOp]struct{}

	commits, aborts, started int64

	// ending are the sessions endSessions named since the last refresh
	// (lastRefresh): see [sessions.endLater].
	ending      map[string]struct{}
	lastRefresh time.Time
}

// logicalSessionRefresh is how often MongoDB's logical session cache
// refreshes (logicalSessionRefreshMillis, 5 minutes by default).
const logicalSessionRefresh = 5 * time.Minute

func newSessions(c *core) *sessions {
	return &sessions{c: c, m: map[string]*session{}, lastRefresh: time.Now()}
}

// endLater records sessions that endSessions ends. As on MongoDB
// (LogicalSessionCacheImpl::endSessions), that is all it does at once: a
// transaction open on such a session keeps its documents and can still be
// committed, until the transaction lifetime limit aborts it; the session's
// cursors are closed at the next refresh of the session cache.
func (ss *sessions) endLater(keys []string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ending == nil {
		ss.ending = map[string]struct{}{}
	}
	for _, k := range keys {
		ss.ending[k] = struct{}{}
	}
}

// refresh is the session cache's periodic refresh
// (LogicalSessionCacheImpl::_refresh): every logicalSessionRefresh it
// closes the cursors of the sessions ended since the last one.
func (ss *sessions) refresh(now time.Time) {
	ss.mu.Lock()
	if now.Sub(ss.lastRefresh) < logicalSessionRefresh {
		ss.mu.Unlock()
		return
	}
	ss.lastRefresh = now
	ending := ss.ending
	ss.ending = nil
	ss.mu.Unlock()
	if len(ending) == 0 {
		return
	}
	keys := make([]string, 0, len(ending))
	for k := range ending {
		keys = append(keys, k)
	}
	ss.c.cursors.killSessions(keys)
}

// list describes the sessions for $listLocalSessions: {_id: {id, uid}},
// uid being the SHA-256 of the empty user name, as for unauthenticated
// sessions on MongoDB.
func (ss *sessions) list() []bson.D {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	uid := bson.Binary{Subtype: 0, Data: emptyUserDigest[:]}
	out := make([]bson.D, 0, len(ss.m))
	for _, s := range ss.m {
		id, _ := bsonkit.Get(s.id, "id")
		out = append(out, bson.D{{Key: "_id", Value: bson.D{{Key: "id", Value: id}, {Key: "uid", Value: uid}}}})
	}
	return out
}

var emptyUserDigest = sha256.Sum256(nil)

func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

func (ss *sessions) txnStats() bson.D {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	// Every started transaction ends committed or aborted, counted under
	// ss.mu: no session's own state (guarded by its lock) is read here.
	return bson.D{
		{Key: "currentOpen", Value: ss.started - ss.commits - ss.aborts},
		{Key: "totalStarted", Value: ss.started},
		{Key: "totalCommitted", Value: ss.commits},
		{Key: "totalAborted", Value: ss.aborts},
	}
}

func lsidKey(lsid bson.D) (string, error) {
	id, err := lsidID(lsid)
	return string(id), err
}

// lsidID returns the 16 bytes of lsid's UUID.
func lsidID(lsid bson.D) ([]byte, error) {
	id, ok := bsonkit.Get(lsid, "id")
	if !ok {
		return nil, merr.New(merr.FailedToParse, "BSON field 'OperationSessionInfo.lsid.id' is missing but a required field")
	}
	b, ok := id.(bson.Binary)
	if !ok || b.Subtype != 4 || len(b.Data) != 16 {
		return nil, merr.New(merr.BadValue, "Unsupported lsid id type")
	}
	return b.Data, nil
}

func (ss *sessions) get(lsid bson.D) (*session, error) {
	id, err := lsidID(lsid)
	if err != nil {
		return nil, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[string(id)] // no copy of the key for a session that exists
	if s == nil {
		key := string(id)
		// A copy: the command's lsid is a slice of its one allocation,
		// which would keep the whole command as long as the session.
		s = &session{key: key, id: bsonkit.CloneDoc(lsid), mu: newCheckoutLock()}
		ss.m[key] = s
	}
	return s, nil
}

// attach attaches o to lsid's session, recording it in o.sessOp; with
// checkOut, o checks the session out too (it carries a txnNumber). A
// session that expired is not used: its record is forgotten and the
// command runs on a new session of the same lsid. o attaches before it
// waits to check the session out, so that a kill of the session finds
// it, and an attached session does not expire.
func (ss *sessions) attach(o *op, lsid bson.D, checkOut bool) error {
	op := &o.sessOp
	for {
		s, err := ss.get(lsid)
		if err != nil {
			return err
		}
		if !s.attach(op) {
			ss.forget(s)
			continue
		}
		if checkOut {
			if err := o.checkOut(s); err != nil {
				op.detach()
				return err
			}
		}
		return nil
	}
}

// checkOut checks s out for o, waiting while another command has it. As
// SessionCatalog::checkOutSession's waitForConditionOrInterrupt, the wait
// ends, failing o unrun, at a killOp of o, a kill of s or o's maxTimeMS.
// Only a wait pays for its contexts.
func (o *op) checkOut(s *session) error {
	if s.mu.TryLock() {
		return nil
	}
	ctx, stop := o.sessOp.waitContext(o.ctx)
	defer stop()
	ctx, stopKill := o.killable(ctx)
	defer stopKill()
	if s.mu.lockContext(ctx) == nil {
		return nil
	}
	return waitError(ctx)
}

// checkoutLock is a session's check-out: a mutex whose wait can be cut
// short (lockContext), which sync.Mutex's cannot. Make it with
// newCheckoutLock (sessions.get does): the zero value never locks.
type checkoutLock struct{ ch chan struct{} }

func newCheckoutLock() checkoutLock { return checkoutLock{ch: make(chan struct{}, 1)} }

func (l checkoutLock) Lock() { l.ch <- struct{}{} }

func (l checkoutLock) Unlock() { <-l.ch }

func (l checkoutLock) TryLock() bool {
	select {
	case l.ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// lockContext locks l, or returns ctx's error if ctx ends first.
func (l checkoutLock) lockContext(ctx context.Context) error {
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forget drops s from the sessions, unless a new record replaced it.
func (ss *sessions) forget(s *session) {
	ss.mu.Lock()
	if ss.m[s.key] == s {
		delete(ss.m, s.key)
	}
	ss.mu.Unlock()
}

// abortOpen aborts s's open transaction; s.mu must be held. It is counted
// before its documents are released: a writer they held up must not find
// it still counted open (serverStatus) once its own write went through.
func (ss *sessions) abortOpen(s *session, reason string) {
	if s.state == txnInProgress && s.txn != nil {
		ss.mu.Lock()
		ss.aborts++
		ss.mu.Unlock()
		s.txn.Abort()
		s.state = txnAborted
		s.abortedReason = reason
		s.opMu.Lock()
		s.info.open = false
		s.opMu.Unlock()
	}
}

// reap aborts transactions past their expiry, releases snapshots older
// than the history window and forgets idle sessions.
func (ss *sessions) reap(now time.Time, idle, window time.Duration) {
	ss.mu.Lock()
	all := make([]*session, 0, len(ss.m))
	for _, s := range ss.m {
		all = append(all, s)
	}
	ss.mu.Unlock()
	for _, s := range all {
		if !s.mu.TryLock() {
			continue // a command is running on it; check next time
		}
		if s.state == txnInProgress && now.After(s.expires) {
			ss.abortOpen(s, "transaction lifetime limit exceeded")
		}
		s.unpinOlder(now, window)
		expired := s.endIdle(now, idle)
		if expired {
			ss.release(s, "session expired")
		}
		s.mu.Unlock()
		if expired {
			ss.forget(s)
		}
	}
}

// blockedOp is a command held by a fail point's blockConnection.
type blockedOp struct{ cancel context.CancelCauseFunc }

// block returns the context a command carrying lsid sleeps under while a
// fail point blocks it: ctx, also cancelled when the session is killed.
// MongoDB attaches the lsid to the operation before it evaluates fail
// points (initializeOperationSessionInfo), so killSessions
// (killSessionsLocalKillOps) interrupts the block. Call stop when the
// block is over.
func (ss *sessions) block(ctx context.Context, lsid any) (bctx context.Context, stop func()) {
	d, _ := lsid.(bson.D)
	key, err := lsidKey(d)
	if err != nil {
		return ctx, func() {}
	}
	bctx, cancel := context.WithCancelCause(ctx)
	op := &blockedOp{cancel: cancel}
	ss.blockMu.Lock()
	if ss.blocked == nil {
		ss.blocked = map[string]map[*blockedOp]struct{}{}
	}
	if ss.blocked[key] == nil {
		ss.blocked[key] = map[*blockedOp]struct{}{}
	}
	ss.blocked[key][op] = struct{}{}
	ss.blockMu.Unlock()
	return bctx, func() {
		ss.blockMu.Lock()
		delete(ss.blocked[key], op)
		if len(ss.blocked[key]) == 0 {
			delete(ss.blocked, key)
		}
		ss.blockMu.Unlock()
		cancel(nil)
	}
}

// interruptBlocked interrupts the commands a fail point blocks on the
// sessions with keys (nil: all).
func (ss *sessions) interruptBlocked(keys []string) {
	ss.blockMu.Lock()
	defer ss.blockMu.Unlock()
	for key, ops := range ss.blocked {
		if keys != nil && !slices.Contains(keys, key) {
			continue
		}
		for op := range ops {
			op.cancel(errSessionKilled)
		}
	}
}

// kill is killSessions (keys nil: killAllSessions), as MongoDB's
// killSessionsLocal (src/mongo/db/kill_sessions_local.cpp): it aborts the
// sessions' open transactions, interrupts the commands running on them or
// held by a fail point, and closes their cursors. The sessions themselves
// stay, with their transaction number, a committed transaction's outcome
// and the history of their retryable writes: MongoDB keeps those in
// config.transactions, apart from the in-memory session, so a retry after
// the kill is answered from them rather than applied again. The killing
// command holds no session of its own (it does not attach its lsid), so
// waiting here for a session's command to end cannot wait on itself or on
// another kill.
func (ss *sessions) kill(keys []string) {
	ss.interruptBlocked(keys)
	ss.mu.Lock()
	var victims []*session
	if keys == nil {
		for _, s := range ss.m {
			victims = append(victims, s)
		}
	} else {
		for _, k := range keys {
			if s := ss.m[k]; s != nil {
				victims = append(victims, s)
			}
		}
	}
	ss.mu.Unlock()
	// As MongoDB, kill the operations running on them first; then idle
	// sessions: a command blocked on another session's transaction can
	// only finish once that transaction is aborted.
	for _, s := range victims {
		s.interruptOps()
	}
	var busy []*session
	for _, s := range victims {
		if !s.mu.TryLock() {
			busy = append(busy, s)
			continue
		}
		ss.release(s, "session killed")
		s.mu.Unlock()
	}
	for _, s := range busy {
		s.mu.Lock()
		ss.release(s, "session killed")
		s.mu.Unlock()
	}
	ss.c.cursors.killSessions(keys)
}

func (s *session) stateName() string {
	switch s.state {
	case txnInProgress:
		return "in progress"
	case txnCommitted:
		return "committed"
	case txnAborted:
		return "aborted"
	}
	return "none"
}

func sessionKeys(arr bson.A) ([]string, error) {
	keys := make([]string, 0, len(arr))
	for _, v := range arr {
		d, ok := v.(bson.D)
		if !ok {
			return nil, typeErr("lsid", v, "object")
		}
		k, err := lsidKey(d)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func cmdEndSessions(o *op) (bson.D, error) {
	arr, ok := o.cmd[0].Value.(bson.A)
	if !ok {
		return nil, typeErr("endSessions", o.cmd[0].Value, "array")
	}
	keys, err := sessionKeys(arr)
	if err != nil {
		return nil, err
	}
	o.s.core.sessions.endLater(keys)
	if o.req != nil && o.req.conn != nil {
		o.req.conn.sayGoodbye()
	}
	return ok1(), nil
}

func cmdKillSessions(o *op) (bson.D, error) {
	arr, ok := o.cmd[0].Value.(bson.A)
	if !ok {
		return nil, typeErr("killSessions", o.cmd[0].Value, "array")
	}
	keys, err := sessionKeys(arr)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		// As MongoDB without access control (kill_sessions_command.cpp:
		// an empty list kills the logged-in user's sessions, which
		// without auth are all sessions).
		keys = nil
	}
	o.s.core.sessions.kill(keys)
	return ok1(), nil
}

// cmdKillAllSessions kills every session for an empty list, else the
// sessions of the users listed, one pattern per user
// (kill_all_sessions_command.cpp). mongotest has no authentication: every
// session carries the digest of no user (kNoAuthDigest, the SHA-256 of the
// empty name), which only {user: "", db: ""} names
// (getLogicalSessionUserDigestFor); a real user's name never matches it.
func cmdKillAllSessions(o *op) (bson.D, error) {
	arr, ok := o.cmd[0].Value.(bson.A)
	if !ok {
		return nil, typeErr("killAllSessions", o.cmd[0].Value, "array")
	}
	all := len(arr) == 0
	for _, v := range arr {
		d, ok := v.(bson.D)
		if !ok {
			return nil, typeErr("killAllSessions", v, "object")
		}
		noUser, err := namesNoUser(d)
		if err != nil {
			return nil, err
		}
		all = all || noUser
	}
	if all {
		o.s.core.sessions.kill(nil)
	}
	return ok1(), nil
}

// namesNoUser parses a KillAllSessionsUser {user, db} and reports whether
// it is the empty user, that of unauthenticated sessions.
func namesNoUser(d bson.D) (bool, error) {
	var user, db string
	var hasUser, hasDB bool
	for _, e := range d {
		str, ok := e.Value.(string)
		switch e.Key {
		case "user":
			hasUser = true
			user = str
		case "db":
			hasDB = true
			db = str
		default:
			return false, merr.New(merr.Location40415, "BSON field 'KillAllSessionsUser.%s' is an unknown field.", e.Key)
		}
		if !ok {
			return false, typeErr("KillAllSessionsUser."+e.Key, e.Value, "string")
		}
	}
	switch {
	case !hasUser:
		return false, merr.New(codeMissingField, "BSON field 'KillAllSessionsUser.user' is missing but a required field")
	case !hasDB:
		return false, merr.New(codeMissingField, "BSON field 'KillAllSessionsUser.db' is missing but a required field")
	}
	return user == "" && db == "", nil
}

func cmdRefreshSessions(*op) (bson.D, error) { return ok1(), nil }

func cmdStartSession(*op) (bson.D, error) {
	id := newSessionUUID()
	return ok1(bson.E{Key: "id", Value: bson.D{{Key: "id", Value: id}}}, bson.E{Key: "timeoutMinutes", Value: int32(logicalSessionTimeoutMinutes)}), nil
}

func newSessionUUID() bson.Binary {
	a, b := bson.NewObjectID(), bson.NewObjectID()
	data := append(append([]byte{}, a[:]...), b[8:12]...)
	data[6] = (data[6] & 0x0f) | 0x40
	data[8] = (data[8] & 0x3f) | 0x80
	return bson.Binary{Subtype: 4, Data: data}
}
