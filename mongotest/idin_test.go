package mongotest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// in is {$in: values}.
func in(values ...any) bson.D { return bson.D{{Key: "$in", Value: append(bson.A{}, values...)}} }

// decodeAll returns a function that decodes every document of the cursor
// a Find or Aggregate returns.
func decodeAll(t *testing.T) func(*mongo.Cursor, error) []bson.D {
	return func(cur *mongo.Cursor, err error) []bson.D {
		t.Helper()
		require.NoError(t, err)
		var docs []bson.D
		require.NoError(t, cur.All(context.Background(), &docs))
		return docs
	}
}

// MongoDB plans {_id: {$in: [...]}} as an IXSCAN of _id_ over one point
// per value, plus FETCH, and an aggregate's leading $match the same way
// (finding mongotest-id-in-scans): a query names three documents of 500
// and examines those.
func TestIDInExaminesOnlyTheNamedDocuments(t *testing.T) {
	ctx := context.Background()
	client, coll := seeded(t, 500)
	named := bson.D{{Key: "_id", Value: in("d400", "d100", "nope", "d200")}}
	withStatus := bson.D{{Key: "_id", Value: in("d101", "d102", "nope")}, {Key: "status", Value: "open"}}

	tests := []struct {
		name string
		run  func(t *testing.T)
		want int64
	}{
		{"find", func(t *testing.T) {
			docs := decodeAll(t)(coll.Find(ctx, named))
			require.Len(t, docs, 3)
		}, 3},
		{"find beside another field", func(t *testing.T) {
			docs := decodeAll(t)(coll.Find(ctx, withStatus))
			require.Len(t, docs, 2)
		}, 2},
		{"count", func(t *testing.T) {
			n, err := coll.CountDocuments(ctx, named)
			require.NoError(t, err)
			require.Equal(t, int64(3), n)
		}, 3},
		{"updateMany", func(t *testing.T) {
			res, err := coll.UpdateMany(ctx, withStatus, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "held"}}}})
			require.NoError(t, err)
			require.Equal(t, int64(2), res.ModifiedCount)
		}, 2},
		{"findAndModify", func(t *testing.T) {
			require.NoError(t, coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: in("d300", "nope")}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}).Err())
		}, 1},
		{"deleteMany", func(t *testing.T) {
			res, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: in("d498", "d499", "nope")}})
			require.NoError(t, err)
			require.Equal(t, int64(2), res.DeletedCount)
		}, 2},
		{"an empty $in", func(t *testing.T) {
			docs := decodeAll(t)(coll.Find(ctx, bson.D{{Key: "_id", Value: in()}}))
			require.Empty(t, docs)
		}, 0},
		{"aggregate starting with $match on an _id $in", func(t *testing.T) {
			docs := decodeAll(t)(coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$match", Value: named}}, {{Key: "$count", Value: "n"}}}))
			require.Equal(t, []bson.D{{{Key: "n", Value: int32(3)}}}, docs)
		}, 3},
		{"aggregate starting with $match on an _id equality", func(t *testing.T) {
			docs := decodeAll(t)(coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "_id", Value: "d007"}, {Key: "n", Value: 7}}}}}))
			require.Len(t, docs, 1)
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := examinedBy(t, client, func() { tt.run(t) })
			assert.Equal(t, tt.want, got.docs, "scannedObjects")
		})
	}
}

