package mongotest

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

const (
	minWireVersion = 0
	maxWireVersion = 21 // MongoDB 7.0
	serverVersion  = "7.0.0"

	// logicalSessionTimeoutMinutes is advertised in hello and is how long
	// an idle session lives.
	logicalSessionTimeoutMinutes = 30
)

// electionID is constant: this single-member set never holds an election.
var electionID = bson.ObjectID{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}

// isHello reports whether name is hello or the legacy isMaster (or its
// alias ismaster); MongoDB's command names are case-sensitive.
func isHello(name string) bool {
	return name == "hello" || name == "isMaster" || name == "ismaster"
}

// hello answers hello/isMaster for req. It records the client's appName
// and, for an awaitable hello (topologyVersion + maxAwaitTimeMS, which
// driver monitors send), waits maxAwaitTimeMS before answering, as MongoDB
// does while the topology is unchanged. The topology of this one-member set
// never changes, and a connection opening or closing is no change either,
// so the wait ends early only when the client closes this very connection
// (MongoDB kills a waiting hello when its client disconnects), when the
// server closes, at a killOp of it (Interrupted), or once when the client
// says goodbye (see clientGroup).
func (s *Server) hello(ctx context.Context, req *request) bson.D {
	cmd := req.cmd
	if app, ok := field(cmd, "client").(bson.D); ok {
		if a, ok := field(app, "application").(bson.D); ok {
			if name, ok := field(a, "name").(string); ok {
				req.conn.appName = name
			}
		}
		req.conn.setClient(app)
		s.joinClient(req.conn, app)
	}

	wait, same, err := s.helloAwait(cmd)
	if err != nil {
		var me *merr.Error
		if !errors.As(err, &me) {
			me = merr.New(merr.InternalError, "%v", err)
		}
		return me.Doc()
	}
	if same && wait > 0 {
		// killOp interrupts the wait, as awaitHelloResponse's
		// futureGetNoThrowWithDeadline: the hello fails.
		kctx, stop := (&op{s: s, req: req}).killable(ctx)
		req.conn.awaitHello(kctx, wait)
		stop()
		if interrupted(kctx) {
			return merr.New(merr.Interrupted, "operation was interrupted").Doc()
		}
	}

	reply := s.helloReply(req.conn)
	// Each form names the primary flag its own way; drop the other one.
	drop := "ismaster"
	if req.name != "hello" {
		drop = "isWritablePrimary"
	}
	out := reply[:0:0]
	for _, e := range reply {
		if e.Key != drop {
			out = append(out, e)
		}
	}
	return out
}

