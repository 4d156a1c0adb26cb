package mongotest

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

func mustDoc(t testing.TB, d bson.D) bsoncore.Document {
	t.Helper()
	b, err := bson.Marshal(d)
	require.NoError(t, err)
	return b
}

// testSeq is a document sequence for buildMsg.
type testSeq struct {
	identifier string
	docs       []bsoncore.Document
}

// buildMsg frames an OP_MSG from a body and document sequences.
func buildMsg(reqID int32, flags wiremessage.MsgFlag, body bsoncore.Document, seqs ...testSeq) []byte {
	idx, b := wiremessage.AppendHeaderStart(nil, reqID, 0, wiremessage.OpMsg)
	b = wiremessage.AppendMsgFlags(b, flags)
	b = wiremessage.AppendMsgSectionType(b, wiremessage.SingleDocument)
	b = append(b, body...)
	for _, s := range seqs {
		b = wiremessage.AppendMsgSectionType(b, wiremessage.DocumentSequence)
		var sidx int32
		sidx, b = bsoncore.ReserveLength(b)
		b = append(b, s.identifier...)
		b = append(b, 0)
		for _, d := range s.docs {
			b = append(b, d...)
		}
		b = bsoncore.UpdateLength(b, sidx, int32(len(b[sidx:])))
	}
	return bsoncore.UpdateLength(b, idx, int32(len(b[idx:])))
}

func buildQuery(reqID int32, ns string, query bsoncore.Document) []byte {
	//lint:ignore SA1019 legacy handshake: drivers still send their first hello as OP_QUERY
	idx, b := wiremessage.AppendHeaderStart(nil, reqID, 0, wiremessage.OpQuery)
	b = wiremessage.AppendQueryFlags(b, 0)
	b = wiremessage.AppendQueryFullCollectionName(b, ns)
	b = wiremessage.AppendQueryNumberToSkip(b, 0)
	b = wiremessage.AppendQueryNumberToReturn(b, -1)
	b = append(b, query...)
	return bsoncore.UpdateLength(b, idx, int32(len(b[idx:])))
}

func TestDecodeMessageMergesDocumentSequences(t *testing.T) {
	body := mustDoc(t, bson.D{{Key: "insert", Value: "coll"}, {Key: "ordered", Value: true}, {Key: "$db", Value: "app"}})
	docs := testSeq{identifier: "documents", docs: []bsoncore.Document{
		mustDoc(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "sub", Value: bson.D{{Key: "a", Value: bson.A{int64(1), "x"}}}}}),
		mustDoc(t, bson.D{{Key: "_id", Value: int32(2)}}),
	}}

	m, err := decodeMessage(buildMsg(5, 0, body, docs))
	require.NoError(t, err)
	cmd, err := m.command(nil)
	require.NoError(t, err)

	assert.Equal(t, int32(5), m.requestID)
	assert.Equal(t, "app", m.db)
	assert.Equal(t, bson.D{
		{Key: "insert", Value: "coll"},
		{Key: "ordered", Value: true},
		{Key: "$db", Value: "app"},
		{Key: "documents", Value: bson.A{
			bson.D{{Key: "_id", Value: int32(1)}, {Key: "sub", Value: bson.D{{Key: "a", Value: bson.A{int64(1), "x"}}}}},
			bson.D{{Key: "_id", Value: int32(2)}},
		}},
	}, cmd)
	assert.Equal(t, []byte(body), []byte(m.body), "raw must be the body alone")
}

