package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// Cases filed by attack15b (/work/findings/mongotest-*.md), each pinning
// where mongotest answered differently from MongoDB, with the source of
// MongoDB's behaviour.

func rawFindAll(t *testing.T, s *rawSession, coll string) bson.A {
	t.Helper()
	r := runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: coll}})
	requireOK(t, r)
	return replyField(replyField(r, "cursor").(bson.D), "firstBatch").(bson.A)
}

// src/mongo/db/initialize_operation_session_info.cpp refuses, before the
// command runs: startTransaction without autocommit ("'startTransaction'
// field requires 'autocommit' field to also be specified"),
// startTransaction: false ("Specifying startTransaction=false is not
// allowed.") and a negative txnNumber ("Transaction number cannot be
// negative"), all InvalidOptions (72). mongotest runs the first as a
// retryable write (the insert is applied at once, outside any transaction,
// while the client believes it started one).
func TestSessionInfoStartTransactionRequiresAutocommitFalse(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)

	cmd := append(insertCmd("c", bson.D{{Key: "_id", Value: 1}}),
		bson.E{Key: "txnNumber", Value: int64(1)}, bson.E{Key: "startTransaction", Value: true})
	requireCode(t, s.run("db", cmd), 72, "InvalidOptions")
	assert.Empty(t, rawFindAll(t, s, "c"), "a refused command writes nothing")

	cmd = append(insertCmd("c", bson.D{{Key: "_id", Value: 2}}),
		bson.E{Key: "txnNumber", Value: int64(2)}, bson.E{Key: "autocommit", Value: false},
		bson.E{Key: "startTransaction", Value: false})
	requireCode(t, s.run("db", cmd), 72, "InvalidOptions")

	cmd = append(insertCmd("c", bson.D{{Key: "_id", Value: 3}}), bson.E{Key: "txnNumber", Value: int64(-1)})
	requireCode(t, newRandomSession(t, srv).run("db", cmd), 72, "InvalidOptions")
	assert.Empty(t, rawFindAll(t, s, "c"))
}

// MongoDB refuses a retryable write (txnNumber outside a transaction) on
// an update statement with multi: true and a delete statement with limit
// 0: a write error InvalidOptions (72) "Cannot use (or request) retryable
// writes with multi=true" for that statement only (write_ops_exec.cpp
// performUpdates/performDeletes; jstests/sharding/retryable_writes.js
// runMultiTests: "Only the update statements with multi=true in a batch
// fail", "Only the delete statements with limit=0 in a batch fail").
func TestRetryableWriteRefusesMultiUpdateAndLimitZeroDelete(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}}, bson.D{{Key: "_id", Value: 2}, {Key: "x", Value: 2}})))

	upd := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "y", Value: 1}}}}}},
		bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "z", Value: 1}}}}}, {Key: "multi", Value: true}},
	}}, {Key: "txnNumber", Value: int64(1)}}
	r := s.run("db", upd)
	requireOK(t, r)
	werrs, _ := replyField(r, "writeErrors").(bson.A)
	require.Len(t, werrs, 1, "reply: %v", r)
	assert.EqualValues(t, 1, replyField(werrs[0].(bson.D), "index"))
	assert.EqualValues(t, 72, replyField(werrs[0].(bson.D), "code"))

	del := bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "x", Value: 2}}}, {Key: "limit", Value: 0}},
	}}, {Key: "txnNumber", Value: int64(2)}}
	r = s.run("db", del)
	werrs, _ = replyField(r, "writeErrors").(bson.A)
	require.Len(t, werrs, 1, "reply: %v", r)
	assert.EqualValues(t, 72, replyField(werrs[0].(bson.D), "code"))
	assert.Len(t, rawFindAll(t, s, "c"), 2, "the refused delete removed nothing")
}