// A query that looks its _ids up answers exactly what a collection scan
// answers: the same documents, in the same (natural) order, each once,
// under the same matching rules. The scan is the same filter under a
// one-branch $or, which the server does not plan.
func TestIDInMatchesWhatAScanMatches(t *testing.T) {
	ctx := context.Background()
	client := connect(t, mongotest.Start(t, mongotest.WithoutListener()))
	db := client.Database("db")
	oid := bson.NewObjectID()
	dec := func(s string) bson.Decimal128 { d, err := bson.ParseDecimal128(s); require.NoError(t, err); return d }
	sub := bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}}
	// Natural order is not _id order.
	seed := []any{
		bson.D{{Key: "_id", Value: "zz"}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: int64(3)}, {Key: "x", Value: 2}},
		bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: 1.0}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: sub}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: "A"}, {Key: "x", Value: 2}},
		bson.D{{Key: "_id", Value: int32(2)}, {Key: "x", Value: 2}},
		bson.D{{Key: "_id", Value: nil}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: oid}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: 2.5}, {Key: "x", Value: 1}},
		bson.D{{Key: "_id", Value: "ab"}, {Key: "x", Value: 2}},
	}
	lookup, scan := db.Collection("lookup"), db.Collection("scan")
	for _, c := range []*mongo.Collection{lookup, scan} {
		_, err := c.InsertMany(ctx, seed)
		require.NoError(t, err)
	}
	scanned := func(filter bson.D) bson.D { return bson.D{{Key: "$or", Value: bson.A{filter}}} }
	id := func(v any) bson.D { return bson.D{{Key: "_id", Value: v}} }

	tests := []struct {
		name string
		give bson.D
	}{
		{"values in another order than the documents", id(in(int64(3), "zz", 1, "a"))},
		{"a missing value", id(in("nope", "a"))},
		{"one _id twice", id(in("a", "a", "zz"))},
		{"one number in equal forms", id(in(1, 1.0, int64(1), dec("1")))},
		{"a double, a decimal", id(in(2.5, dec("2.50"), int32(2)))},
		{"an empty list", id(in())},
		{"a regex", id(in(bson.Regex{Pattern: "^a"}))},
		{"a regex beside values", id(in(bson.Regex{Pattern: "^A", Options: "i"}, int32(3)))},
		{"a nested array", id(in(bson.A{1, 2}, "zz"))},
		{"a sub-document", id(in(sub))},
		{"a sub-document with a double", id(in(bson.D{{Key: "a", Value: 1.0}, {Key: "b", Value: "x"}}))},
		{"a sub-document in another field order", id(in(bson.D{{Key: "b", Value: "x"}, {Key: "a", Value: 1}}))},
		{"null", id(in(nil, "a"))},
		{"an ObjectID", id(in(oid))},
		{"beside another field", bson.D{{Key: "_id", Value: in("zz", "A", 3, 2)}, {Key: "x", Value: 2}}},
		{"after another field", bson.D{{Key: "x", Value: 1}, {Key: "_id", Value: in("zz", "A", 3, 2)}}},
		{"beside another operator", id(bson.D{{Key: "$in", Value: bson.A{1, 2, 3}}, {Key: "$ne", Value: 2}})},
		{"after another operator", id(bson.D{{Key: "$gt", Value: 1}, {Key: "$in", Value: bson.A{1, 2, 3}}})},
		{"given twice", bson.D{{Key: "_id", Value: in(1, 2)}, {Key: "_id", Value: in(2, 3)}}},
		{"an equality and an $in", bson.D{{Key: "_id", Value: in(1, 2)}, {Key: "_id", Value: 2}}},
		{"$nin", id(bson.D{{Key: "$nin", Value: bson.A{1, "a"}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := decodeAll(t)(scan.Find(ctx, scanned(tt.give)))
			assert.Equal(t, want, decodeAll(t)(lookup.Find(ctx, tt.give)), "find")
			if len(want) > 0 {
				var first bson.D
				require.NoError(t, lookup.FindOne(ctx, tt.give).Decode(&first))
				assert.Equal(t, want[0], first, "findOne")
			}
			n, err := lookup.CountDocuments(ctx, tt.give)
			require.NoError(t, err)
			assert.Equal(t, int64(len(want)), n, "count")
			match := func(f bson.D) mongo.Pipeline {
				return mongo.Pipeline{{{Key: "$match", Value: f}}, {{Key: "$project", Value: bson.D{{Key: "x", Value: 0}}}}}
			}
			assert.Equal(t, decodeAll(t)(scan.Aggregate(ctx, match(scanned(tt.give)))), decodeAll(t)(lookup.Aggregate(ctx, match(tt.give))), "aggregate")

			collated := options.Find().SetCollation(&options.Collation{Locale: "en", Strength: 2})
			assert.Equal(t, decodeAll(t)(scan.Find(ctx, scanned(tt.give), collated)), decodeAll(t)(lookup.Find(ctx, tt.give, collated)), "find with a collation")

			inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "seen", Value: 1}}}}
			want1, err := scan.UpdateMany(ctx, scanned(tt.give), inc)
			require.NoError(t, err)
			got1, err := lookup.UpdateMany(ctx, tt.give, inc)
			require.NoError(t, err)
			assert.Equal(t, want1.MatchedCount, got1.MatchedCount, "updateMany")
			assert.Equal(t, decodeAll(t)(scan.Find(ctx, bson.D{})), decodeAll(t)(lookup.Find(ctx, bson.D{})), "after updateMany")

			want2 := scan.FindOneAndUpdate(ctx, scanned(tt.give), inc, options.FindOneAndUpdate().SetReturnDocument(options.After))
			got2 := lookup.FindOneAndUpdate(ctx, tt.give, inc, options.FindOneAndUpdate().SetReturnDocument(options.After))
			assert.Equal(t, want2.Err(), got2.Err(), "findAndModify")
			wantRaw, _ := want2.Raw()
			gotRaw, _ := got2.Raw()
			assert.Equal(t, wantRaw, gotRaw, "findAndModify")
		})
	}
	t.Run("the scans scanned", func(t *testing.T) {
		got := examinedBy(t, client, func() { decodeAll(t)(scan.Find(ctx, scanned(id(in("a"))))) })
		require.Equal(t, int64(len(seed)), got.docs, "the one-branch $or is planned: the test compares lookups with lookups")
	})

	t.Run("deleteMany", func(t *testing.T) {
		for _, tt := range tests {
			want, err := scan.DeleteMany(ctx, scanned(tt.give))
			require.NoError(t, err)
			got, err := lookup.DeleteMany(ctx, tt.give)
			require.NoError(t, err)
			assert.Equal(t, want.DeletedCount, got.DeletedCount, tt.name)
			assert.Equal(t, decodeAll(t)(scan.Find(ctx, bson.D{})), decodeAll(t)(lookup.Find(ctx, bson.D{})), tt.name)
		}
	})
}