func TestDecodeMessageErrors(t *testing.T) {
	ping := mustDoc(t, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	seq := testSeq{identifier: "documents", docs: []bsoncore.Document{mustDoc(t, bson.D{{Key: "x", Value: 1}})}}
	twoBodies := buildMsg(1, 0, ping)
	twoBodies = append(twoBodies, 0)
	twoBodies = append(twoBodies, ping...)
	binary.LittleEndian.PutUint32(twoBodies, uint32(len(twoBodies)))

	tests := []struct {
		name      string
		give      []byte
		wantFatal bool
		wantCode  int32
	}{
		{name: "short header", give: []byte{1, 2, 3}, wantFatal: true},
		{name: "length mismatch", give: append(buildMsg(1, 0, ping), 0), wantFatal: true},
		{name: "unknown opcode", give: wiremessage.AppendHeader(nil, 16, 1, 0, 1234), wantFatal: true},
		{name: "OP_COMPRESSED", give: wiremessage.AppendHeader(nil, 16, 1, 0, wiremessage.OpCompressed), wantFatal: true},
		{name: "two body sections", give: twoBodies, wantCode: 40430},
		{name: "duplicate sequence", give: buildMsg(1, 0, ping, seq, seq), wantCode: 40431},
		{name: "sequence clashes with body field", give: buildMsg(1, 0,
			mustDoc(t, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{}}, {Key: "$db", Value: "x"}}), seq),
			wantCode: 40433},
		{name: "checksum flag without checksum", give: wiremessage.AppendMsgFlags(
			wiremessage.AppendHeader(nil, 20, 1, 0, wiremessage.OpMsg), wiremessage.ChecksumPresent), wantCode: merr.FailedToParse},
		{name: "no body", give: wiremessage.AppendMsgFlags(wiremessage.AppendHeader(nil, 20, 1, 0, wiremessage.OpMsg), 0),
			wantCode: 40587},
		{name: "$db not a string", give: buildMsg(1, 0, mustDoc(t, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: 1}})),
			wantCode: merr.Location40571},
		{name: "OP_QUERY on a collection", give: buildQuery(1, "db.coll", ping), wantCode: merr.UnsupportedOpQueryCommand},
		{name: "OP_QUERY with truncated query", give: buildQuery(1, "admin.$cmd", ping[:len(ping)-3]), wantCode: merr.InvalidBSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decodeMessage(tt.give)
			if err == nil {
				_, err = m.command(nil)
			}
			require.Error(t, err)
			var we *wireError
			require.ErrorAs(t, err, &we)
			assert.Equal(t, tt.wantFatal, we.fatal, err.Error())
			if tt.wantFatal {
				return
			}
			require.NotNil(t, m, "a non-fatal error must leave a message to answer")
			assert.Equal(t, tt.wantCode, we.code, err.Error())
		})
	}
}

func TestDecodeOpQueryUnwrapsQuery(t *testing.T) {
	q := mustDoc(t, bson.D{
		{Key: "$query", Value: bson.D{{Key: "isMaster", Value: int32(1)}}},
		{Key: "$readPreference", Value: bson.D{{Key: "mode", Value: "primary"}}},
	})

	m, err := decodeMessage(buildQuery(9, "admin.$cmd", q))
	require.NoError(t, err)
	cmd, err := m.command(nil)
	require.NoError(t, err)

	assert.Equal(t, "admin", m.db)
	assert.Equal(t, bson.D{{Key: "isMaster", Value: int32(1)}}, cmd)
}

// roundTrip sends one OP_MSG command on nc and returns the reply body.
func roundTrip(t *testing.T, nc net.Conn, reqID int32, cmd bson.D) bsoncore.Document {
	t.Helper()
	_, err := nc.Write(buildMsg(reqID, 0, mustDoc(t, cmd)))
	require.NoError(t, err)
	wm, err := readMessage(nc)
	require.NoError(t, err)
	m, err := decodeMessage(wm)
	require.NoError(t, err)
	return m.body
}

func startServer(t *testing.T, handler func(context.Context, *request) bson.D) (*Server, net.Conn) {
	t.Helper()
	s, err := NewServer()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	if handler != nil {
		s.handler = handler
	}
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	return s, nc
}

func TestPanickingCommandGetsInternalError(t *testing.T) {
	_, nc := startServer(t, func(ctx context.Context, req *request) bson.D {
		if req.name == "boom" {
			panic("kaboom")
		}
		return ok1()
	})

	reply := roundTrip(t, nc, 1, bson.D{{Key: "boom", Value: 1}, {Key: "$db", Value: "admin"}})
	assert.EqualValues(t, 0, reply.Lookup("ok").AsInt64())
	assert.EqualValues(t, merr.InternalError, reply.Lookup("code").AsInt64())
	assert.Equal(t, "InternalError", reply.Lookup("codeName").StringValue())
	assert.Contains(t, reply.Lookup("errmsg").StringValue(), "kaboom")

	reply = roundTrip(t, nc, 2, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	assert.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), "the connection must survive the panic")
}

