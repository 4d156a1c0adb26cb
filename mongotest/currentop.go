package mongotest

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

// $currentOp lists, as MongoDB's CurOp::reportCurrentOpForClient and
// TransactionParticipant's reportUnstashedState/reportStashedState do,
// every command in flight on every connection and every session whose
// transaction is open with no command running in it.
//
// A command in flight costs no allocation and no server-wide lock: the
// connection runs one command at a time, so its slot (conn.cur) is its
// registry, set and cleared under the connection's own lock; $currentOp
// walks the connections (Server.conns, whose lock only connecting and
// disconnecting take) and reads each slot under that lock.

// clientInfo is what $currentOp shows of a connection's client. It is
// made at the connection's creation and replaced, never changed, by its
// handshake, so a session may keep the one its transaction's last
// statement came from (MongoDB's lastClientInfo).
type clientInfo struct {
	connID   int64
	remote   string
	appName  string
	metadata bson.D // the handshake's client document, a copy; nil before it
}

// inflight is the command a connection is running, under conn.mu.
type inflight struct {
	req   *request // nil: none
	opid  int32
	start time.Time
	// txn is the session whose multi-document transaction the command
	// runs in, once it runs in it.
	txn *session
	// retry is the txnNumber of the retryable write the command runs,
	// once it has its session checked out (hasRetry).
	retry    int64
	hasRetry bool
	// killed records a killOp; interrupt, set while the command waits
	// (see [op.killable]), cancels its wait.
	killed    bool
	interrupt context.CancelCauseFunc
}

// begin records req as the connection's command in flight.
func (c *conn) begin(req *request) {
	opid := c.srv.nextOpID.Add(1)
	now := time.Now()
	c.mu.Lock()
	c.cur = inflight{req: req, opid: opid, start: now}
	c.mu.Unlock()
}

// end records that the command in flight is answered; its request's
// buffers may be reused only after.
func (c *conn) end() {
	c.mu.Lock()
	c.cur = inflight{}
	c.mu.Unlock()
}

// setClient records the handshake's client metadata.
func (c *conn) setClient(metadata bson.D) {
	ci := &clientInfo{connID: c.id, remote: c.client.remote, appName: c.appName, metadata: bsonkit.CloneDoc(metadata)}
	c.mu.Lock()
	c.client = ci
	c.mu.Unlock()
}

// txnInfo is a transaction as $currentOp shows it: MongoDB's
// SingleTransactionStats.
type txnInfo struct {
	open        bool // in progress
	number      int64
	readConcern bson.D // as the first statement gave it, a copy; nil: none
	start       time.Time
	expiry      time.Time     // start + transactionLifetimeLimitSeconds at start
	activeSince time.Time     // a statement runs in it since; zero: none
	active      time.Duration // statements' time before activeSince
	last        *clientInfo   // the client of its last statement
}

// beginTxnInfo records the start of s's transaction; s.mu is held.
func (o *op) beginTxnInfo(s *session) {
	rc, _ := docField(o.cmd, "readConcern")
	if rc != nil {
		rc = bsonkit.CloneDoc(rc)
	}
	s.opMu.Lock()
	s.info = txnInfo{open: true, number: s.txnNumber, readConcern: rc, start: s.started, expiry: s.expires, last: o.clientInfo()}
	s.opMu.Unlock()
}

// enterTxn records that o runs in s's transaction; s.mu is held.
func (o *op) enterTxn(s *session) {
	now := time.Now()
	s.opMu.Lock()
	s.info.activeSince = now
	s.opMu.Unlock()
	if c := o.conn(); c != nil {
		c.mu.Lock()
		c.cur.txn = s
		c.mu.Unlock()
	}
}

// leaveTxn records that o, which ran in s's transaction, is done with it;
// s.mu is held.
func (o *op) leaveTxn(s *session) {
	now := time.Now()
	last := o.clientInfo()
	s.opMu.Lock()
	if !s.info.activeSince.IsZero() {
		s.info.active += now.Sub(s.info.activeSince)
		s.info.activeSince = time.Time{}
	}
	if last != nil {
		s.info.last = last
	}
	s.info.open = s.state == txnInProgress
	s.opMu.Unlock()
}

// runsRetryableWrite records that o runs the retryable write n with its
// session checked out.
func (o *op) runsRetryableWrite(n int64) {
	if c := o.conn(); c != nil {
		c.mu.Lock()
		c.cur.retry, c.cur.hasRetry = n, true
		c.mu.Unlock()
	}
}

func (o *op) conn() *conn {
	if o.req == nil {
		return nil
	}
	return o.req.conn
}

