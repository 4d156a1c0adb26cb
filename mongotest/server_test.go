package mongotest_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
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
	"go.uber.org/goleak"

	"github.com/txkit/txkit/mongotest"
)

// connect returns a driver client for srv, connected in memory through its
// dialer and disconnected in t.Cleanup.
func connect(t testing.TB, srv *mongotest.Server) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(srv.ClientOptions().SetAppName("mongotest-test"))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Disconnect(ctx))
	})
	return client
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDriverPing(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)

	require.NoError(t, client.Ping(testContext(t), readpref.Primary()))
}

func TestDriverSeesReplicaSetPrimary(t *testing.T) {
	srv := mongotest.Start(t, mongotest.WithReplicaSet("txkit"))
	client := connect(t, srv)
	ctx := testContext(t)

	var hello bson.M
	require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello))

	assert.Equal(t, true, hello["isWritablePrimary"])
	assert.Equal(t, "txkit", hello["setName"])
	assert.Equal(t, srv.Addr(), hello["me"])
	assert.Equal(t, srv.Addr(), hello["primary"])
	assert.Equal(t, bson.A{srv.Addr()}, hello["hosts"])
	assert.EqualValues(t, 21, hello["maxWireVersion"])
	assert.NotContains(t, hello, "ismaster", "hello must answer with isWritablePrimary only")
	assert.Contains(t, hello, "$clusterTime")
	assert.Contains(t, hello, "operationTime")

	// Sessions need logicalSessionTimeoutMinutes; transactions need a primary.
	sess, err := client.StartSession()
	require.NoError(t, err)
	sess.EndSession(ctx)
}

func TestDriverBuildInfo(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)

	var info struct {
		Version      string  `bson:"version"`
		VersionArray []int32 `bson:"versionArray"`
		Bits         int32   `bson:"bits"`
		OK           float64 `bson:"ok"`
	}
	err := client.Database("admin").RunCommand(testContext(t), bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info)
	require.NoError(t, err)

	assert.Equal(t, "7.0.0", info.Version)
	assert.Equal(t, []int32{7, 0, 0, 0}, info.VersionArray)
	assert.EqualValues(t, 64, info.Bits)
	assert.EqualValues(t, 1, info.OK)
}

func TestDriverUnknownCommand(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)

	err := client.Database("test").RunCommand(testContext(t), bson.D{{Key: "noSuchThing", Value: 1}}).Err()

	var cmdErr mongo.CommandError
	require.ErrorAs(t, err, &cmdErr)
	assert.EqualValues(t, 59, cmdErr.Code)
	assert.Equal(t, "CommandNotFound", cmdErr.Name)
	assert.Contains(t, cmdErr.Message, "no such command: 'noSuchThing'")
}

func TestServerURIAndAddr(t *testing.T) {
	tests := []struct {
		name     string
		give     []mongotest.Option
		wantHost string
		wantRS   string
	}{
		{name: "defaults to loopback and rs0", wantHost: "127.0.0.1", wantRS: "rs0"},
		{name: "wildcard address is dialled on loopback", give: []mongotest.Option{mongotest.WithAddr(":0")}, wantHost: "127.0.0.1", wantRS: "rs0"},
		{name: "replica set name is escaped", give: []mongotest.Option{mongotest.WithReplicaSet("a b")}, wantHost: "127.0.0.1", wantRS: "a+b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mongotest.Start(t, tt.give...)

			host, port, err := net.SplitHostPort(srv.Addr())
			require.NoError(t, err)
			assert.Equal(t, tt.wantHost, host)
			assert.NotEqual(t, "0", port)
			assert.Equal(t, "mongodb://"+srv.Addr()+"/?replicaSet="+tt.wantRS, srv.URI())
		})
	}
}

func TestNewServerFailsOnBusyAddress(t *testing.T) {
	srv := mongotest.Start(t)

	_, err := mongotest.NewServer(mongotest.WithAddr(srv.Addr()))

	require.Error(t, err)
}

func TestStartClosesServerInCleanup(t *testing.T) {
	var addr string
	t.Run("start", func(t *testing.T) {
		addr = mongotest.Start(t).Addr()
	})

	_, err := net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "server must be closed once the test that started it ends")
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	srv, err := mongotest.NewServer()
	require.NoError(t, err)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	require.NoError(t, client.Ping(testContext(t), readpref.Primary()))

	// Close with the client still connected: its monitor is parked in an
	// awaitable hello, which Close must interrupt.
	require.NoError(t, srv.Close())
	require.NoError(t, srv.Close(), "Close must be idempotent")

	// With the server gone, Disconnect's endSessions can only time out;
	// its error is irrelevant here, the goroutines it stops are not.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = client.Disconnect(ctx)
}

