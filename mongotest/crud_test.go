package mongotest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

func newClient(t *testing.T) *mongo.Client {
	t.Helper()
	srv := mongotest.Start(t)
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func TestCRUDRoundTrip(t *testing.T) {
	ctx := context.Background()
	coll := newClient(t).Database("db").Collection("c")

	res, err := coll.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1}}, bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: 2}}})
	require.NoError(t, err)
	require.Len(t, res.InsertedIDs, 2)

	up, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 10}}}})
	require.NoError(t, err)
	require.Equal(t, int64(1), up.MatchedCount)
	require.Equal(t, int64(1), up.ModifiedCount)

	var got bson.M
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
	require.EqualValues(t, 11, got["n"])

	n, err := coll.CountDocuments(ctx, bson.D{{Key: "n", Value: bson.D{{Key: "$gt", Value: 1}}}})
	require.NoError(t, err)
	require.Equal(t, int64(2), n)

	del, err := coll.DeleteMany(ctx, bson.D{})
	require.NoError(t, err)
	require.Equal(t, int64(2), del.DeletedCount)
}

func TestDuplicateKey(t *testing.T) {
	ctx := context.Background()
	coll := newClient(t).Database("db").Collection("c")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}})
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}})
	require.True(t, mongo.IsDuplicateKeyError(err), "got %v", err)
}

func TestTransactionCommitAndAbort(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	coll := client.Database("db").Collection("c")
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)

	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		if err != nil {
			return nil, err
		}
		n, err := coll.CountDocuments(context.Background(), bson.D{}) //txcheck:ignore reads from outside the transaction
		require.NoError(t, err)
		require.Zero(t, n, "uncommitted insert is invisible outside")
		return nil, nil
	})
	require.NoError(t, err)

	boom := errors.New("boom")
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
		require.NoError(t, err)
		return nil, boom
	})
	require.ErrorIs(t, err, boom)
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func TestConcurrentTransfersKeepTotal(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	coll := client.Database("db").Collection("acct")
	const accounts = 4
	for i := 0; i < accounts; i++ {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "bal", Value: int64(100)}})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sess, err := client.StartSession()
			if err != nil {
				t.Error(err)
				return
			}
			defer sess.EndSession(ctx)
			for i := 0; i < 20; i++ {
				from, to := (w+i)%accounts, (w+i+1)%accounts
				_, err := sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
					if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: from}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "bal", Value: int64(-1)}}}}); err != nil {
						return nil, err
					}
					_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: to}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "bal", Value: int64(1)}}}})
					return nil, err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	cur, err := coll.Aggregate(ctx, mongo.Pipeline{})
	_ = cur
	_ = err
	var total int64
	c2, err := coll.Find(ctx, bson.D{})
	require.NoError(t, err)
	var docs []struct {
		Bal int64 `bson:"bal"`
	}
	require.NoError(t, c2.All(ctx, &docs))
	for _, d := range docs {
		total += d.Bal
	}
	require.Equal(t, int64(accounts*100), total)
}

// BenchmarkInsertFind measures one insert plus one find by _id through the
// driver, the round trip every test pays, over TCP and over the in-process
// transport; beside them, two TCP echo round trips of a similar message on
// the same machine, the floor any TCP server pays for the pair.
func BenchmarkInsertFind(b *testing.B) {
	b.Run("tcp", func(b *testing.B) {
		srv := mongotest.Start(b)
		client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
		require.NoError(b, err)
		b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
		benchInsertFind(b, client)
	})
	b.Run("in-process", func(b *testing.B) {
		srv := mongotest.Start(b, mongotest.WithoutListener())
		benchInsertFind(b, connect(b, srv))
	})
	b.Run("tcp-echo-two-round-trips", benchTCPEcho)
}

func benchInsertFind(b *testing.B, client *mongo.Client) {
	ctx := context.Background()
	coll := client.Database("bench").Collection("c")
	b.ReportAllocs()
	mongotest.ReportCPU(b)
	i := 0
	for b.Loop() {
		i++
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: "x"}}); err != nil {
			b.Fatal(err)
		}
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: i}}).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTCPEcho sends a 200-byte message to a loopback echo server and reads
// it back, twice per iteration.
func benchTCPEcho(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_, _ = io.Copy(nc, nc)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(b, err)
	b.Cleanup(func() {
		_ = nc.Close()
		_ = ln.Close()
		<-done
	})
	msg, buf := make([]byte, 200), make([]byte, 200)
	b.ReportAllocs()
	mongotest.ReportCPU(b)
	for b.Loop() {
		for range 2 {
			if _, err := nc.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(nc, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// sort {$natural: 1} is insertion order and {$natural: -1} its reverse,
// as find's natural-order scan in MongoDB.
func TestFindSortsByNaturalOrder(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id": 2}, {"_id": 1}, {"_id": 3}]`)
	ids := func(t *testing.T, sort bson.D, limit int64) []int32 {
		t.Helper()
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(sort).SetLimit(limit))
		require.NoError(t, err)
		var got []struct {
			ID int32 `bson:"_id"`
		}
		require.NoError(t, cur.All(ctx, &got))
		out := []int32{}
		for _, g := range got {
			out = append(out, g.ID)
		}
		return out
	}
	require.Equal(t, []int32{2, 1, 3}, ids(t, bson.D{{Key: "$natural", Value: 1}}, 0))
	require.Equal(t, []int32{3, 1, 2}, ids(t, bson.D{{Key: "$natural", Value: -1}}, 0))
	require.Equal(t, []int32{3}, ids(t, bson.D{{Key: "$natural", Value: -1}}, 1))
}
