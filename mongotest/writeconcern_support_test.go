package mongotest_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// A command that does not support a write concern refuses one:
// InvalidOptions (72) "Command does not support writeConcern"
// (service_entry_point_common.cpp, when !invocation->supportsWriteConcern()).
// An aggregate supports one only with $out or $merge. Filed by attack15b.
func TestWriteConcernOnACommandThatDoesNotWriteIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	wc := bson.E{Key: "writeConcern", Value: bson.D{{Key: "w", Value: 1}}}
	for _, cmd := range []bson.D{
		{{Key: "find", Value: "c"}, wc},
		{{Key: "ping", Value: 1}, {Key: "writeConcern", Value: bson.D{{Key: "w", Value: "majority"}}}},
		{{Key: "count", Value: "c"}, wc},
		{{Key: "listCollections", Value: 1}, wc},
		{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{}}, {Key: "cursor", Value: bson.D{}}, wc},
	} {
		requireCode(t, runWithoutLsid(t, s, "db", cmd), 72, "InvalidOptions")
	}
	for _, cmd := range []bson.D{
		{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}, wc},
		{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$out", Value: "d"}}}}, {Key: "cursor", Value: bson.D{}}, wc},
		{{Key: "drop", Value: "d"}, wc},
	} {
		requireOK(t, runWithoutLsid(t, s, "db", cmd))
	}
}