func TestMalformedConnectionsAreClosedAlone(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	ctx := testContext(t)
	require.NoError(t, client.Ping(ctx, readpref.Primary()))

	ping := bsoncore.NewDocumentBuilder().AppendInt32("ping", 1).AppendString("$db", "admin").Build()
	var sequences []byte
	for _, id := range []string{"a", "b", "c"} {
		sequences = wiremessage.AppendMsgSectionType(sequences, wiremessage.DocumentSequence)
		sequences = binary.LittleEndian.AppendUint32(sequences, uint32(4+len(id)+1+len(ping)))
		sequences = append(append(append(sequences, id...), 0), ping...)
	}
	tests := []struct {
		name string
		give []byte
	}{
		// ConnectionFatalMessageParseErrors (error_codes.yml) close the
		// connection without a reply: IllegalOpMsgFlag and
		// TooManyDocumentSequences (OpMsg::parse).
		{name: "unknown required OP_MSG flag", give: opMsg(1, 1<<4, ping)},
		{name: "three document sequences", give: fixLength(opMsg(1, 0, ping, sequences...))},
		{name: "length below header size", give: header(8, 1, wiremessage.OpMsg)},
		{name: "negative length", give: header(-1, 1, wiremessage.OpMsg)},
		{name: "length above maxMessageSizeBytes", give: header(48_000_001, 1, wiremessage.OpMsg)},
		{name: "unknown opcode", give: header(16, 1, 9999)},
		{name: "compressed message", give: header(16, 1, wiremessage.OpCompressed)},
		{name: "OP_MSG without flags", give: header(16, 1, wiremessage.OpMsg)},
		{name: "garbage", give: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := dial(t, srv)
			_, err := nc.Write(tt.give)
			require.NoError(t, err)

			_, err = nc.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF, "server must close the connection")

			require.NoError(t, client.Ping(ctx, readpref.Primary()), "other clients must keep working")
		})
	}
}

func TestRawOpQueryHandshake(t *testing.T) {
	srv := mongotest.Start(t)
	nc := dial(t, srv)

	query := bsoncore.NewDocumentBuilder().
		AppendInt32("isMaster", 1).
		AppendBoolean("helloOk", true).
		AppendDocument("client", bsoncore.NewDocumentBuilder().
			AppendDocument("application", bsoncore.NewDocumentBuilder().AppendString("name", "raw").Build()).
			Build()).
		Build()
	write(t, nc, opQuery(42, "admin.$cmd", query))

	reply := read(t, nc)
	length, _, responseTo, opcode, rem, ok := wiremessage.ReadHeader(reply)
	require.True(t, ok)
	require.EqualValues(t, len(reply), length)
	require.Equal(t, wiremessage.OpReply, opcode)
	assert.EqualValues(t, 42, responseTo)

	flags := int32(binary.LittleEndian.Uint32(rem))
	cursorID := int64(binary.LittleEndian.Uint64(rem[4:]))
	numReturned := int32(binary.LittleEndian.Uint32(rem[16:]))
	assert.Zero(t, flags)
	assert.Zero(t, cursorID)
	require.EqualValues(t, 1, numReturned)

	doc := bsoncore.Document(rem[20:])
	require.NoError(t, doc.Validate())
	assert.True(t, doc.Lookup("ismaster").Boolean())
	assert.True(t, doc.Lookup("helloOk").Boolean())
	assert.Equal(t, srv.Addr(), doc.Lookup("me").StringValue())
	assert.Equal(t, "rs0", doc.Lookup("setName").StringValue())
	assert.EqualValues(t, 21, doc.Lookup("maxWireVersion").AsInt64())
	assert.EqualValues(t, 1, doc.Lookup("ok").AsInt64())
	_, hasWritable := doc.Lookup("isWritablePrimary").BooleanOK()
	assert.False(t, hasWritable, "legacy isMaster answers with ismaster")
}

func TestRawOpQueryOutsideCmdIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	nc := dial(t, srv)

	write(t, nc, opQuery(7, "test.coll", bsoncore.NewDocumentBuilder().AppendInt32("x", 1).Build()))

	reply := read(t, nc)
	_, _, responseTo, opcode, rem, _ := wiremessage.ReadHeader(reply)
	require.Equal(t, wiremessage.OpReply, opcode)
	assert.EqualValues(t, 7, responseTo)
	assert.Equal(t, int32(wiremessage.QueryFailure), int32(binary.LittleEndian.Uint32(rem)))
	doc := bsoncore.Document(rem[20:])
	assert.EqualValues(t, 352, doc.Lookup("code").AsInt64())
}

