package mongotest

import (
	"context"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

const (
	minWireVersion = 0
	maxWireVersion = 21 // MongoDB 7.0
	serverVersion  = "7.0.0"

	// maxHelloAwait caps how long an awaitable hello waits; see Server.hello.
	maxHelloAwait = time.Second

	// logicalSessionTimeoutMinutes is advertised in hello and is how long
	// an idle session lives.
	logicalSessionTimeoutMinutes = 30
)

// electionID is constant: this single-member set never holds an election.
var electionID = bson.ObjectID{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}

// isHello reports whether name is hello or the legacy isMaster, which
// MongoDB matches case-insensitively.
func isHello(name string) bool {
	return name == "hello" || strings.EqualFold(name, "ismaster")
}

// hello answers hello/isMaster for req. It records the client's appName
// and, for an awaitable hello (topologyVersion + maxAwaitTimeMS, which
// driver monitors send), waits before answering, as MongoDB does while the
// topology is unchanged: answering at once would make a streaming monitor
// poll in a tight loop.
//
// The wait is shorter than MongoDB's, and ends early when any client
// connection closes, because of a race in mongo-driver: a Disconnect that
// lands between two monitor checks does not interrupt the next awaitable
// hello and so blocks until the server answers it. Disconnect closes its
// pooled connections first, which wakes the monitor's hello here.
func (s *Server) hello(ctx context.Context, req *request) bson.D {
	cmd := req.cmd
	if app, ok := field(cmd, "client").(bson.D); ok {
		if a, ok := field(app, "application").(bson.D); ok {
			if name, ok := field(a, "name").(string); ok {
				req.conn.appName = name
			}
		}
	}

	if tv, ok := field(cmd, "topologyVersion").(bson.D); ok {
		if wait, ok := bsonkit.ToInt64(field(cmd, "maxAwaitTimeMS")); ok && wait > 0 && s.sameTopology(tv) {
			gone := s.connClosed()
			t := time.NewTimer(min(time.Duration(wait)*time.Millisecond, maxHelloAwait))
			select {
			case <-t.C:
			case <-gone:
			case <-ctx.Done():
			}
			t.Stop()
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

func (s *Server) sameTopology(tv bson.D) bool {
	pid, _ := field(tv, "processId").(bson.ObjectID)
	counter, _ := bsonkit.ToInt64(field(tv, "counter"))
	return pid == s.processID && counter == 0
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
		{Key: "topologyVersion", Value: bson.D{
			{Key: "processId", Value: s.processID},
			{Key: "counter", Value: int64(0)},
		}},
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
