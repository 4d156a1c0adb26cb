package mongotest_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

// Query-language and view findings filed by attack15b (see
// /work/findings/mongotest-positional-operator.md, -upsert-fields.md,
// -view-cycle.md, -find-on-view-options.md). Each pins a case where
// mongotest answered differently from MongoDB, with the source of
// MongoDB's behaviour.

// The positional $ operator updates the first array element the query
// matched (manual: reference/operator/update/positional, "db.students.
// updateOne({_id: 1, grades: 80}, {$set: {"grades.$": 82}})"), in update
// statements and findAndModify alike. mongotest answers every "arr.$" with
// BadValue "The positional operator did not find the match needed from
// the query." — MongoDB's error for a query that matched no array element
// — although the query did match, so the refusal blames the caller's query.
func TestPositionalOperatorUpdatesTheMatchedElement(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id":1,"grades":[85,80,80]},{"_id":2,"grades":[88,90,92]}]`)

	res, err := coll.UpdateOne(ctx, fromJSON(t, `{"_id":1,"grades":80}`), fromJSON(t, `{"$set":{"grades.$":82}}`))
	require.NoError(t, err)
	assert.EqualValues(t, 1, res.ModifiedCount)

	_, err = coll.UpdateMany(ctx, fromJSON(t, `{"grades":{"$gte":90}}`), fromJSON(t, `{"$inc":{"grades.$":1}}`))
	require.NoError(t, err)
	requireStored(t, ctx, coll, `[{"_id":1,"grades":[85,82,80]},{"_id":2,"grades":[88,91,92]}]`)
}

// MongoDB refuses a view definition that closes a cycle, at create and at
// collMod: GraphContainsCycle (5) "View cycle detected: ..."
// (src/mongo/db/views/view_graph.cpp ViewGraph::insertAndValidate; the
// code is 5 in src/mongo/base/error_codes.yml — 140, which attack15b's
// test asked for, is InvalidSSLConfiguration). mongotest stored the cycle
// and only failed later reads with ViewDepthLimitExceeded.
func TestViewCycleIsRefusedWhenDefined(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"create":"x","viewOn":"y","pipeline":[]}`)))
	r := runWithoutLsid(t, s, "db", fromJSON(t, `{"create":"y","viewOn":"x","pipeline":[]}`))
	requireCode(t, r, 5, "GraphContainsCycle")
	assert.Equal(t, "View cycle detected: db.y => db.y => db.x => db.y", replyField(r, "errmsg"))
	requireCode(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"collMod":"x","viewOn":"x","pipeline":[]}`)), 5, "GraphContainsCycle")
}

// A view's edges in MongoDB's view graph are its viewOn and every
// namespace its pipeline reads ($lookup, $unionWith, nested
// pipelines: ViewCatalog's refs are the lite-parsed pipeline's involved
// namespaces plus viewOn), so a $lookup back onto the view is a cycle too;
// a definition that makes a chain of views deeper than 20 fails with
// ViewDepthLimitExceeded (165) "View depth limit exceeded; maximum depth
// is 20" (view_graph.cpp); $out in a view is OptionNotSupportedOnView (167).
func TestViewGraphIsValidatedWhenDefined(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	run := func(cmd string) bson.D { return runWithoutLsid(t, s, "db", fromJSON(t, cmd)) }

	requireOK(t, run(`{"create":"a","viewOn":"c","pipeline":[]}`))
	r := run(`{"collMod":"a","viewOn":"c","pipeline":[{"$lookup":{"from":"c","pipeline":[{"$unionWith":{"coll":"a"}}],"as":"k"}}]}`)
	requireCode(t, r, 5, "GraphContainsCycle")
	assert.Equal(t, "View cycle detected: db.a => db.a => db.a", replyField(r, "errmsg"))
	requireCode(t, run(`{"create":"b","viewOn":"c","pipeline":[{"$facet":{"f":[{"$lookup":{"from":"b","localField":"x","foreignField":"y","as":"k"}}]}}]}`), 5, "GraphContainsCycle")
	requireCode(t, run(`{"create":"o","viewOn":"c","pipeline":[{"$out":"x"}]}`), 167, "OptionNotSupportedOnView")

	// v1 on c, v2 on v1, ... v20 on v19: depth 20 is allowed, 21 is not.
	for i := 1; i <= 20; i++ {
		on := "c"
		if i > 1 {
			on = "v" + strconv.Itoa(i-1)
		}
		requireOK(t, run(`{"create":"v`+strconv.Itoa(i)+`","viewOn":"`+on+`","pipeline":[]}`))
	}
	requireCode(t, run(`{"create":"v21","viewOn":"v20","pipeline":[]}`), 165, "ViewDepthLimitExceeded")
	// A view under the chain's foot lengthens it through every view above.
	requireOK(t, run(`{"create":"w","viewOn":"c","pipeline":[]}`))
	requireCode(t, run(`{"collMod":"v1","viewOn":"w","pipeline":[]}`), 165, "ViewDepthLimitExceeded")
	requireOK(t, run(`{"find":"v20"}`))
}

