package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// MongoDB binds the positional $ to the elemMatchKey of its canonical
// query (UpdateStage::transformAndUpdate matches cq->root()), which is the
// filter after MatchExpression::optimize and sortTree. The optimizer
// rewrites a $in of exactly one value into an equality
// (InMatchExpression::getOptimizer, "Simplify IN of exactly one equality")
// and a $or of equalities on one path into a $in (jstests/core/query/or/
// or_to_in.js: {$or:[{f1:5},{f1:3},{f1:7}]} parses as {f1:{$in:[7,3,5]}}),
// which changes which conjunct comes last and whether one records a key.
// Finding mongotest-positional-optimized-query.
func TestPositionalFollowsTheOptimizedQuery(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	reset := func(t *testing.T, docs string) {
		t.Helper()
		_, err := coll.DeleteMany(ctx, bson.D{})
		require.NoError(t, err)
		insertJSON(t, ctx, coll, docs)
	}
	t.Run("a one-value $in is an equality, sorted by path with the others", func(t *testing.T) {
		// Canonical: $and [{a: {$eq: 1}}, {b: {$eq: 1}}]; b's key (2) is last.
		reset(t, `[{"_id":1,"a":[0,1],"b":[0,0,1]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"a":{"$in":[1]},"b":1}`), fromJSON(t, `{"$set":{"b.$":9}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[0,1],"b":[0,0,9]}]`)
	})
	t.Run("a one-regex $in is a regex, sorted before $exists", func(t *testing.T) {
		// Canonical: $and [{a: /x/} (REGEX), {b: {$exists: true}} (EXISTS)];
		// $exists matches b's first element: key 0.
		reset(t, `[{"_id":1,"a":["p","q","x"],"b":[5,6,7]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"a":{"$in":[{"$regularExpression":{"pattern":"x","options":""}}]},"b":{"$exists":true}}`),
			fromJSON(t, `{"$set":{"b.$":9}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":1,"a":["p","q","x"],"b":[9,6,7]}]`)
	})
	t.Run("a $or of equalities on one path is a $in and records the element", func(t *testing.T) {
		reset(t, `[{"_id":1,"a":[1,2]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"$or":[{"a":2},{"a":5}]}`), fromJSON(t, `{"$set":{"a.$":9}}`))
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[1,9]}]`)
	})
	t.Run("two $elemMatch on one path are refused, not bound to a guessed element", func(t *testing.T) {
		// matchExpressionComparator breaks a (type, path) tie by the
		// children: on MongoDB $elemMatch {x: 1} sorts before $elemMatch
		// {y: 1}, so the one on y (element 1) is last, whatever the order
		// written. mongotest does not order conditions so: it refuses
		// rather than update a possibly wrong element.
		reset(t, `[{"_id":1,"a":[{"x":1},{"y":1}]}]`)
		_, err := coll.UpdateOne(ctx, fromJSON(t, `{"a":{"$all":[{"$elemMatch":{"y":1}},{"$elemMatch":{"x":1}}]}}`),
			fromJSON(t, `{"$set":{"a.$.z":9}}`))
		requireArgRefused(t, err, "positional operator $", 238)
		requireStored(t, ctx, coll, `[{"_id":1,"a":[{"x":1},{"y":1}]}]`)
	})
}

// killSessions and killAllSessions never wait on each other on MongoDB:
// the killing command does not check its own session out (only
// transactions and retryable writes do) and killSessionsLocal interrupts
// the operations of the sessions it kills. Two clients that kill at the
// same time — each from its own session, as drivers send every command
