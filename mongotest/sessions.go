package mongotest

import (
	"errors"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Error labels the server attaches.
const (
	labelTransient     = "TransientTransactionError"
	labelRetryable     = "RetryableWriteError"
	labelUnknownCommit = "UnknownTransactionCommitResult"
)

type txnState int

const (
	txnNone txnState = iota
	txnInProgress
	txnCommitted
	txnAborted
)

// session is a logical session (lsid). Commands on one session run one at
// a time, as on MongoDB, where a session is checked out per operation.
type session struct {
	key string
	id  bson.D

	mu        sync.Mutex
	lastUse   time.Time
	txnNumber int64 // highest txnNumber seen (transactions and retryable writes)
	state     txnState
	txn       *engine.Txn
	started   time.Time
	// abortedReason explains a server-side abort (lifetime limit).
	abortedReason string
	retry         *retryRecord
	ended         bool
	// unpin releases the snapshot this session's snapshot reads use,
	// pinned at pinnedAt for the history window.
	unpin    func()
	pinnedAt time.Time
}

// unpinOlder releases s's snapshot once it is older than window; s.mu
// must be held.
func (s *session) unpinOlder(now time.Time, window time.Duration) {
	if s.unpin != nil && now.Sub(s.pinnedAt) > window {
		s.unpin()
		s.unpin = nil
	}
}

// end forgets the session's open transaction and pinned snapshot; s.mu
// must be held.
func (ss *sessions) end(s *session, reason string) {
	ss.abortOpen(s, reason)
	if s.unpin != nil {
		s.unpin()
		s.unpin = nil
	}
	s.ended = true
}

// retryRecord remembers the outcome of each statement of the newest
// retryable write, so a retry with the same txnNumber is not re-applied.
type retryRecord struct {
	txnNumber int64
	stmts     map[int]any
	reply     bson.D // whole reply, for single-statement commands (findAndModify)
}

func (r *retryRecord) done(stmt int) (any, bool) {
	if r == nil {
		return nil, false
	}
	v, ok := r.stmts[stmt]
	return v, ok
}

func (r *retryRecord) record(stmt int, result any) {
	if r != nil {
		r.stmts[stmt] = result
	}
}

type sessions struct {
	c  *core
	mu sync.Mutex
	m  map[string]*session

	commits, aborts, started int64
}

func newSessions(c *core) *sessions { return &sessions{c: c, m: map[string]*session{}} }

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
	id, ok := bsonkit.Get(lsid, "id")
	if !ok {
		return "", merr.New(merr.FailedToParse, "BSON field 'OperationSessionInfo.lsid.id' is missing but a required field")
	}
	b, ok := id.(bson.Binary)
	if !ok || b.Subtype != 4 || len(b.Data) != 16 {
		return "", merr.New(merr.BadValue, "Unsupported lsid id type")
	}
	return string(b.Data), nil
}

func (ss *sessions) get(lsid bson.D) (*session, error) {
	key, err := lsidKey(lsid)
	if err != nil {
		return nil, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[key]
	if s == nil {
		s = &session{key: key, id: lsid}
		ss.m[key] = s
	}
	return s, nil
}

// abortOpen aborts s's open transaction; s.mu must be held.
func (ss *sessions) abortOpen(s *session, reason string) {
	if s.state == txnInProgress && s.txn != nil {
		s.txn.Abort()
		s.state = txnAborted
		s.abortedReason = reason
		ss.mu.Lock()
		ss.aborts++
		ss.mu.Unlock()
	}
}

// reap aborts transactions older than lifetime, releases snapshots older
// than the history window and forgets idle sessions.
func (ss *sessions) reap(now time.Time, lifetime, idle, window time.Duration) {
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
		if s.state == txnInProgress && now.Sub(s.started) > lifetime {
			ss.abortOpen(s, "transaction lifetime limit exceeded")
		}
		s.unpinOlder(now, window)
		expired := now.Sub(s.lastUse) > idle
		if expired {
			ss.end(s, "session expired")
		}
		s.mu.Unlock()
		if expired {
			ss.mu.Lock()
			delete(ss.m, s.key)
			ss.mu.Unlock()
		}
	}
}

