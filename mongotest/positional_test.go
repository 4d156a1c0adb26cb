package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The positional $ operator updates the first array element the query
// matched (manual: reference/operator/update/positional). MongoDB resolves
// it from the array position its matcher records (MatchDetails
// elemMatchKey); mongotest's matcher records none, so it refuses with
// NotImplemented naming "$" and changes nothing, instead of MongoDB's
// "did not find the match needed from the query", which blamed a query
// that did match. An upsert that inserts has no match on MongoDB either,
// and fails with that BadValue.
func TestPositionalOperatorIsRefusedNamingTheOperator(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id":1,"grades":[85,80,80]},{"_id":2,"grades":[88,90,92]}]`)

	_, err := coll.UpdateOne(ctx, fromJSON(t, `{"_id":1,"grades":80}`), fromJSON(t, `{"$set":{"grades.$":82}}`))
	requireArgRefused(t, err, "positional $ update operator", 238)
	_, err = coll.UpdateMany(ctx, fromJSON(t, `{"grades":{"$gte":90}}`), fromJSON(t, `{"$inc":{"grades.$":1}}`))
	requireArgRefused(t, err, "positional $ update operator", 238)
	err = coll.FindOneAndUpdate(ctx, fromJSON(t, `{"grades":85}`), fromJSON(t, `{"$set":{"grades.$":1}}`)).Err()
	requireArgRefused(t, err, "positional $ update operator", 238)
	requireStored(t, ctx, coll, `[{"_id":1,"grades":[85,80,80]},{"_id":2,"grades":[88,90,92]}]`)

	_, err = coll.UpdateOne(ctx, fromJSON(t, `{"_id":3,"grades":80}`), fromJSON(t, `{"$set":{"grades.$":82}}`), options.UpdateOne().SetUpsert(true))
	requireArgRefused(t, err, "The positional operator did not find the match needed from the query", 2)
	n, err := coll.CountDocuments(ctx, fromJSON(t, `{}`))
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}
