package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// ReadConcernArgs::parse (src/mongo/db/repl/read_concern_args.cpp) refuses
// with InvalidOptions (72): atClusterTime with a level other than snapshot,
// afterClusterTime together with atClusterTime, afterClusterTime with
// level linearizable, a null afterClusterTime, an unknown field. Filed by
// attack15b: with level local or majority mongotest dropped atClusterTime
// and answered from the latest data, not the requested point in time.
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
		"atClusterTime without level":       {{Key: "atClusterTime", Value: ts}},
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
	// The valid forms still read.
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: "c"},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: ts}}}}))
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: "c"},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "majority"}, {Key: "afterClusterTime", Value: ts}}}}))
}
