package mongotest_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"

	"github.com/txkit/txkit/mongotest"
)

// Since MongoDB 6.0 (mongotest reports wire version 21, MongoDB 7.0) OP_QUERY
// carries only the handshake: any other command on <db>.$cmd is refused with
// UnsupportedOpQueryCommand (352) "Unsupported OP_QUERY command: insert. The
// client driver may require an upgrade"
// (src/mongo/db/service_entry_point_common.cpp, receivedCommands /
// checkAllowedOpQueryCommand: only hello, isMaster, ismaster and a few
// handshake commands are allowed). mongotest runs the insert.
func TestOpQueryOnlyForTheHandshake(t *testing.T) {
	srv := mongotest.Start(t)
	nc := dial(t, srv)
	cmd, err := bson.Marshal(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}})
	require.NoError(t, err)

	write(t, nc, opQuery(9, "db.$cmd", bsoncore.Document(cmd)))

	reply := read(t, nc)
	_, _, responseTo, opcode, rem, _ := wiremessage.ReadHeader(reply)
	require.Equal(t, wiremessage.OpReply, opcode)
	assert.EqualValues(t, 9, responseTo)
	doc := bsoncore.Document(rem[20:])
	assert.Equal(t, int32(wiremessage.QueryFailure), int32(binary.LittleEndian.Uint32(rem))&int32(wiremessage.QueryFailure), "reply %v", doc)
	code, _ := doc.Lookup("code").AsInt64OK()
	assert.EqualValues(t, 352, code, "reply %v", doc)

	ctx := testContext(t)
	n, err := connect(t, srv).Database("db").Collection("c").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n, "a refused OP_QUERY insert stores nothing")
}