func TestRawOpMsg(t *testing.T) {
	ping := bsoncore.NewDocumentBuilder().AppendInt32("ping", 1).AppendString("$db", "admin").Build()

	tests := []struct {
		name     string
		give     []byte
		wantOK   bool
		wantCode int32
	}{
		{name: "ping succeeds", give: opMsg(11, 0, ping), wantOK: true},
		// MongoDB verifies the CRC-32C of a message with checksumPresent
		// (OpMsg::parse, src/mongo/rpc/op_msg.cpp: ChecksumMismatch, 288).
		{name: "a matching checksum is verified and stripped", give: withChecksum(opMsg(11, wiremessage.ChecksumPresent, ping), 0), wantOK: true},
		{name: "a checksum that does not match is refused", give: withChecksum(opMsg(11, wiremessage.ChecksumPresent, ping), 1), wantCode: 288},
		{name: "exhaustAllowed is ignored", give: opMsg(11, wiremessage.ExhaustAllowed, ping), wantOK: true},
		{name: "missing $db is refused", give: opMsg(11, 0, bsoncore.NewDocumentBuilder().AppendInt32("ping", 1).Build()), wantCode: 40571},
		{name: "invalid BSON body is refused", give: opMsg(11, 0, bsoncore.Document{0x0c, 0, 0, 0, 0x42, 'x', 0, 0, 0, 0, 0, 0}), wantCode: 22},
		{name: "unknown section kind is refused", give: append(opMsg(11, 0, ping), 7), wantCode: 40432},
		{name: "empty command is refused", give: opMsg(11, 0, bsoncore.NewDocumentBuilder().Build()), wantCode: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mongotest.Start(t)
			nc := dial(t, srv)

			write(t, nc, fixLength(tt.give))
			doc := readMsgReply(t, nc, 11)

			if tt.wantOK {
				assert.EqualValues(t, 1, doc.Lookup("ok").AsInt64(), doc.String())
			} else {
				assert.EqualValues(t, 0, doc.Lookup("ok").AsInt64(), doc.String())
				assert.EqualValues(t, tt.wantCode, doc.Lookup("code").AsInt64(), doc.String())
				assert.NotEmpty(t, doc.Lookup("codeName").StringValue())
			}
			assert.Equal(t, bsoncore.TypeTimestamp, doc.Lookup("operationTime").Type)
			assert.Equal(t, bsoncore.TypeTimestamp, doc.Lookup("$clusterTime", "clusterTime").Type)

			// The connection survives an error reply.
			write(t, nc, opMsg(12, 0, ping))
			assert.EqualValues(t, 1, readMsgReply(t, nc, 12).Lookup("ok").AsInt64())
		})
	}
}

func TestRawMoreToComeSendsNoReply(t *testing.T) {
	srv := mongotest.Start(t)
	nc := dial(t, srv)

	ping := bsoncore.NewDocumentBuilder().AppendInt32("ping", 1).AppendString("$db", "admin").Build()
	unknown := bsoncore.NewDocumentBuilder().AppendInt32("nope", 1).AppendString("$db", "admin").Build()
	write(t, nc, opMsg(1, wiremessage.MoreToCome, ping))
	write(t, nc, opMsg(2, wiremessage.MoreToCome, unknown))
	write(t, nc, opMsg(3, 0, ping))

	// The first reply on the wire must answer request 3.
	readMsgReply(t, nc, 3)
}

func TestClusterTimeNeverGoesBack(t *testing.T) {
	srv := mongotest.Start(t)
	nc := dial(t, srv)
	ping := bsoncore.NewDocumentBuilder().AppendInt32("ping", 1).AppendString("$db", "admin").Build()

	var last bson.Timestamp
	for i := range int32(5) {
		write(t, nc, opMsg(i, 0, ping))
		doc := readMsgReply(t, nc, i)
		tt, ti := doc.Lookup("operationTime").Timestamp()
		ts := bson.Timestamp{T: tt, I: ti}
		require.False(t, ts.Before(last), "operationTime went from %v to %v", last, ts)
		require.NotZero(t, ts.T)
		last = ts
	}
}

func dial(t testing.TB, srv *mongotest.Server) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	// A bound for a hang, not a speed: a test's 16 MB messages under
	// -race on a loaded machine take seconds.
	require.NoError(t, nc.SetDeadline(time.Now().Add(time.Minute)))
	return nc
}