// Inside a transaction a lookup sees the transaction's own writes, as
// its scan does.
func TestIDInSeesTheTransactionsWrites(t *testing.T) {
	ctx := context.Background()
	client, coll := seeded(t, 10)
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "new"}, {Key: "n", Value: -1}})
		require.NoError(t, err)
		_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: "d001"}})
		require.NoError(t, err)
		_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "d002"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 20}}}})
		require.NoError(t, err)

		filter := bson.D{{Key: "_id", Value: in("new", "d001", "d002", "d003")}}
		got := decodeAll(t)(coll.Find(ctx, filter))
		want := decodeAll(t)(coll.Find(ctx, bson.D{{Key: "$or", Value: bson.A{filter}}}))
		require.Equal(t, want, got)
		require.Equal(t, []bson.D{
			{{Key: "_id", Value: "d002"}, {Key: "status", Value: "open"}, {Key: "n", Value: int32(20)}},
			{{Key: "_id", Value: "d003"}, {Key: "status", Value: "open"}, {Key: "n", Value: int32(3)}},
			{{Key: "_id", Value: "new"}, {Key: "n", Value: int32(-1)}},
		}, got)
		return nil, nil
	})
	require.NoError(t, err)
}

// BenchmarkFindByIDIn finds three documents by {_id: {$in}} in a small
// and a large collection: with an _id lookup the two cost the same.
func BenchmarkFindByIDIn(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			ctx := context.Background()
			coll := seededIDs(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				filter := bson.D{{Key: "_id", Value: in(fmt.Sprintf("d%05d", i%n), fmt.Sprintf("d%05d", (i+7)%n), fmt.Sprintf("d%05d", (i+13)%n))}}
				cur, err := coll.Find(ctx, filter)
				if err != nil {
					b.Fatal(err)
				}
				var got []bson.D
				if err := cur.All(ctx, &got); err != nil || len(got) != 3 {
					b.Fatalf("find %v: %d documents, %v", filter, len(got), err)
				}
			}
		})
	}
}
