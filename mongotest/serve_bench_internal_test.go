package mongotest

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

// benchMarker is the _id the captured insert and find carry; the benchmark
// rewrites it in place so that every insert is of a new document.
const benchMarker int32 = 0x0abcdef1

// BenchmarkServeInsertFind measures the server's share of
// BenchmarkInsertFind: the same two wire messages the driver sends (an
// insert with its lsid and txnNumber, a find by _id), captured once and
// handed to a connection's handle with no driver and no transport. The
// difference from BenchmarkInsertFind/in-process is the driver's cost.
func BenchmarkServeInsertFind(b *testing.B) {
	srv := Start(b, WithoutListener())
	insert, find := captureInsertFind(b, srv)
	_, nc := newPipe()
	c := srv.newConn(nc)
	ctx := context.Background()
	markerAt := func(wm []byte) int {
		var m [4]byte
		binary.LittleEndian.PutUint32(m[:], uint32(benchMarker))
		i := bytes.Index(wm, m[:])
		require.Positive(b, i)
		return i
	}
	insID, findID := markerAt(insert), markerAt(find)
	txn := bytes.Index(insert, []byte("txnNumber\x00"))
	require.Positive(b, txn)
	txn += len("txnNumber\x00")

	b.ReportAllocs()
	ReportCPU(b)
	i := int32(0)
	for b.Loop() {
		i++
		wm := bytes.Clone(insert)
		binary.LittleEndian.PutUint32(wm[insID:], uint32(i))
		binary.LittleEndian.PutUint64(wm[txn:], uint64(i)+1000)
		if out, _ := c.handle(ctx, wm); !bytes.Contains(out, []byte("\x10n\x00\x01\x00\x00\x00")) {
			b.Fatalf("insert %d: %q", i, out)
		}
		wm = bytes.Clone(find)
		binary.LittleEndian.PutUint32(wm[findID:], uint32(i))
		if out, _ := c.handle(ctx, wm); !bytes.Contains(out, []byte("\x04firstBatch\x00")) || bytes.Contains(out, []byte("\x04firstBatch\x00\x05\x00\x00\x00\x00")) {
			b.Fatalf("find %d: %q", i, out)
		}
	}
}

// captureInsertFind runs one driver insert and find by _id against srv and
// returns the two wire messages the driver sent.
func captureInsertFind(b testing.TB, srv *Server) (insert, find []byte) {
	rec := &recordingDialer{d: srv.Dialer()}
	client, err := mongo.Connect(srv.ClientOptions().SetDialer(rec))
	require.NoError(b, err)
	ctx := context.Background()
	coll := client.Database("bench").Collection("c")
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: benchMarker}, {Key: "v", Value: "x"}})
	require.NoError(b, err)
	require.NoError(b, coll.FindOne(ctx, bson.D{{Key: "_id", Value: benchMarker}}).Err())
	_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: benchMarker}})
	require.NoError(b, err)
	require.NoError(b, client.Disconnect(ctx))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, wm := range rec.msgs {
		m, err := decodeMessage(wm)
		if err != nil || m.opCode != wiremessage.OpMsg {
			continue
		}
		switch m.body.Index(0).Key() {
		case "insert":
			insert = wm
		case "find":
			find = wm
		}
	}
	require.NotNil(b, insert)
	require.NotNil(b, find)
	return insert, find
}

// recordingDialer keeps a copy of every message its connections write.
type recordingDialer struct {
	d    *Dialer
	mu   sync.Mutex
	msgs [][]byte
}

func (r *recordingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := r.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: nc, r: r}, nil
}

type recordingConn struct {
	net.Conn
	r *recordingDialer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.r.mu.Lock()
	c.r.msgs = append(c.r.msgs, bytes.Clone(p))
	c.r.mu.Unlock()
	return c.Conn.Write(p)
}

// BenchmarkInsertFindFloor is BenchmarkInsertFind against a server whose
// insert and find answer a canned reply without running: what remains is
// the driver, the transport and the wire layer, the floor that no work on
// the commands themselves can go below.
func BenchmarkInsertFindFloor(b *testing.B) {
	canned := func(srv *Server) {
		srv.handler = func(ctx context.Context, req *request) bson.D {
			switch req.name {
			case "insert":
				return bson.D{{Key: "n", Value: int32(1)}, {Key: "ok", Value: 1.0}}
			case "find":
				return bson.D{{Key: "cursor", Value: bson.D{
					{Key: "firstBatch", Value: bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: "x"}}}},
					{Key: "id", Value: int64(0)},
					{Key: "ns", Value: "bench.c"},
				}}, {Key: "ok", Value: 1.0}}
			}
			return srv.dispatch(ctx, req)
		}
	}
	run := func(b *testing.B, client *mongo.Client) {
		ctx := context.Background()
		coll := client.Database("bench").Collection("c")
		b.ReportAllocs()
		ReportCPU(b)
		for b.Loop() {
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "x"}}); err != nil {
				b.Fatal(err)
			}
			if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("tcp", func(b *testing.B) {
		srv := Start(b)
		canned(srv)
		client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
		require.NoError(b, err)
		b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
		run(b, client)
	})
	b.Run("in-process", func(b *testing.B) {
		srv := Start(b, WithoutListener())
		canned(srv)
		client, err := mongo.Connect(srv.ClientOptions())
		require.NoError(b, err)
		b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
		run(b, client)
	})
}
