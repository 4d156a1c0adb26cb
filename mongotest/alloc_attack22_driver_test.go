package mongotest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// Many goroutines over the in-process transport, each with its own
// documents: inserts of varying sizes, finds by _id, cursors read in
// small batches interleaved with other commands, transactions. Every
// read must return what that goroutine wrote.
func TestA22DriverConcurrentMix(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := context.Background()
	client, err := mongo.Connect(srv.ClientOptions().SetMaxPoolSize(3))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(ctx) })
	coll := client.Database("db").Collection("c")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			fail := func(format string, args ...any) { errs <- fmt.Errorf("g%d: "+format, append([]any{g}, args...)...) }
			base := int32(-100000 * (g + 1))
			for i := int32(0); i < 40; i++ {
				id := base - i
				pad := strings.Repeat(string(rune('a'+g)), int(i*97%3000))
				if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "g", Value: int32(g)}, {Key: "pad", Value: pad}}); err != nil {
					fail("insert %v", err)
					return
				}
				var got bson.D
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil {
					fail("find %v", err)
					return
				}
				if len(got) != 3 || got[0].Value != id || got[2].Value != pad {
					fail("find %d got %v", id, got[0])
				}
			}
			cur, err := coll.Find(ctx, bson.D{{Key: "g", Value: int32(g)}}, options.Find().SetBatchSize(3).SetSort(bson.D{{Key: "_id", Value: -1}}))
			if err != nil {
				fail("find %v", err)
				return
			}
			n := int32(0)
			for cur.Next(ctx) {
				var d bson.D
				_ = cur.Decode(&d)
				if d[0].Value != base-n {
					fail("cursor doc %d is %v", n, d[0].Value)
				}
				n++
				// other commands in between
				_, _ = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: base - n/2}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "u", Value: 1}}}})
			}
			if n != 40 {
				fail("cursor read %d", n)
			}
			sess, err := client.StartSession()
			if err != nil {
				fail("session %v", err)
				return
			}
			_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
				if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: base + 1}, {Key: "g", Value: int32(g)}}); err != nil {
					return nil, err
				}
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: base + 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "t", Value: true}}}})
				return nil, err
			})
			sess.EndSession(ctx)
			if err != nil {
				fail("txn %v", err)
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cnt, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 6*41, cnt)
}