// failCommand's data.namespace limits the fail point to commands on that
// namespace (src/mongo/db/commands.cpp shouldActivateFailCommandFailPoint:
// "if (data.hasField("namespace") && (nss != NamespaceString(...)))
// return false"); a command on another namespace runs and does not use
// up an activation. mongotest ignores namespace and fails every find.
func TestFailCommandNamespaceLimitsTheFailPoint(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":{"times":1},
		"data":{"failCommands":["find"],"errorCode":2,"namespace":"db.other"}}`)))
	t.Cleanup(func() { _ = srv.FailCommand("off", nil) })
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: "c"}}))
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: "other"}}), 2, "BadValue")
}

// FailPoint::parseBSON (src/mongo/util/fail_point.cpp): a mode document
// with "times" is nTimes whatever else it holds (skip is read only when
// times is absent); a negative times or skip is BadValue "'times' option
// to 'mode' must be positive". mongotest combines times and skip (the
// first matching command passes, the second fails), takes times: -1 as
// off and skip: -1 as always on.
func TestFailPointModeParsedAsMongoDB(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	t.Cleanup(func() { _ = srv.FailCommand("off", nil) })
	requireOK(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":{"times":1,"skip":1},
		"data":{"failCommands":["ping"],"errorCode":2}}`)))
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}), 2, "BadValue")
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))

	for _, mode := range []string{`{"times":-1}`, `{"skip":-1}`} {
		requireCode(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":`+mode+`,
			"data":{"failCommands":["ping"],"errorCode":2}}`)), 2, "BadValue")
	}
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
}

// ReadConcernArgs::parse (src/mongo/db/repl/read_concern_args.cpp) refuses
// with InvalidOptions (72): atClusterTime with a level other than snapshot
// ("atClusterTime field can be set only if level is equal to snapshot"),
// afterClusterTime together with atClusterTime ("Can not specify both"),
// afterClusterTime with level linearizable or available, a null
// afterClusterTime, an unknown field ("Unrecognized option in readConcern:
// foo"). mongotest ignores them all; with level local or majority it
// ignores atClusterTime and answers from the latest data, not the
// requested point in time.
func TestReadConcernArgumentsCheckedAsMongoDB(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	r := runWithoutLsid(t, s, "db", fromJSON(t, `{"find":"c","readConcern":{"level":"snapshot"}}`))
	requireOK(t, r)
	ts := replyField(replyField(r, "cursor").(bson.D), "atClusterTime")
	require.NotNil(t, ts)
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 2}})))

	cases := map[string]bson.D{
		"atClusterTime with level local":    {{Key: "level", Value: "local"}, {Key: "atClusterTime", Value: ts}},
		"atClusterTime with level majority": {{Key: "level", Value: "majority"}, {Key: "atClusterTime", Value: ts}},
		"afterClusterTime and atClusterTime": {{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: ts},
			{Key: "afterClusterTime", Value: ts}},
		"afterClusterTime with linearizable": {{Key: "level", Value: "linearizable"}, {Key: "afterClusterTime", Value: ts}},
		"null afterClusterTime":              {{Key: "level", Value: "local"}, {Key: "afterClusterTime", Value: bson.Timestamp{}}},
		"unknown field":                      {{Key: "level", Value: "local"}, {Key: "foo", Value: 1}},
	}
	for name, rc := range cases {
		t.Run(name, func(t *testing.T) {
			requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: rc}}), 72, "InvalidOptions")
		})
	}
}

// ExpressionAdd::evaluate (src/mongo/db/pipeline/expression.cpp): with a
// date operand, "uassert(ErrorCodes::Overflow, "date overflow in $add",
// nonDecimalTotal.fitsLong())" (and for a double total, the same check on
// its range). mongotest wraps around: the latest date plus 1 ms becomes
// the earliest date, the earliest minus 1.5 ms the latest.
func TestDateOverflowInAddIsAnError(t *testing.T) {
	ctx, db := newTestDB(t)
	for _, stage := range []string{
		`{"$project":{"p":{"$add":[{"$date":{"$numberLong":"9223372036854775807"}},1]}}}`,
		`{"$project":{"p":{"$add":[{"$date":{"$numberLong":"-9223372036854775808"}},-1.5]}}}`,
	} {
		cur, err := db.Aggregate(ctx, bson.A{fromJSON(t, `{"$documents":[{"a":1}]}`), fromJSON(t, stage)})
		if err == nil {
			var got []bson.D
			require.NoError(t, cur.All(ctx, &got))
			t.Errorf("%s: MongoDB fails with Overflow (15); mongotest returned %v", stage, got)
			continue
		}
		requireCommandError(t, err, 15, "Overflow")
	}
}

// countParseLimit (src/mongo/db/query/count_request.cpp): a negative count
// limit is its absolute value.
func TestCountNegativeLimitIsItsAbsoluteValue(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "_id", Value: 3}})))
	r := runWithoutLsid(t, s, "db", bson.D{{Key: "count", Value: "c"}, {Key: "limit", Value: -2}})
	requireOK(t, r)
	assert.EqualValues(t, 2, replyField(r, "n"))
}

// decimal128 arithmetic rounds to the format as the BID library does
// (src/mongo/platform/decimal128.cpp; SafeNum for $mul): a result above
// the largest decimal is Infinity, one below the smallest rounds to zero;
// neither is an InternalError.
func TestDecimalOverflowIsInfinityAndUnderflowIsZero(t *testing.T) {
	ctx, db := newTestDB(t)
	cur, err := db.Aggregate(ctx, bson.A{
		fromJSON(t, `{"$documents":[{"a":{"$numberDecimal":"9.999999999999999999999999999999999E+6144"},"b":{"$numberDecimal":"1E-6176"}}]}`),
		fromJSON(t, `{"$project":{"_id":0,"sum":{"$add":["$a","$a"]},"half":{"$divide":["$b",2]}}}`),
	})
	require.NoError(t, err)
	var got []bson.D
	require.NoError(t, cur.All(ctx, &got))
	require.Len(t, got, 1)
	sum, _ := replyField(got[0], "sum").(bson.Decimal128)
	assert.True(t, sum.IsInf() > 0, "sum: %v", replyField(got[0], "sum"))
	half, _ := replyField(got[0], "half").(bson.Decimal128)
	assert.True(t, half.IsZero(), "half: %v", replyField(got[0], "half"))

	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id":1,"d":{"$numberDecimal":"9.999999999999999999999999999999999E+6144"}}]`)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSON(t, `{"$mul":{"d":10}}`))
	require.NoError(t, err)
	requireStored(t, ctx, coll, `[{"_id":1,"d":{"$numberDecimal":"Infinity"}}]`)
}