// A find on a view runs as an aggregation, and options aggregation has no
// counterpart for are refused with InvalidPipelineOperator (168):
// tailable, noCursorTimeout, allowPartialResults, readOnce, singleBatch
// (unless limit is 1), a $natural sort (query_request_helper::
// asAggregationCommand, src/mongo/db/query/query_request_helper.cpp).
// mongotest accepts them on a view.
func TestFindOnAViewRefusesOptionsAggregationLacks(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"create":"v","viewOn":"c","pipeline":[]}`)))
	for _, opt := range []string{`"noCursorTimeout":true`, `"allowPartialResults":true`, `"singleBatch":true`, `"sort":{"$natural":1}`,
		`"readOnce":true`, `"tailable":true`, `"singleBatch":true,"limit":2`} {
		t.Run(opt, func(t *testing.T) {
			requireCode(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"find":"v",`+opt+`}`)), 168, "InvalidPipelineOperator")
		})
	}
	t.Run("singleBatch with limit 1 is allowed", func(t *testing.T) {
		requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"find":"v","singleBatch":true,"limit":1}`)))
	})
	t.Run("false options are no options", func(t *testing.T) {
		requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"find":"v","noCursorTimeout":false,"allowPartialResults":false,"singleBatch":false,"readOnce":false}`)))
	})
}

// jstests/core/upsert_fields.js pins how an upsert extracts fields from its
// query: {_id: {$all: [1]}} upserts _id 1 and {x: {$all: [1]}} seeds x: 1
// (a one-element $all is an equality); {x: {$all: [1, 2]}} with an
// operator update is a write error; a replacement-style upsert with
// {"_id.x": 1, "_id.y": 2} is a write error (nested _id fields are used
// only by operator updates). mongotest generates an ObjectId, drops x, and
// accepts the last two.
func TestUpsertFieldsExtractedAsUpsertFieldsJS(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	upsert := func(q, u string) bson.D {
		runWithoutLsid(t, s, "db", fromJSON(t, `{"delete":"c","deletes":[{"q":{},"limit":0}]}`))
		return runWithoutLsid(t, s, "db", fromJSON(t, `{"update":"c","updates":[{"q":`+q+`,"u":`+u+`,"upsert":true}]}`))
	}
	t.Run("_id $all [1]", func(t *testing.T) {
		upsert(`{"_id":{"$all":[1]}}`, `{"$set":{"a":1}}`)
		assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: int32(1)}}}, rawFindAll(t, s, "c"))
	})
	t.Run("x $all [1]", func(t *testing.T) {
		upsert(`{"_id":2,"x":{"$all":[1]}}`, `{"$set":{"a":1}}`)
		assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(2)}, {Key: "x", Value: int32(1)}, {Key: "a", Value: int32(1)}}}, rawFindAll(t, s, "c"))
	})
	for _, c := range [][2]string{
		{`{"x":{"$all":[1,2]}}`, `{"$set":{"a":1}}`},
		{`{"_id.x":1,"_id.y":2}`, `{"a":1}`},
	} {
		t.Run(c[0]+" "+c[1], func(t *testing.T) {
			r := upsert(c[0], c[1])
			assert.NotNil(t, replyField(r, "writeErrors"), "reply: %v", r)
			assert.Empty(t, rawFindAll(t, s, "c"))
		})
	}
}