// helloAwait parses an awaitable hello's arguments as CmdHello::run
// (src/mongo/db/repl/replication_info.cpp) and awaitHelloResponse do:
// topologyVersion and maxAwaitTimeMS come together or not at all, the wait
// and the counter are non-negative, and a counter of this process ahead of
// the server's is refused. It returns the wait and whether the client's
// topologyVersion is the server's (a stale one is answered at once).
func (s *Server) helloAwait(cmd bson.D) (wait time.Duration, same bool, err error) {
	tvV, hasTV := bsonkit.Get(cmd, "topologyVersion")
	waitV, hasWait := bsonkit.Get(cmd, "maxAwaitTimeMS")
	switch {
	case !hasTV && !hasWait:
		return 0, false, nil
	case !hasWait:
		return 0, false, merr.New(31368, "A request with a 'topologyVersion' must include 'maxAwaitTimeMS'")
	case !hasTV:
		return 0, false, merr.New(31368, "A request with 'maxAwaitTimeMS' must include a 'topologyVersion'")
	}
	tv, ok := tvV.(bson.D)
	if !ok {
		return 0, false, typeErr("topologyVersion", tvV, "object")
	}
	pidV, hasPid := bsonkit.Get(tv, "processId")
	counterV, hasCounter := bsonkit.Get(tv, "counter")
	if !hasPid || !hasCounter {
		missing := "processId"
		if hasPid {
			missing = "counter"
		}
		return 0, false, merr.New(codeMissingField, "BSON field 'TopologyVersion.%s' is missing but a required field", missing)
	}
	pid, ok := pidV.(bson.ObjectID)
	if !ok {
		return 0, false, typeErr("TopologyVersion.processId", pidV, "objectId")
	}
	counter, ok := bsonkit.ToInt64(counterV)
	if !ok {
		return 0, false, typeErr("TopologyVersion.counter", counterV, "long")
	}
	if counter < 0 {
		return 0, false, merr.New(31372, "topologyVersion must have a non-negative counter")
	}
	ms, ok := bsonkit.ToInt64(waitV)
	if !ok {
		return 0, false, merr.New(merr.TypeMismatch, "Expected field maxAwaitTimeMS to have a value exactly representable as a 64-bit integer")
	}
	if ms < 0 {
		return 0, false, merr.New(31373, "maxAwaitTimeMS must be a non-negative integer")
	}
	if pid != s.processID {
		return 0, false, nil
	}
	if counter > 0 {
		return 0, false, merr.New(31382, "Received a topology version with the same process ID and a higher counter than the current topology version")
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}

// withTopologyVersion adds the server's topologyVersion to a reply whose
// error, or write concern error, is in the NotPrimaryError category, as
// MongoDB does (appendErrorLabelsAndTopologyVersion in
// src/mongo/db/service_entry_point_common.cpp; a ShutdownError carries it
// only while the server is in quiesce mode, which this one never is). A
// driver ignores such an error for monitoring when its topologyVersion is
// the one it knows, instead of marking the server Unknown.
func (s *Server) withTopologyVersion(reply bson.D) bson.D {
	code, _ := bsonkit.ToInt64(field(reply, "code"))
	if wce, ok := field(reply, "writeConcernError").(bson.D); ok && !merr.IsNotPrimary(int32(code)) {
		code, _ = bsonkit.ToInt64(field(wce, "code"))
	}
	if !merr.IsNotPrimary(int32(code)) || field(reply, "topologyVersion") != nil {
		return reply
	}
	return append(reply, bson.E{Key: "topologyVersion", Value: s.topologyVersion()})
}

func (s *Server) topologyVersion() bson.D {
	return bson.D{
		{Key: "processId", Value: s.processID},
		{Key: "counter", Value: int64(0)},
	}
}

// helloReply is the hello/isMaster reply of a single-member replica set
// whose only member, this server, is the writable primary. It carries both
// isWritablePrimary (hello) and ismaster (isMaster); [Server.hello] keeps
// the one that matches the command.
func (s *Server) helloReply(c *conn) bson.D {
	var connID int64
	if c != nil {
		connID = c.id
	}
	return bson.D{
		{Key: "topologyVersion", Value: s.topologyVersion()},
		{Key: "hosts", Value: bson.A{s.addr}},
		{Key: "setName", Value: s.opts.replSet},
		{Key: "setVersion", Value: int32(1)},
		{Key: "isWritablePrimary", Value: true},
		{Key: "ismaster", Value: true},
		{Key: "secondary", Value: false},
		{Key: "primary", Value: s.addr},
		{Key: "me", Value: s.addr},
		{Key: "electionId", Value: electionID},
		{Key: "lastWrite", Value: bson.D{
			{Key: "lastWriteDate", Value: bson.NewDateTimeFromTime(time.Unix(int64(s.clusterTime().T), 0))},
		}},
		{Key: "maxBsonObjectSize", Value: int32(maxBSONObjectSize)},
		{Key: "maxMessageSizeBytes", Value: int32(maxMessageSize)},
		{Key: "maxWriteBatchSize", Value: int32(maxWriteBatchSize)},
		{Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: "logicalSessionTimeoutMinutes", Value: int32(logicalSessionTimeoutMinutes)},
		{Key: "connectionId", Value: connID},
		{Key: "minWireVersion", Value: int32(minWireVersion)},
		{Key: "maxWireVersion", Value: int32(maxWireVersion)},
		{Key: "readOnly", Value: false},
		{Key: "helloOk", Value: true},
		{Key: "ok", Value: 1.0},
	}
}

// clientGroup is the connections of one client as the server can tell
// them apart: same remote host, same handshake metadata (driver, platform,
// appName). It exists because of a race in mongo-driver v2's Disconnect:
// one that lands between two checks of its monitor does not cancel the
// next check (Server.Disconnect's heartbeatListener.StopListening finds no
// listener, and the next checkServerWithSignal starts one that nobody
// stops), so Disconnect waits until the server answers that check's
// awaitable hello: a whole maxAwaitTimeMS, on MongoDB too.
//
// The server can see the client leave. Client.Disconnect first sends
// endSessions, which the sessions specification reserves for a closing
// client (a goodbye), then closes its pooled connections. So the first
// connection of the group to close after a goodbye is a farewell: it
// answers the group's waiting awaitable hellos and, on each connection
// with none waiting, the next one, once. Until the farewell nothing is
// woken: waking a monitor at endSessions would start the very check that
// Disconnect may then miss. A client that runs endSessions itself and
// lives on costs its monitor one early heartbeat at its next close.
type clientGroup struct {
	key   string
	conns int // connections in the group, under Server.mu; dropped at 0

	mu        sync.Mutex
	goodbye   bool          // endSessions came; the next close is a farewell
	farewells uint64        // farewells so far
	farewell  chan struct{} // closed, and replaced, at each farewell
}

// joinClient puts c in the group its handshake metadata names. A
// connection joins once, at its handshake.
func (s *Server) joinClient(c *conn, metadata bson.D) {
	if c.group != nil {
		return
	}
	raw, err := bson.Marshal(metadata)
	if err != nil {
		return
	}
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		host = c.nc.RemoteAddr().String()
	}
	key := host + "\x00" + string(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.clients[key]
	if g == nil {
		g = &clientGroup{key: key, farewell: make(chan struct{})}
		s.clients[key] = g
	}
	g.conns++
	c.group = g
	g.mu.Lock()
	c.farewellsSeen = g.farewells
	g.mu.Unlock()
}

// leaveClient takes c out of its group, closing; s.mu is held.
func (s *Server) leaveClient(c *conn) {
	g := c.group
	if g == nil {
		return
	}
	c.group = nil
	if g.conns--; g.conns == 0 {
		delete(s.clients, g.key)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.goodbye {
		g.goodbye = false
		g.farewells++
		close(g.farewell)
		g.farewell = make(chan struct{})
	}
}

// sayGoodbye records that c's client sent endSessions.
func (c *conn) sayGoodbye() {
	if g := c.group; g != nil {
		g.mu.Lock()
		g.goodbye = true
		g.mu.Unlock()
	}
}

// farewell returns a channel closed at the group's next farewell, or
// closed already if one came that c has not answered; see clientGroup.
func (c *conn) farewell() <-chan struct{} {
	g := c.group
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.farewells > c.farewellsSeen {
		c.farewellsSeen = g.farewells
		return closedChan
	}
	return g.farewell
}

// answerFarewell records that c answered every farewell so far.
func (c *conn) answerFarewell() {
	if g := c.group; g != nil {
		g.mu.Lock()
		c.farewellsSeen = g.farewells
		g.mu.Unlock()
	}
}

var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// awaitHello waits for d to pass, ctx to end (the server closing, a killOp), the
// client to close the connection or its farewell (see clientGroup),
// whichever comes first. MongoDB's hello marks its
// operation killable on client disconnect (CmdHello::runWithReplyBuilder
// in src/mongo/db/repl/replication_info.cpp calls
// CommandHelpers::handleMarkKillOnClientDisconnect), and so this watches
// the connection for EOF while serve waits here: a watcher goroutine peeks
// at it. Before returning, it stops the watcher with a read deadline in the
// past and waits for it, so serve reads on alone; whatever the watcher
// buffered stays in c.r.
func (c *conn) awaitHello(ctx context.Context, d time.Duration) {
	defer func() {
	}()
	gone := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.r.Peek(1); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			close(gone)
		}
	}()
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-gone:
	case <-c.farewell():
		c.answerFarewell()
	case <-ctx.Done():
	}
	t.Stop()
	_ = c.nc.SetReadDeadline(time.Now())
	<-done
	_ = c.nc.SetReadDeadline(time.Time{})
}