// kill aborts the open transactions of the given sessions (nil: all) and
// forgets them. self is the session the killing command runs on, if any:
// its caller already holds self.mu, so it is handled without locking
// (locking it again would deadlock the command on itself).
func (ss *sessions) kill(keys []string, self *session) {
	ss.mu.Lock()
	var victims []*session
	if keys == nil {
		for k, s := range ss.m {
			victims = append(victims, s)
			delete(ss.m, k)
		}
	} else {
		for _, k := range keys {
			if s := ss.m[k]; s != nil {
				victims = append(victims, s)
				delete(ss.m, k)
			}
		}
	}
	ss.mu.Unlock()
	// Idle sessions first: a command blocked on another session's
	// transaction can only finish once that transaction is aborted.
	var busy []*session
	for _, s := range victims {
		if s == self {
			ss.end(s, "session killed")
			continue
		}
		if !s.mu.TryLock() {
			busy = append(busy, s)
			continue
		}
		ss.end(s, "session killed")
		s.mu.Unlock()
	}
	for _, s := range busy {
		s.mu.Lock()
		ss.end(s, "session killed")
		s.mu.Unlock()
	}
}

// closeAll aborts every open transaction (server shutdown).
func (ss *sessions) closeAll() { ss.kill(nil, nil) }

// execute runs o under its session's rules: transactions, retryable
// writes, fail points, error labels.
func (ss *sessions) execute(o *op, h handler) (bson.D, error) {
	lsidV, hasLsid := bsonkit.Get(o.cmd, "lsid")
	txnNumV, hasTxn := bsonkit.Get(o.cmd, "txnNumber")
	autocommitV, hasAutocommit := bsonkit.Get(o.cmd, "autocommit")
	if !hasAutocommit {
		if err := checkPlainReadConcern(o.name, o.cmd); err != nil {
			return nil, err
		}
	}
	if !hasLsid {
		if hasTxn {
			return nil, merr.New(merr.InvalidOptions, "Transaction number requires a session ID to also be specified")
		}
		if hasAutocommit {
			return nil, merr.New(merr.InvalidOptions, "'autocommit' field requires a transaction number to also be specified")
		}
		if fp := ss.c.failpoints.match(o.req); fp != nil {
			if reply, handled := o.s.applyFailPoint(o, fp, false, false); handled {
				return reply, nil
			}
		}
		return ss.c.runPlain(o, h)
	}
	lsid, ok := lsidV.(bson.D)
	if !ok {
		return nil, typeErr("lsid", lsidV, "object")
	}
	s, err := ss.get(lsid)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUse = time.Now()
	o.sess = s

	if !hasTxn {
		if hasAutocommit {
			return nil, merr.New(merr.InvalidOptions, "'autocommit' field requires a transaction number to also be specified")
		}
		if fp := ss.c.failpoints.match(o.req); fp != nil {
			if reply, handled := o.s.applyFailPoint(o, fp, false, false); handled {
				return reply, nil
			}
		}
		return ss.c.runPlain(o, h)
	}
	txnNumber, ok := txnNumV.(int64)
	if !ok {
		return nil, typeErr("txnNumber", txnNumV, "long")
	}
	if !hasAutocommit {
		return ss.retryableWrite(o, h, s, txnNumber)
	}
	if ac, ok := autocommitV.(bool); !ok || ac {
		return nil, merr.New(merr.InvalidOptions, "Specifying autocommit=true is not allowed.")
	}
	return ss.inTransaction(o, h, s, txnNumber)
}

func (ss *sessions) retryableWrite(o *op, h handler, s *session, n int64) (bson.D, error) {
	if !h.write {
		// A txnNumber on a read outside a transaction is refused by MongoDB.
		if o.name == "commitTransaction" || o.name == "abortTransaction" {
			return nil, merr.New(merr.InvalidOptions, "%s must be run within a transaction", o.name)
		}
		return nil, merr.New(merr.InvalidOptions, "Transaction numbers are only allowed on a replica set member or mongos")
	}
	if n < s.txnNumber {
		return nil, merr.New(merr.TransactionTooOld, "Retryable write with txnNumber %d is prohibited on session %x because a newer retryable write with txnNumber %d has already started on this session.", n, s.key, s.txnNumber)
	}
	if n > s.txnNumber || s.retry == nil || s.retry.txnNumber != n {
		if n == s.txnNumber && s.state != txnNone {
			return nil, merr.New(merr.IncompleteTransactionHistory, "Cannot retry a retryable write that has been converted into a transaction")
		}
		ss.abortOpen(s, "superseded")
		s.txnNumber = n
		s.state = txnNone
		s.txn = nil
		s.retry = &retryRecord{txnNumber: n, stmts: map[int]any{}}
	}
	o.retry = s.retry
	if fp := ss.c.failpoints.match(o.req); fp != nil {
		if reply, handled := o.s.applyFailPoint(o, fp, false, true); handled {
			return reply, nil
		}
	}
	reply, err := ss.c.runPlain(o, h)
	if err != nil {
		var me *merr.Error
		if errors.As(err, &me) && isRetryableCode(me.Code) && !me.HasLabel(labelRetryable) {
			me.Labels = append(me.Labels, labelRetryable)
		}
	}
	return reply, err
}