// The Stable API (src/mongo/db/api_parameters.cpp, enforced before a
// command runs): apiVersion must be "1" (APIVersionError 322), and with
// apiStrict: true a command outside API version 1 is refused
// (APIStrictError 323) — the point of a strict client. Commands in version
// 1 run as before.
func TestStableAPIStrictRefusesCommandsOutsideVersion1(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "collStats", Value: "c"}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}}),
		323, "APIStrictError")
	requireCode(t, runWithoutLsid(t, s, "admin", bson.D{{Key: "serverStatus", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}}),
		323, "APIStrictError")
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: "2"}}),
		322, "APIVersionError")
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: "c"}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}}))
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "collStats", Value: "c"}, {Key: "apiVersion", Value: "1"}}))
}

// The parsing rules of jstests/core/api_params_parsing.js: apiStrict or
// apiDeprecationErrors without apiVersion → 4886600; a non-string
// apiVersion and non-boolean flags → TypeMismatch; listCommands (outside
// version 1) runs without apiStrict and is refused with it.
func TestStableAPIParametersParsedAsMongoDB(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	ping := func(extra ...bson.E) bson.D {
		return runWithoutLsid(t, s, "db", append(bson.D{{Key: "ping", Value: 1}}, extra...))
	}
	requireCode(t, ping(bson.E{Key: "apiStrict", Value: true}), 4886600, "Location4886600")
	requireCode(t, ping(bson.E{Key: "apiDeprecationErrors", Value: false}), 4886600, "Location4886600")
	requireCode(t, ping(bson.E{Key: "apiVersion", Value: 1.0}), 14, "TypeMismatch")
	requireCode(t, ping(bson.E{Key: "apiVersion", Value: "1"}, bson.E{Key: "apiStrict", Value: "true"}), 14, "TypeMismatch")
	requireOK(t, ping(bson.E{Key: "apiVersion", Value: "1"}, bson.E{Key: "apiStrict", Value: false}, bson.E{Key: "apiDeprecationErrors", Value: false}))
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "listCommands", Value: 1}, {Key: "apiVersion", Value: "1"}}))
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "listCommands", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}}), 323, "APIStrictError")
}