// clientInfo is the client of o's connection (nil: none); the
// connection's own goroutine reads it without the lock.
func (o *op) clientInfo() *clientInfo {
	if c := o.conn(); c != nil {
		return c.client
	}
	return nil
}

// report is the transaction sub-document of MongoDB's
// SingleTransactionStats::report, at now.
func (t *txnInfo) report(now time.Time) bson.D {
	params := bson.D{
		{Key: "txnNumber", Value: t.number},
		{Key: "txnRetryCounter", Value: int32(0)},
		{Key: "autocommit", Value: false},
	}
	readTS := bson.Timestamp{}
	if t.readConcern != nil {
		params = append(params, bson.E{Key: "readConcern", Value: t.readConcern})
		if ts, ok := field(t.readConcern, "atClusterTime").(bson.Timestamp); ok {
			readTS = ts
		}
	}
	open := now.Sub(t.start)
	active := t.active
	if !t.activeSince.IsZero() {
		active += now.Sub(t.activeSince)
	}
	return bson.D{
		{Key: "parameters", Value: params},
		{Key: "readTimestamp", Value: readTS},
		{Key: "startWallClockTime", Value: isoLocal(t.start)},
		{Key: "timeOpenMicros", Value: open.Microseconds()},
		{Key: "timeActiveMicros", Value: active.Microseconds()},
		{Key: "timeInactiveMicros", Value: (open - active).Microseconds()},
		{Key: "expiryTime", Value: isoLocal(t.expiry)},
	}
}

// isoLocal is MongoDB's dateToISOStringLocal: local time, milliseconds,
// the offset with a colon.
func isoLocal(t time.Time) string {
	return t.Local().Format("2006-01-02T15:04:05.000-07:00")
}

// snapshot copies s's transaction for a report; ok is false when none is
// open, or (idleOnly) when a statement runs in it.
func (s *session) snapshot(idleOnly bool) (t txnInfo, ok bool) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if !s.info.open || (idleOnly && !s.info.activeSince.IsZero()) {
		return txnInfo{}, false
	}
	return s.info, true
}

// lsidReport is an lsid as $currentOp shows it: {id, uid}, uid being the
// digest of no user, as for unauthenticated sessions on MongoDB.
func lsidReport(id any) bson.D {
	return bson.D{{Key: "id", Value: id}, {Key: "uid", Value: bson.Binary{Subtype: 0, Data: emptyUserDigest[:]}}}
}

// currentOps lists the server's operations for $currentOp.
func (s *Server) currentOps(opts aggregate.CurrentOpOptions) []bson.D {
	now := time.Now()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	slices.SortFunc(conns, func(a, b *conn) int { return cmp.Compare(a.id, b.id) })

	var out []bson.D
	for _, c := range conns {
		c.mu.Lock()
		cur, ci := c.cur, c.client
		var raw []byte
		var db, name string
		if cur.req != nil {
			// The request's buffers are the connection's, reused once
			// the command ends: copy under the lock.
			raw = slices.Clone(cur.req.raw)
			db, name = cur.req.db, cur.req.name
		}
		c.mu.Unlock()
		if cur.req == nil && !opts.IdleConnections {
			continue
		}
		d := s.clientReport(ci, now, cur.req != nil)
		if cur.req != nil {
			d = append(d, s.opReport(cur, raw, db, name, now)...)
		}
		out = append(out, d)
	}
	if opts.IdleSessions {
		out = append(out, s.core.sessions.idleReports(s.addr, now)...)
	}
	return out
}

// clientReport is the first part of an op's document: the connection and
// its client (Client::reportState and the client metadata).
func (s *Server) clientReport(ci *clientInfo, now time.Time, active bool) bson.D {
	d := bson.D{
		{Key: "type", Value: "op"},
		{Key: "host", Value: s.addr},
		{Key: "desc", Value: "conn" + strconv.FormatInt(ci.connID, 10)},
		{Key: "connectionId", Value: numberInt(ci.connID)},
		{Key: "client", Value: ci.remote},
	}
	if ci.appName != "" {
		d = append(d, bson.E{Key: "appName", Value: ci.appName})
	}
	if ci.metadata != nil {
		d = append(d, bson.E{Key: "clientMetadata", Value: ci.metadata})
	}
	return append(d,
		bson.E{Key: "active", Value: active},
		bson.E{Key: "currentOpTime", Value: isoLocal(now)},
	)
}