func (ss *sessions) inTransaction(o *op, h handler, s *session, n int64) (reply bson.D, err error) {
	defer func() {
		// A command that panics fails, and a failed command aborts its
		// transaction, as any other error does.
		if p := recover(); p != nil {
			ss.abortOpen(s, "command failed")
			panic(p)
		}
	}()
	start, _ := boolField(o.cmd, "startTransaction", false)
	isCommit := o.name == "commitTransaction"
	isAbort := o.name == "abortTransaction"
	if !h.inTxn {
		return nil, merr.New(merr.OperationNotSupportedInTransaction, "Cannot run '%s' in a multi-document transaction.", o.name)
	}
	if n < s.txnNumber {
		return nil, merr.New(merr.TransactionTooOld, "Cannot start transaction %d on session %x because a newer transaction %d has already started.", n, s.key, s.txnNumber)
	}
	if start {
		if isCommit || isAbort {
			return nil, merr.New(merr.InvalidOptions, "Cannot start a transaction with %s", o.name)
		}
		if n == s.txnNumber && (s.state != txnNone || s.retry != nil) {
			return nil, merr.New(merr.ConflictingOperationInProgress, "Cannot start a transaction at given transaction number %d a transaction with the same number is in state %s", n, s.stateName())
		}
		if err := checkTxnReadConcern(o.cmd); err != nil {
			return nil, err
		}
		ss.abortOpen(s, "superseded")
		s.txnNumber = n
		s.retry = nil
		txn, err := o.beginSnapshot(false)
		if err != nil {
			// As on MongoDB, the transaction that could not start is
			// aborted: its next statement gets NoSuchTransaction.
			s.state, s.txn, s.abortedReason = txnAborted, nil, "its snapshot could not be opened"
			return nil, err
		}
		txn.SetMultiDocument()
		s.state = txnInProgress
		s.txn = txn
		s.started = time.Now()
		s.abortedReason = ""
		ss.mu.Lock()
		ss.started++
		ss.mu.Unlock()
	} else {
		if isCommit || isAbort {
			// MongoDB evaluates failCommand before looking at the
			// transaction's state, so a retried commit meets it too.
			if fp := ss.c.failpoints.match(o.req); fp != nil {
				o.txn = s.txn
				if reply, handled := o.s.applyFailPoint(o, fp, true, true); handled {
					return reply, nil
				}
			}
		}
		if n > s.txnNumber || (n == s.txnNumber && s.state == txnNone) {
			return nil, noSuchTxn(n, s.txnNumber)
		}
		if _, has := bsonkit.Get(o.cmd, "readConcern"); has {
			return nil, merr.New(merr.InvalidOptions, "Only the first command in a transaction may specify a readConcern")
		}
		switch s.state {
		case txnCommitted:
			if isCommit {
				return ok1(), nil
			}
			if isAbort {
				return nil, merr.New(merr.TransactionCommitted, "Cannot abort transaction %d on session %x because it has been committed", n, s.key)
			}
			return nil, merr.New(merr.TransactionCommitted, "Transaction %d has been committed.", n)
		case txnAborted:
			if isAbort {
				return nil, noSuchTxn(n, s.txnNumber)
			}
			e := merr.New(merr.NoSuchTransaction, "Transaction with { txnNumber: %d } has been aborted.", n)
			if s.abortedReason != "" {
				e.Msg += " Reason: " + s.abortedReason
			}
			return nil, e.WithLabels(labelTransient)
		}
	}
	if !isCommit && !isAbort {
		if _, has := bsonkit.Get(o.cmd, "writeConcern"); has {
			return nil, merr.New(merr.InvalidOptions, "Cannot set write concern after starting a transaction.")
		}
	}
	o.txn = s.txn
	if start || (!isCommit && !isAbort) {
		if fp := ss.c.failpoints.match(o.req); fp != nil {
			if reply, handled := o.s.applyFailPoint(o, fp, true, false); handled {
				if isErrorReply(reply) {
					ss.abortOpen(s, "command failed")
				}
				return reply, nil
			}
		}
	}
	reply, err = h.run(o)
	switch {
	case isCommit:
		if err == nil {
			s.txn.Commit()
			s.state = txnCommitted
			ss.mu.Lock()
			ss.commits++
			ss.mu.Unlock()
		}
	case isAbort:
		if err == nil {
			ss.abortOpen(s, "aborted by client")
		}
	case err != nil || hasWriteErrors(reply):
		ss.abortOpen(s, "command failed")
	}
	if err != nil {
		var me *merr.Error
		if errors.As(err, &me) {
			if isTransientCode(me.Code) && !me.HasLabel(labelTransient) {
				me.Labels = append(me.Labels, labelTransient)
			}
		}
	}
	return reply, err
}

