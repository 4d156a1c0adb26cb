package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// MongoDB replaces an empty timestamp, Timestamp(0, 0), in a top-level
// field other than _id of an inserted or replacement document with the
// current cluster time, unless the command sets bypassEmptyTsReplacement;
// operator updates store it as given (fixDocumentForInsert,
// ObjectReplaceExecutor).
func TestEmptyTimestampIsReplaced(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	empty := bson.Timestamp{}
	run := func(t *testing.T, cmd bson.D) {
		t.Helper()
		require.NoError(t, db.RunCommand(ctx, cmd).Err())
	}
	tsOf := func(t *testing.T, id int32, key string) bson.Timestamp {
		t.Helper()
		var got bson.D
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got))
		ts, ok := replyField(got, key).(bson.Timestamp)
		require.True(t, ok, "got %v", got)
		return ts
	}
	doc := func(id int32) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "ts", Value: empty}, {Key: "sub", Value: bson.D{{Key: "ts", Value: empty}}}}
	}

	t.Run("insert fills a top-level empty timestamp", func(t *testing.T) {
		run(t, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{doc(1)}}})
		assert.NotEqual(t, empty, tsOf(t, 1, "ts"))
		var got bson.D
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got))
		assert.Equal(t, bson.D{{Key: "ts", Value: empty}}, replyField(got, "sub"), "only top-level fields are filled")
	})
	t.Run("insert with bypassEmptyTsReplacement keeps it", func(t *testing.T) {
		run(t, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{doc(2)}}, {Key: "bypassEmptyTsReplacement", Value: true}})
		assert.Equal(t, empty, tsOf(t, 2, "ts"))
	})
	t.Run("a replacement fills it, an operator update does not", func(t *testing.T) {
		run(t, bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "ts", Value: empty}}}}}}})
		assert.NotEqual(t, empty, tsOf(t, 2, "ts"))
		run(t, bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "ts", Value: empty}}}}}}}}})
		assert.Equal(t, empty, tsOf(t, 2, "ts"))
		run(t, bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "update", Value: bson.D{{Key: "ts", Value: empty}}}})
		assert.NotEqual(t, empty, tsOf(t, 2, "ts"))
		run(t, bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "update", Value: bson.D{{Key: "ts", Value: empty}}}, {Key: "bypassEmptyTsReplacement", Value: true}})
		assert.Equal(t, empty, tsOf(t, 2, "ts"))
	})
}
