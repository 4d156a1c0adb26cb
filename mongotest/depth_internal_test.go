package mongotest

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// nestedCommand is {ping: 1, comment: {a: {a: … }}, $db: "admin"}, whose
// nesting is depth levels counting the command itself as one, built
// without recursion. With arrays, the comment is [[[…]]] instead.
func nestedCommand(depth int, arrays bool) bsoncore.Document {
	typ := bsoncore.TypeEmbeddedDocument
	key := "a"
	if arrays {
		typ, key = bsoncore.TypeArray, "0"
	}
	// The innermost value is an empty document; each wrapper adds
	// length, one element header and a terminator around it.
	inner := bsoncore.NewDocumentBuilder().Build()
	buf := make([]byte, 0, (depth)*(len(key)+7)+len(inner))
	for range depth - 2 {
		buf = append(buf, 0, 0, 0, 0, byte(typ))
		buf = append(buf, key...)
		buf = append(buf, 0)
	}
	buf = append(buf, inner...)
	for i := depth - 3; i >= 0; i-- {
		start := i * (len(key) + 6)
		buf = append(buf, 0)
		bsoncore.UpdateLength(buf, int32(start), int32(len(buf)-start))
	}
	idx, cmd := bsoncore.AppendDocumentStart(nil)
	cmd = bsoncore.AppendInt32Element(cmd, "ping", 1)
	cmd = bsoncore.AppendHeader(cmd, typ, "comment")
	cmd = append(cmd, buf...)
	cmd = bsoncore.AppendStringElement(cmd, "$db", "admin")
	cmd, _ = bsoncore.AppendDocumentEnd(cmd, idx)
	return cmd
}

// MongoDB validates every document of a message before it parses the
// command (validateBSON, src/mongo/bson/bson_validate.cpp): opening a
// document or array while maxBSONDepth (200) are already open fails with
// Overflow (15), "BSONObj exceeded maximum nested object depth: 200", and
// the command is answered with that error (ServiceEntryPointCommon:
// "parsing fails due to user-supplied input, such as the document too deep
// error"); the connection stays open. So a command 201 levels deep runs,
// one 202 levels deep is refused.
func TestCommandNestedBeyondMaxBSONDepthIsRefused(t *testing.T) {
	_, nc := startServer(t, nil)
	send := func(reqID int32, cmd bsoncore.Document) bsoncore.Document {
		t.Helper()
		require.NoError(t, bsoncore.Document(cmd).Validate(), "the test builds valid BSON")
		_, err := nc.Write(buildMsg(reqID, 0, cmd))
		require.NoError(t, err)
		wm, err := readMessage(nc)
		require.NoError(t, err)
		m, err := decodeMessage(wm)
		require.NoError(t, err)
		return m.body
	}
	for _, arrays := range []bool{false, true} {
		reply := send(1, nestedCommand(201, arrays))
		assert.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), "201 levels: %v", reply)

		reply = send(2, nestedCommand(202, arrays))
		assert.EqualValues(t, 0, reply.Lookup("ok").AsInt64(), "202 levels: %v", reply)
		assert.EqualValues(t, merr.Overflow, reply.Lookup("code").AsInt64())
		assert.Equal(t, "Overflow", reply.Lookup("codeName").StringValue())
		assert.Equal(t, "BSONObj exceeded maximum nested object depth: 200", reply.Lookup("errmsg").StringValue())

		reply = roundTrip(t, nc, 3, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
		assert.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), "the connection stays usable")
	}
}

// The depth is bounded before anything walks the document recursively: a
// command a million levels deep (7 MB) is refused with the goroutine stack
// limited to 16 MB, where a recursive validation or decoding would need
// hundreds of megabytes (and kill the process).
func TestDeepCommandIsRefusedWithBoundedStack(t *testing.T) {
	_, nc := startServer(t, nil)
	cmd := nestedCommand(1_000_000, false)
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	_, err := nc.Write(buildMsg(1, 0, cmd))
	require.NoError(t, err)
	wm, err := readMessage(nc)
	require.NoError(t, err)
	m, err := decodeMessage(wm)
	require.NoError(t, err)
	assert.EqualValues(t, merr.Overflow, m.body.Lookup("code").AsInt64(), "%v", m.body)
	reply := roundTrip(t, nc, 2, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	assert.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), "the connection stays usable")
}

// The depth walk steps over every BSON type: with one value of each
// before the nesting, a document one level too deep is still found, and
// one within the limit is not.
func TestTooDeepStepsOverEveryType(t *testing.T) {
	dec, err := bson.ParseDecimal128("1.5")
	require.NoError(t, err)
	every := bson.D{
		{Key: "double", Value: 1.5}, {Key: "string", Value: "s"}, {Key: "doc", Value: bson.D{{Key: "x", Value: 1}}},
		{Key: "array", Value: bson.A{1, "two"}}, {Key: "binary", Value: bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}},
		{Key: "undefined", Value: bson.Undefined{}}, {Key: "oid", Value: bson.NewObjectID()}, {Key: "bool", Value: true},
		{Key: "date", Value: bson.DateTime(1)}, {Key: "null", Value: nil}, {Key: "regex", Value: bson.Regex{Pattern: "a.b", Options: "i"}},
		{Key: "dbpointer", Value: bson.DBPointer{DB: "db.c", Pointer: bson.NewObjectID()}}, {Key: "js", Value: bson.JavaScript("f()")},
		{Key: "symbol", Value: bson.Symbol("sym")}, {Key: "cws", Value: bson.CodeWithScope{Code: "g()", Scope: bson.D{{Key: "y", Value: 2}}}},
		{Key: "int32", Value: int32(3)}, {Key: "ts", Value: bson.Timestamp{T: 1, I: 2}}, {Key: "int64", Value: int64(4)},
		{Key: "decimal", Value: dec}, {Key: "min", Value: bson.MinKey{}}, {Key: "max", Value: bson.MaxKey{}},
	}
	for _, c := range []struct {
		depth int
		want  bool
	}{{201, false}, {202, true}} {
		var v any = bson.D{}
		for range c.depth - 2 {
			v = bson.D{{Key: "n", Value: v}}
		}
		doc := append(every[:len(every):len(every)], bson.E{Key: "deep", Value: v})
		raw, err := bson.Marshal(doc)
		require.NoError(t, err)
		assert.Equal(t, c.want, tooDeep(raw), "depth %d", c.depth)
	}
	assert.False(t, tooDeep([]byte{5, 0, 0}), "malformed BSON is left to the validation")
}