// opReport is the rest of a running command's document (CurOp::reportState,
// the transaction, the lock fields).
func (s *Server) opReport(cur inflight, raw []byte, db, name string, now time.Time) bson.D {
	var cmd bson.D
	if err := bson.Unmarshal(raw, &cmd); err != nil {
		cmd = bson.D{}
	}
	d := bson.D{{Key: "opid", Value: cur.opid}}
	if h, ok := commands[name]; !ok || !h.noSession {
		if lsid, ok := field(cmd, "lsid").(bson.D); ok {
			if id, ok := bsonkit.Get(lsid, "id"); ok {
				d = append(d, bson.E{Key: "lsid", Value: lsidReport(id)})
			}
		}
	}
	running := now.Sub(cur.start)
	kind, ns := opKind(name, db, cmd)
	d = append(d,
		bson.E{Key: "secs_running", Value: int64(running / time.Second)},
		bson.E{Key: "microsecs_running", Value: running.Microseconds()},
		bson.E{Key: "op", Value: kind},
		bson.E{Key: "ns", Value: ns},
		bson.E{Key: "command", Value: cmd},
		bson.E{Key: "numYields", Value: int32(0)},
	)
	switch {
	case cur.txn != nil:
		if t, ok := cur.txn.snapshot(false); ok {
			d = append(d, bson.E{Key: "transaction", Value: t.report(now)})
		}
	case cur.hasRetry:
		d = append(d, bson.E{Key: "transaction", Value: bson.D{{Key: "parameters", Value: bson.D{{Key: "txnNumber", Value: cur.retry}}}}})
	}
	return append(d, lockFields()...)
}

// lockFields are fillLockerInfo's fields for an op that holds and waits
// for no lock: mongotest has no lock manager to report.
func lockFields() bson.D {
	return bson.D{
		{Key: "locks", Value: bson.D{}},
		{Key: "waitingForLock", Value: false},
		{Key: "lockStats", Value: bson.D{}},
	}
}

// idleReports lists the sessions whose transaction is open with no
// command running in it, as reportStashedState does.
func (ss *sessions) idleReports(host string, now time.Time) []bson.D {
	ss.mu.Lock()
	all := make([]*session, 0, len(ss.m))
	for _, s := range ss.m {
		all = append(all, s)
	}
	ss.mu.Unlock()
	// Oldest transaction first.
	type idle struct {
		s *session
		t txnInfo
	}
	var idles []idle
	for _, s := range all {
		if t, ok := s.snapshot(true); ok {
			idles = append(idles, idle{s, t})
		}
	}
	slices.SortFunc(idles, func(a, b idle) int { return a.t.start.Compare(b.t.start) })
	out := make([]bson.D, 0, len(idles))
	for _, i := range idles {
		s, t := i.s, i.t
		last := t.last
		if last == nil {
			last = &clientInfo{}
		}
		metadata := last.metadata
		if metadata == nil {
			metadata = bson.D{}
		}
		id, _ := bsonkit.Get(s.id, "id")
		d := bson.D{
			{Key: "type", Value: "idleSession"},
			{Key: "host", Value: host},
			{Key: "desc", Value: "inactive transaction"},
			{Key: "client", Value: last.remote},
			{Key: "connectionId", Value: last.connID},
			{Key: "appName", Value: last.appName},
			{Key: "clientMetadata", Value: metadata},
			{Key: "lsid", Value: lsidReport(id)},
			{Key: "transaction", Value: t.report(now)},
			{Key: "waitingForLock", Value: false},
			{Key: "active", Value: false},
			{Key: "locks", Value: bson.D{}},
			{Key: "lockStats", Value: bson.D{}},
		}
		out = append(out, d)
	}
	return out
}

// opKind is how MongoDB classifies a command for currentOp (its
// LogicalOp) and the namespace it reports.
func opKind(name, db string, cmd bson.D) (kind, ns string) {
	kind = "command"
	switch commandName(name) {
	case "insert":
		kind = "insert"
	case "update":
		kind = "update"
	case "delete":
		kind = "remove"
	case "find":
		kind = "query"
	case "getMore":
		kind = "getmore"
		if coll, ok := field(cmd, "collection").(string); ok {
			return kind, db + "." + coll
		}
		return kind, db + ".$cmd"
	}
	switch commandName(name) {
	case "insert", "update", "delete", "find", "findAndModify", "count", "distinct", "aggregate",
		"create", "drop", "collMod", "createIndexes", "listIndexes", "dropIndexes", "collStats", "killCursors":
		if len(cmd) > 0 {
			if coll, ok := cmd[0].Value.(string); ok {
				return kind, db + "." + coll
			}
		}
		if commandName(name) == "aggregate" {
			return kind, db + ".$cmd.aggregate"
		}
	case "listCollections":
		return kind, db + ".$cmd.listCollections"
	}
	return kind, db + ".$cmd"
}

// numberInt is BSONObjBuilder::appendNumber of a long long: an int when
// it fits.
func numberInt(n int64) any {
	if n >= -1<<31 && n < 1<<31 {
		return int32(n)
	}
	return n
}
