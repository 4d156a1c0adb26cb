package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A replacement-style upsert first seeds the new document with the query's
// full equality on _id (populateDocumentWithQueryFields with _id as the
// immutable path, extractFullEqualityMatches), then applies the
// replacement with _id immutable (UpsertStage::_produceNewDocumentForInsert,
// src/mongo/db/update/object_replace_executor.cpp): a replacement whose _id
// differs from the query's fails with ImmutableField (66) "After applying
// the update, the (immutable) field '_id' was found to have been altered
// to _id: 2", a query on a part of _id with NotExactValueField (111);
// nothing is inserted. mongotest upserted {_id: 2}.
func TestReplacementUpsertMayNotChangeTheQueryID(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	_, err := coll.ReplaceOne(ctx, fromJSON(t, `{"_id":1}`), fromJSON(t, `{"_id":2,"v":1}`), options.Replace().SetUpsert(true))
	requireArgRefused(t, err, "(immutable) field '_id' was found to have been altered to _id: 2", 66)
	err = coll.FindOneAndReplace(ctx, fromJSON(t, `{"_id":1}`), fromJSON(t, `{"_id":2,"v":1}`), options.FindOneAndReplace().SetUpsert(true)).Err()
	requireArgRefused(t, err, "_id", 66)
	_, err = coll.ReplaceOne(ctx, fromJSON(t, `{"_id.x":1}`), fromJSON(t, `{"v":1}`), options.Replace().SetUpsert(true))
	requireArgRefused(t, err, "must be exactly specified", 111)
	requireStored(t, ctx, coll, `[]`)

	// The same _id, or none, takes the query's; other equalities are not
	// seeded into a replacement.
	_, err = coll.ReplaceOne(ctx, fromJSON(t, `{"_id":1,"k":7}`), fromJSON(t, `{"v":1,"_id":1}`), options.Replace().SetUpsert(true))
	require.NoError(t, err)
	_, err = coll.ReplaceOne(ctx, fromJSON(t, `{"_id":{"$eq":2},"k":7}`), fromJSON(t, `{"v":2}`), options.Replace().SetUpsert(true))
	require.NoError(t, err)
	requireStored(t, ctx, coll, `[{"_id":1,"v":1},{"_id":2,"v":2}]`)
}