func noSuchTxn(n, active int64) *merr.Error {
	return merr.New(merr.NoSuchTransaction, "Given transaction number %d does not match any in-progress transactions. The active transaction number is %d", n, active).WithLabels(labelTransient)
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

func checkTxnReadConcern(cmd bson.D) error {
	rc, err := docField(cmd, "readConcern")
	if err != nil || rc == nil {
		return err
	}
	level, _ := bsonkit.Get(rc, "level")
	switch level {
	case nil, "local", "majority", "snapshot":
	default:
		return merr.New(merr.InvalidOptions, "The readConcern level must be either 'snapshot', 'majority' or 'local' within a transaction")
	}
	if _, has := bsonkit.Get(rc, "atClusterTime"); has && level != "snapshot" {
		return merr.New(merr.InvalidOptions, "readConcern level must be snapshot when atClusterTime is specified")
	}
	return nil
}

// checkPlainReadConcern refuses, as MongoDB 5.0+ does, a snapshot read
// concern outside a transaction on any command but the snapshot reads.
func checkPlainReadConcern(name string, cmd bson.D) error {
	rc, err := docField(cmd, "readConcern")
	if err != nil || rc == nil {
		return err
	}
	if level, _ := bsonkit.Get(rc, "level"); level != "snapshot" {
		return nil
	}
	switch name {
	case "find", "aggregate", "distinct", "getMore":
		return nil
	}
	return merr.New(merr.InvalidOptions, "Command %s does not support %s :: caused by :: read concern not supported", name, bsonkit.FormatValue(rc))
}

func hasWriteErrors(reply bson.D) bool {
	_, ok := bsonkit.Get(reply, "writeErrors")
	return ok
}

func isErrorReply(reply bson.D) bool {
	okv, _ := bsonkit.Get(reply, "ok")
	f, _ := bsonkit.ToFloat(okv)
	return reply != nil && f == 0
}

// isRetryableCode: errors a driver may retry a write after (the server
// adds RetryableWriteError for them).
func isRetryableCode(code int32) bool {
	switch code {
	case 6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436:
		return true
	}
	return false
}

// isTransientCode: errors inside a transaction after which the whole
// transaction may be retried.
func isTransientCode(code int32) bool {
	switch code {
	case merr.WriteConflict, merr.NoSuchTransaction, 24 /* LockTimeout */, 267 /* PreparedTransactionInProgress */, merr.ExceededTimeLimit:
		return true
	}
	return isRetryableCode(code)
}

// isTransientCommitCode: errors of commitTransaction or abortTransaction
// after which the whole transaction may be retried. Unlike other commands
// in a transaction, retryable codes do not qualify (the commit itself is
// retried), and NoSuchTransaction only without a write concern error, as
// the data could otherwise still be rolled back (MongoDB's
// isTransientTransactionError).
func isTransientCommitCode(code int32, hasWriteConcernError bool) bool {
	switch code {
	case merr.WriteConflict, 24 /* LockTimeout */, 267 /* PreparedTransactionInProgress */, 246 /* SnapshotUnavailable */, 239 /* SnapshotTooOld */ :
		return true
	case merr.NoSuchTransaction:
		return !hasWriteConcernError
	}
	return false
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
	o.s.core.sessions.kill(keys, o.sess)
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
	o.s.core.sessions.kill(keys, o.sess)
	return ok1(), nil
}

func cmdKillAllSessions(o *op) (bson.D, error) {
	o.s.core.sessions.kill(nil, o.sess)
	return ok1(), nil
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

// The session layer commits or aborts; these only validate.
func cmdCommitTransaction(*op) (bson.D, error) { return ok1(), nil }

func cmdAbortTransaction(*op) (bson.D, error) { return ok1(), nil }