// TestUpsertFieldsJS runs jstests/core/upsert_fields.js's field-extraction
// cases, for a replacement, a $set and a $setOnInsert upsert each. want is
// the inserted document's field (relaxed Extended JSON), "" for absent, or
// "error" for a write error that inserts nothing; for _id, "generated"
// means an ObjectId was generated.
func TestUpsertFieldsJS(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	type tc struct {
		q, field string
		// repl is the outcome of a replacement upsert, op that of $set
		// and $setOnInsert.
		repl, op string
	}
	same := func(q, field, want string) tc { return tc{q: q, field: field, repl: want, op: want} }
	tests := []tc{
		same(`{"_id":1}`, "_id", "1"),
		same(`{"_id":{"$eq":1}}`, "_id", "1"),
		same(`{"_id":{"$all":[1]}}`, "_id", "1"),
		same(`{"_id":{"$in":[1]}}`, "_id", "1"),
		same(`{"$and":[{"_id":1}]}`, "_id", "1"),
		same(`{"$and":[{"_id":{"$eq":1}}]}`, "_id", "1"),
		same(`{"$or":[{"_id":1}]}`, "_id", "1"),
		same(`{"$or":[{"_id":{"$eq":1}}]}`, "_id", "1"),
		same(`{"_id":{"$gt":1}}`, "_id", "generated"),
		same(`{"_id":{"$ne":1}}`, "_id", "generated"),
		same(`{"_id":{"$in":[1,2]}}`, "_id", "generated"),
		same(`{"_id":{"$elemMatch":{"$eq":1}}}`, "_id", "generated"),
		same(`{"_id":{"$exists":true}}`, "_id", "generated"),
		same(`{"_id":{"$not":{"$eq":1}}}`, "_id", "generated"),
		same(`{"$or":[{"_id":1},{"_id":1}]}`, "_id", "generated"),
		same(`{"$or":[{"_id":{"$eq":1}},{"_id":2}]}`, "_id", "generated"),
		same(`{"$nor":[{"_id":1}]}`, "_id", "generated"),
		same(`{"_id":[1,2]}`, "_id", "error"),
		same(`{"_id":{"$eq":[1,2]}}`, "_id", "error"),
		same(`{"_id":{"$all":[1,2]}}`, "_id", "error"),
		same(`{"$and":[{"_id":1},{"_id":1}]}`, "_id", "error"),
		same(`{"$and":[{"_id":{"$eq":1}},{"_id":2}]}`, "_id", "error"),
		same(`{"_id":1,"_id.x":1}`, "_id", "error"),
		same(`{"_id":{"x":1},"_id.x":1}`, "_id", "error"),
		{q: `{"_id.x":1,"_id.y":2}`, field: "_id", repl: "error", op: `{"x":1,"y":2}`},
		same(`{"_id":{"$regex":"abc"}}`, "_id", "generated"),

		{q: `{"x":1}`, field: "x", op: "1"},
		{q: `{"x":{"$eq":1}}`, field: "x", op: "1"},
		{q: `{"x":{"$in":[1]}}`, field: "x", op: "1"},
		{q: `{"x":{"$all":[1]}}`, field: "x", op: "1"},
		{q: `{"$and":[{"x":1}]}`, field: "x", op: "1"},
		{q: `{"$or":[{"x":{"$eq":1}}]}`, field: "x", op: "1"},
		{q: `{"x":[1,2]}`, field: "x", op: "[1,2]"},
		{q: `{"x":{"x.x":1}}`, field: "x", op: `{"x.x":1}`},
		same(`{"x":{"$gt":1}}`, "x", ""),
		same(`{"x":{"$in":[1,2]}}`, "x", ""),
		same(`{"x":{"$elemMatch":{"$eq":1}}}`, "x", ""),
		same(`{"$or":[{"x":1},{"x":1}]}`, "x", ""),
		same(`{"$nor":[{"x":1}]}`, "x", ""),
		{q: `{"x":{"$all":[1,2]}}`, field: "x", op: "error"},
		{q: `{"$and":[{"x":1},{"x":1}]}`, field: "x", op: "error"},
		{q: `{"$and":[{"x":{"$eq":1}},{"x":2}]}`, field: "x", op: "error"},
		{q: `{"x.x":1}`, field: "x", op: `{"x":1}`},
		{q: `{"x.x":{"$all":[1]}}`, field: "x", op: `{"x":1}`},
		{q: `{"$or":[{"x.x":{"$eq":1}}]}`, field: "x", op: `{"x":1}`},
		{q: `{"x":1,"x.x":1}`, field: "x", op: "error"},
		{q: `{"x":{},"x.x":1}`, field: "x", op: "error"},
		{q: `{"x":{"x":1},"x.y":1}`, field: "x", op: "error"},
		{q: `{"x":[1,{"x":1}],"x.x":1}`, field: "x", op: "error"},
		same(`{"x":{"$regex":"abc"}}`, "x", ""),
		{q: `{"x":{"$eq":{"$regularExpression":{"pattern":"abc","options":""}}}}`, field: "x",
			op: `{"$regularExpression":{"pattern":"abc","options":""}}`},
		{q: `{"_id":1,"x":[1,{"x":1}],"x.x":1}`, field: "_id", repl: "1", op: "error"},
	}
	for _, tt := range tests {
		for _, u := range []string{`{"a":1}`, `{"$set":{"a":1}}`, `{"$setOnInsert":{"a":1}}`} {
			want := tt.op
			if u == `{"a":1}` {
				want = tt.repl
			}
			t.Run(tt.q+" "+u, func(t *testing.T) {
				requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"delete":"c","deletes":[{"q":{},"limit":0}]}`)))
				r := runWithoutLsid(t, s, "db", fromJSON(t, `{"update":"c","updates":[{"q":`+tt.q+`,"u":`+u+`,"upsert":true}]}`))
				docs := rawFindAll(t, s, "c")
				if want == "error" {
					assert.NotNil(t, replyField(r, "writeErrors"), "reply: %v", r)
					assert.Empty(t, docs)
					return
				}
				requireOK(t, r)
				require.Len(t, docs, 1, "reply: %v", r)
				v, ok := bsonkit.Get(docs[0].(bson.D), tt.field)
				switch want {
				case "":
					assert.False(t, ok, "%v", docs[0])
				case "generated":
					assert.IsType(t, bson.ObjectID{}, v, "%v", docs[0])
				default:
					assert.Equal(t, toJSON(t, fromJSON(t, `{"v":`+want+`}`)), toJSON(t, bson.D{{Key: "v", Value: v}}))
				}
			})
		}
	}
}
