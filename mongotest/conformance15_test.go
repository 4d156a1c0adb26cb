package mongotest_test

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Conformance cases filed by attack15 (see /work/findings/mongotest-*.md):
// each pins a case where mongotest accepted input MongoDB refuses, or
// answered differently, with the source of MongoDB's behaviour.

// The whole update command is parsed (write_ops.idl) before any statement
// runs: a statement whose upsert is a string fails the command with
// TypeMismatch and no statement is applied. mongotest reports a write
// error for that statement only, after applying the statements before it.
func TestUpdateStatementTypeErrorIsCommandError(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id": 1}]`)
	err := db.RunCommand(ctx, bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}}},
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}}, {Key: "upsert", Value: "no"}},
	}}}).Err()
	assert.Equal(t, canonJSON(t, `{"_id": 1}`), toJSON(t, stored(t, ctx, coll)[0]), "no statement applied")
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce, "MongoDB fails the whole command; got %v", err)
	assert.Equal(t, int32(14), ce.Code)
}

// A delete statement's limit is parsed with the command
// (write_ops::readMultiDeleteProperty, src/mongo/db/ops/write_ops_parsers.cpp:
// "The limit field in delete objects must be 0 or 1. Got 2", FailedToParse):
// the command fails and no statement runs. mongotest runs the statements
// before it and reports a write error.
func TestDeleteLimitIsCommandError(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id": 1}, {"_id": 2}]`)
	err := db.RunCommand(ctx, bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "limit", Value: 1}},
		bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "limit", Value: 2}},
	}}}).Err()
	assert.Len(t, stored(t, ctx, coll), 2, "no statement applied")
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce, "MongoDB fails the whole command; got %v", err)
	assert.Equal(t, int32(9), ce.Code)
}

// MongoDB's fixDocumentForInsert (src/mongo/db/ops/insert.cpp) refuses an
// undefined _id ("can't use a undefined for _id", BadValue) and a document
// with two _id fields ("can't have multiple _id fields in one document",
// BadValue, SERVER-19361).
func TestInsertIDShapes(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")

	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.Undefined{}}})
	requireArgRefused(t, err, "undefined", 2)

	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 50}, {Key: "_id", Value: 51}})
	requireArgRefused(t, err, "multiple _id", 2)

	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n, "a refused insert stores nothing")
}

// $set replaces a value unless it is binary-equal (SetNode /
// ModifierNode::apply, binaryEqualValues), and changing _id is refused
// (ImmutableField, 66, "Performing an update on the path '_id' would
// modify the immutable field '_id'",
// src/mongo/db/update/modifier_node.cpp checkImmutablePathsNotModified):
// {$set: {_id: 1.0}} on {_id: 1} changes its type, so it is refused.
// mongotest stores _id 1.0.
func TestSetIDToAnEqualValueOfAnotherType(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("u")
	insertJSON(t, ctx, coll, `[{"_id": 1}]`)
	_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: 1.0}}}})
	requireArgRefused(t, err, "immutable field '_id'", 66)
	requireStored(t, ctx, coll, `[{"_id": 1}]`)
}

// A document-modifying update may not create a $-prefixed field in an
// existing document: manual, "Dollar-Prefixed Field Names" ("If this sample
// code matches an existing document, the update will fail since $hotel is
// dollar ($) prefixed"); the server's storage validation answers
// DollarPrefixedFieldName (52) "The dollar ($) prefixed field '$x' in '$x'
// is not valid for storage.". mongotest stores the field.
func TestSetDollarPrefixedFieldOnExistingDocument(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("u")
	insertJSON(t, ctx, coll, `[{"_id": 1}]`)
	for _, path := range []string{"$x", "a.$x"} {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: path, Value: 1}}}})
		requireArgRefused(t, err, "not valid for storage", 52)
	}
	requireStored(t, ctx, coll, `[{"_id": 1}]`)
}

// Commands are parsed by IDL-generated parsers, which refuse a known field
// given twice: "BSON field 'find.filter' is a duplicate field" (code 40413,
// IDLParserContext::throwDuplicateField, src/mongo/idl/idl_parser.cpp).
// mongotest silently uses the first filter and returns a document the
// second filter excludes.
func TestDuplicateCommandField(t *testing.T) {
	ctx, db := newTestDB(t)
	insertJSON(t, ctx, db.Collection("c"), `[{"_id": 1}]`)
	err := db.RunCommand(ctx, bson.D{
		{Key: "find", Value: "c"},
		{Key: "filter", Value: bson.D{}},
		{Key: "filter", Value: bson.D{{Key: "_id", Value: 2}}},
	}).Err()
	requireArgRefused(t, err, "duplicate", 40413)
}

// NaN of any numeric type compares equal to NaN of any other
// (compareElementValues / KeyString encode both as NaN), so a unique index
// holding a double NaN refuses a decimal NaN with E11000. mongotest stores
// both.
func TestUniqueIndexDecimalNaN(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("u")
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetUnique(true)})
	require.NoError(t, err)
	nan, err := bson.ParseDecimal128("NaN")
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: math.NaN()}})
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: nan}})
	requireWriteError(t, err, 11000)
}

// MongoDB stores documents at most maxBSONDepth (200) - 20 = 180 levels
// deep: jstests/noPassthrough/max_bson_depth_parameter.js ("Max user BSON
// depth is 20 less than the max absolute BSON depth"; deeper inserts fail
// with ErrorCodes.Overflow, 15). mongotest stores 251 levels.
func TestInsertTooDeep(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("deep")
	var v any = 1
	for range 250 {
		v = bson.D{{Key: "x", Value: v}}
	}
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: v}})
	requireArgRefused(t, err, "depth", 15)
}

// An aggregation cannot return a document larger than BSONObjMaxInternalSize
// (16 MB + 16 KB): turning the pipeline's output into BSON fails with
// BSONObjectTooLarge (10334, "BSONObj size: ... is invalid. Size must be
// between 0 and 16793600(16MB)", BSONObj::_assertInvalid,
// src/mongo/bson/bsonobj.cpp). mongotest returns an 18 MB document.
func TestAggregateResultTooLarge(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("big")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: strings.Repeat("x", 9<<20)}})
	require.NoError(t, err)
	cur, err := coll.Aggregate(ctx, bson.A{bson.D{{Key: "$project", Value: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "$a"}}}}})
	if err == nil {
		defer func() { _ = cur.Close(ctx) }()
		require.False(t, cur.Next(ctx), "returned a %d-byte document", len(cur.Current))
		err = cur.Err()
	}
	requireArgRefused(t, err, "size", 10334)
}