func TestDispatchCanCloseConnection(t *testing.T) {
	tests := []struct {
		name      string
		giveReply bson.D
		wantReply bool
	}{
		{name: "without replying", giveReply: nil, wantReply: false},
		{name: "after replying", giveReply: ok1(), wantReply: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, nc := startServer(t, func(ctx context.Context, req *request) bson.D {
				req.conn.closeAfter = true
				return tt.giveReply
			})

			_, err := nc.Write(buildMsg(1, 0, mustDoc(t, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "a"}})))
			require.NoError(t, err)

			if tt.wantReply {
				_, err := readMessage(nc)
				require.NoError(t, err)
			}
			_, err = nc.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF)
		})
	}
}

// seenRequest is what a test reads of a request, copied while it is
// served: the connection reuses the request, and clears it once answered.
type seenRequest struct {
	db, appName, rawDB string
	connID             int64
	moreToCome         bool
}

func TestRequestCarriesConnectionAndAppName(t *testing.T) {
	got := make(chan seenRequest, 1)
	var s *Server
	s, _ = startServer(t, func(ctx context.Context, req *request) bson.D {
		if req.name == "whoAmI" {
			got <- seenRequest{
				db: req.db, appName: req.conn.appName, connID: req.conn.id, moreToCome: req.moreToCome,
				rawDB: bsoncore.Document(req.raw).Lookup("$db").StringValue(),
			}
		}
		return s.dispatch(ctx, req)
	})
	client, err := mongo.Connect(options.Client().ApplyURI(s.URI()).SetAppName("my-app"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Disconnect(context.Background())) })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = client.Database("shop").RunCommand(ctx, bson.D{{Key: "whoAmI", Value: 1}}).Err()

	var req seenRequest
	select {
	case req = <-got:
	default:
		t.Fatal("command never reached dispatch")
	}
	assert.Equal(t, "shop", req.db)
	assert.Equal(t, "my-app", req.appName)
	assert.Positive(t, req.connID)
	assert.False(t, req.moreToCome)
	assert.Equal(t, "shop", req.rawDB)
}

func TestAwaitableHelloDoesNotSpin(t *testing.T) {
	var hellos atomic.Int32
	var s *Server
	s, _ = startServer(t, func(ctx context.Context, req *request) bson.D {
		if isHello(req.name) {
			hellos.Add(1)
		}
		return s.dispatch(ctx, req)
	})
	client, err := mongo.Connect(options.Client().ApplyURI(s.URI()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Disconnect(context.Background())) })
	require.NoError(t, client.Ping(context.Background(), readpref.Primary()))

	time.Sleep(500 * time.Millisecond)

	// Handshakes of the monitor, RTT and pool connections, plus a few
	// awaitable hellos; a monitor that spins sends thousands.
	assert.Less(t, hellos.Load(), int32(20))
}

func TestCloseInterruptsAwaitableHello(t *testing.T) {
	s, nc := startServer(t, nil)
	hello := bson.D{
		{Key: "hello", Value: 1},
		{Key: "topologyVersion", Value: bson.D{{Key: "processId", Value: s.processID}, {Key: "counter", Value: int64(0)}}},
		{Key: "maxAwaitTimeMS", Value: int64(time.Hour / time.Millisecond)},
		{Key: "$db", Value: "admin"},
	}
	_, err := nc.Write(buildMsg(1, 0, mustDoc(t, hello)))
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on an awaitable hello")
	}
}

func TestClockIsMonotonic(t *testing.T) {
	var c clock
	prev := c.tick()
	for range 10_000 {
		next := c.tick()
		require.True(t, prev.Before(next), "%v then %v", prev, next)
		require.Equal(t, next, c.now())
		prev = next
	}
}

func TestClockCarriesOverflowIntoSeconds(t *testing.T) {
	c := clock{cur: bson.Timestamp{T: uint32(time.Now().Unix()) + 100, I: ^uint32(0)}}

	next := c.tick()

	assert.Equal(t, bson.Timestamp{T: c.cur.T, I: 1}, next)
	assert.Equal(t, uint32(time.Now().Unix())+101, next.T)
}