func write(t testing.TB, nc net.Conn, b []byte) {
	t.Helper()
	_, err := nc.Write(b)
	require.NoError(t, err)
}

// read reads one wire message.
func read(t testing.TB, nc net.Conn) []byte {
	t.Helper()
	var size [4]byte
	_, err := io.ReadFull(nc, size[:])
	require.NoError(t, err)
	n := int(binary.LittleEndian.Uint32(size[:]))
	require.GreaterOrEqual(t, n, 16)
	b := make([]byte, n)
	copy(b, size[:])
	_, err = io.ReadFull(nc, b[4:])
	require.NoError(t, err)
	return b
}

// readMsgReply reads one OP_MSG reply to request reqID and returns its body.
func readMsgReply(t testing.TB, nc net.Conn, reqID int32) bsoncore.Document {
	t.Helper()
	b := read(t, nc)
	_, _, responseTo, opcode, rem, ok := wiremessage.ReadHeader(b)
	require.True(t, ok)
	require.Equal(t, wiremessage.OpMsg, opcode)
	require.EqualValues(t, reqID, responseTo)
	flags, rem, ok := wiremessage.ReadMsgFlags(rem)
	require.True(t, ok)
	require.Zero(t, flags)
	kind, rem, ok := wiremessage.ReadMsgSectionType(rem)
	require.True(t, ok)
	require.Equal(t, wiremessage.SingleDocument, kind)
	doc, rem, ok := wiremessage.ReadMsgSectionSingleDocument(rem)
	require.True(t, ok)
	require.Empty(t, rem, "reply must have exactly one section")
	require.NoError(t, doc.Validate())
	return doc
}

func header(length, reqID int32, opcode wiremessage.OpCode) []byte {
	return wiremessage.AppendHeader(nil, length, reqID, 0, opcode)
}

// opMsg builds an OP_MSG with one body section followed by trailer bytes.
// Its length is correct unless trailer adds to it; see fixLength.
func opMsg(reqID int32, flags wiremessage.MsgFlag, body bsoncore.Document, trailer ...byte) []byte {
	idx, b := wiremessage.AppendHeaderStart(nil, reqID, 0, wiremessage.OpMsg)
	b = wiremessage.AppendMsgFlags(b, flags)
	b = wiremessage.AppendMsgSectionType(b, wiremessage.SingleDocument)
	b = append(b, body...)
	b = append(b, trailer...)
	return bsoncore.UpdateLength(b, idx, int32(len(b[idx:])))
}

func opQuery(reqID int32, ns string, query bsoncore.Document) []byte {
	//lint:ignore SA1019 legacy handshake: drivers still send their first hello as OP_QUERY
	idx, b := wiremessage.AppendHeaderStart(nil, reqID, 0, wiremessage.OpQuery)
	b = wiremessage.AppendQueryFlags(b, 0)
	b = wiremessage.AppendQueryFullCollectionName(b, ns)
	b = wiremessage.AppendQueryNumberToSkip(b, 0)
	b = wiremessage.AppendQueryNumberToReturn(b, -1)
	b = append(b, query...)
	return bsoncore.UpdateLength(b, idx, int32(len(b[idx:])))
}

// withChecksum appends msg's CRC-32C plus delta (0: the right one) and
// sets its length.
func withChecksum(msg []byte, delta uint32) []byte {
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)+4))
	sum := crc32.Checksum(msg, crc32.MakeTable(crc32.Castagnoli))
	return binary.LittleEndian.AppendUint32(msg, sum+delta)
}

// fixLength sets the header's length to the message's real length.
func fixLength(b []byte) []byte {
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

func BenchmarkServerStart(b *testing.B) {
	b.Run("start and close", func(b *testing.B) {
		for b.Loop() {
			srv, err := mongotest.NewServer()
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("start, connect, ping and close", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			srv, err := mongotest.NewServer()
			if err != nil {
				b.Fatal(err)
			}
			client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
			if err != nil {
				b.Fatal(err)
			}
			if err := client.Ping(ctx, readpref.Primary()); err != nil {
				b.Fatal(err)
			}
			if err := client.Disconnect(ctx); err != nil {
				b.Fatal(err)
			}
			if err := srv.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPing(b *testing.B) {
	srv := mongotest.Start(b)
	client := connect(b, srv)
	ctx := context.Background()
	db := client.Database("admin")
	ping := bson.D{{Key: "ping", Value: 1}}
	require.NoError(b, db.RunCommand(ctx, ping).Err())

	for b.Loop() {
		if err := db.RunCommand(ctx, ping).Err(); err != nil {
			b.Fatal(err)
		}
	}
}
