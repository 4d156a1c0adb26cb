package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// An upsert seeds the new document from the equalities of its query after
// canonicalizing it (UpdateDriver::populateDocumentWithQueryFields, "We
// canonicalize the query to collapse $and/$or"): canonicalization rewrites
// a single-element $in to an equality (InMatchExpression's optimizer,
// "Simplify IN of exactly one equality") and a single-clause $or to its
// clause, so {_id: {$in: [60]}} upserts _id 60 and {$or: [{f: 6}]} seeds
// f: 6. The equalities are a std::map keyed by path (pathsupport::
// EqualityMatches), so they are added in path order, and _id is moved
// first (UpsertStage::_produceNewDocumentForInsert).
func TestUpsertSeedsFromSingleElementInAndOr(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	opts := options.UpdateOne().SetUpsert(true)
	res, err := coll.UpdateOne(ctx, fromJSON(t, `{"_id":{"$in":[60]}}`), fromJSON(t, `{"$set":{"z":1}}`), opts)
	require.NoError(t, err)
	assert.EqualValues(t, 60, res.UpsertedID)
	_, err = coll.UpdateOne(ctx, fromJSON(t, `{"_id":61,"$or":[{"f":6}],"a":{"$in":[7]}}`), fromJSON(t, `{"$set":{"z":1}}`), opts)
	require.NoError(t, err)
	// A $in whose values are equal is one equality; nested one-clause $or
	// and $and collapse too; a $in of two values and a $nor seed nothing.
	_, err = coll.UpdateOne(ctx, fromJSON(t,
		`{"_id":62,"$and":[{"$or":[{"$or":[{"g":{"$in":[1,1.0]}}]}]}],"h":{"$in":[1,2]},"$nor":[{"i":1}]}`),
		fromJSON(t, `{"$set":{"z":1}}`), opts)
	require.NoError(t, err)
	requireStored(t, ctx, coll, `[{"_id":60,"z":1},{"_id":61,"a":7,"f":6,"z":1},{"_id":62,"g":1,"z":1}]`)
}

// "$expr is not allowed in the query for an upsert, since it is not clear
// what the equality extraction behavior for $expr should be"
// (UpdateDriver::populateDocumentWithQueryFields parses the query without
// kExpr, and parseExpr answers QueryFeatureNotAllowed "$expr is not allowed
// in this context"): an upsert whose $expr query matches nothing fails and
// inserts nothing; one that matches updates as usual.
func TestUpsertWithExprQueryThatInsertsIsRefused(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	_, err := coll.UpdateOne(ctx, fromJSON(t, `{"$expr":{"$eq":["$a",1]}}`), fromJSON(t, `{"$set":{"z":1}}`), options.UpdateOne().SetUpsert(true))
	requireArgRefused(t, err, "$expr", 224)
	requireStored(t, ctx, coll, `[]`)

	err = coll.FindOneAndUpdate(ctx, fromJSON(t, `{"$or":[{"$expr":{"$eq":["$a",1]}}]}`), fromJSON(t, `{"$set":{"z":1}}`),
		options.FindOneAndUpdate().SetUpsert(true)).Err()
	requireArgRefused(t, err, "$expr", 224)
	requireStored(t, ctx, coll, `[]`)

	insertJSON(t, ctx, coll, `[{"_id":1,"a":1}]`)
	res, err := coll.UpdateOne(ctx, fromJSON(t, `{"$expr":{"$eq":["$a",1]}}`), fromJSON(t, `{"$set":{"z":1}}`), options.UpdateOne().SetUpsert(true))
	require.NoError(t, err)
	assert.EqualValues(t, 1, res.ModifiedCount)
	requireStored(t, ctx, coll, `[{"_id":1,"a":1,"z":1}]`)
}
