package mongotest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// requireArgRefused asserts err is a server refusal (a command error or
// one write error) with one of codes and a message containing want, so it
// pins the refusal across server versions whose messages differ.
func requireArgRefused(t *testing.T, err error, want string, codes ...int) {
	t.Helper()
	require.Error(t, err, "MongoDB refuses this; mongotest accepted it")
	var code int
	var msg string
	var ce mongo.CommandError
	var we mongo.WriteException
	switch {
	case errors.As(err, &ce):
		code, msg = int(ce.Code), ce.Message
	case errors.As(err, &we) && len(we.WriteErrors) == 1:
		code, msg = we.WriteErrors[0].Code, we.WriteErrors[0].Message
	default:
		t.Fatalf("not a server refusal: %v", err)
	}
	assert.Contains(t, codes, code, "got %v", err)
	assert.Contains(t, strings.ToLower(msg), strings.ToLower(want), "got %v", err)
}

// find's limit is a non-negative safeInt64 (find_command.idl, validator
// gte: 0: "BSON field 'limit' value must be >= 0", 51024; BadValue "Limit
// value must be non-negative" in 4.x QueryRequest). The driver turns a
// negative limit into limit + singleBatch itself.
func TestFindRefusesANegativeLimit(t *testing.T) {
	ctx, db := newTestDB(t)
	insertJSON(t, ctx, db.Collection("c"), `[{"_id": 1}, {"_id": 2}]`)
	err := db.RunCommand(ctx, bson.D{{Key: "find", Value: "c"}, {Key: "limit", Value: -1}}).Err()
	requireArgRefused(t, err, "limit", 2, 51024)
}

// WriteConcernOptions::parse refuses a negative w: "w has to be a
// non-negative number and not greater than 50; found: -1" (FailedToParse,
// src/mongo/db/write_concern_options.cpp), before anything is written.
func TestANegativeWIsRefusedAndNothingIsWritten(t *testing.T) {
	ctx, db := newTestDB(t)
	err := db.RunCommand(ctx, bson.D{
		{Key: "insert", Value: "c"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}},
		{Key: "writeConcern", Value: bson.D{{Key: "w", Value: -1}}},
	}).Err()
	requireArgRefused(t, err, "w", 2, 9)
	n, err := db.Collection("c").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n, "a refused insert stores nothing")
}

// maxTimeMS must be a non-negative number (parseMaxTimeMS,
// src/mongo/db/query/max_time_ms_parser.cpp: "maxTimeMS must be a number",
// "maxTimeMS out of range", BadValue).
func TestAnInvalidMaxTimeMSIsRefused(t *testing.T) {
	ctx, db := newTestDB(t)
	for _, v := range []any{-1, "x"} {
		err := db.RunCommand(ctx, bson.D{{Key: "find", Value: "c"}, {Key: "maxTimeMS", Value: v}}).Err()
		requireArgRefused(t, err, "maxTimeMS", 2, 14, 51024)
	}
}

// readConcern.level is an enumeration (read_concern.idl, ReadConcernLevel:
// local, majority, linearizable, available, snapshot); an unknown level is
// refused (FailedToParse in 4.x ReadConcernArgs::parse, BadValue from the
// IDL enum parser later).
func TestAnUnknownReadConcernLevelIsRefused(t *testing.T) {
	ctx, db := newTestDB(t)
	err := db.RunCommand(ctx, bson.D{
		{Key: "find", Value: "c"},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "eventual"}}},
	}).Err()
	requireArgRefused(t, err, "level", 2, 9)
}

// Write commands support only readConcern level local outside a
// transaction: "Command insert does not support { readConcern: { level:
// \"majority\" } } :: caused by :: read concern not supported"
// (InvalidOptions, 72; supportsReadConcern in
// src/mongo/db/commands/write_commands.cpp, checked in
// service_entry_point_common.cpp).
func TestAWriteRefusesAReadConcernOtherThanLocal(t *testing.T) {
	ctx, db := newTestDB(t)
	err := db.RunCommand(ctx, bson.D{
		{Key: "insert", Value: "c"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "majority"}}},
	}).Err()
	requireArgRefused(t, err, "read concern", 72)
	n, err := db.Collection("c").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n, "a refused insert stores nothing")

	err = db.RunCommand(ctx, bson.D{
		{Key: "insert", Value: "c"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}},
		{Key: "readConcern", Value: bson.D{{Key: "level", Value: "local"}}},
	}).Err()
	require.NoError(t, err, "level local is the one a write supports")
}

// bypassDocumentValidation is a safeBool (write_ops.idl): a string is
// refused with TypeMismatch (14), as the IDL parser does.
func TestBypassDocumentValidationMustBeABoolean(t *testing.T) {
	ctx, db := newTestDB(t)
	err := db.RunCommand(ctx, bson.D{
		{Key: "insert", Value: "c"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}},
		{Key: "bypassDocumentValidation", Value: "yes"},
	}).Err()
	requireArgRefused(t, err, "bypassDocumentValidation", 14)
	n, err := db.Collection("c").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n, "a refused insert stores nothing")
}

// An awaitable hello names both topologyVersion and maxAwaitTimeMS, or
// neither (31368), with a non-negative wait (31373) and a counter no
// greater than the server's (31382): CmdHello::run and
// awaitHelloResponse, src/mongo/db/repl/replication_info.cpp and
// replication_coordinator_impl.cpp.
func TestHelloChecksItsAwaitArguments(t *testing.T) {
	ctx, db := newTestDB(t)
	admin := db.Client().Database("admin")
	var h struct {
		TV struct {
			ProcessID bson.ObjectID `bson:"processId"`
			Counter   int64         `bson:"counter"`
		} `bson:"topologyVersion"`
	}
	require.NoError(t, admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&h))
	tv := func(counter int64) bson.D {
		return bson.D{{Key: "processId", Value: h.TV.ProcessID}, {Key: "counter", Value: counter}}
	}

	err := admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}, {Key: "maxAwaitTimeMS", Value: 100}}).Err()
	requireArgRefused(t, err, "must include a 'topologyVersion'", 31368)
	err = admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}, {Key: "topologyVersion", Value: tv(0)}}).Err()
	requireArgRefused(t, err, "must include 'maxAwaitTimeMS'", 31368)
	err = admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}, {Key: "topologyVersion", Value: tv(0)}, {Key: "maxAwaitTimeMS", Value: -5}}).Err()
	requireArgRefused(t, err, "non-negative", 31373)
	err = admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}, {Key: "topologyVersion", Value: tv(-1)}, {Key: "maxAwaitTimeMS", Value: 5}}).Err()
	requireArgRefused(t, err, "non-negative counter", 31372)
	err = admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}, {Key: "topologyVersion", Value: tv(h.TV.Counter + 1)}, {Key: "maxAwaitTimeMS", Value: 5}}).Err()
	requireArgRefused(t, err, "higher counter", 31382)
	err = admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}, {Key: "topologyVersion", Value: "x"}, {Key: "maxAwaitTimeMS", Value: 5}}).Err()
	requireArgRefused(t, err, "topologyVersion", 14)

	require.NoError(t, admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}, {Key: "topologyVersion", Value: tv(0)}, {Key: "maxAwaitTimeMS", Value: 5}}).Err(),
		"a well-formed awaitable hello is answered after its wait")
}
