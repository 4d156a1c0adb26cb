package mongotest

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// OpMsg::parse (src/mongo/rpc/op_msg.cpp) refuses malformed OP_MSGs with
// codes of their own: 40430 "Multiple body sections in message", 40431
// "Duplicate document sequence", 40432 "Unknown section kind", 40433
// "Duplicate field between body and document sequence" (also for a dotted
// sequence name that reaches a body field, extractElementAtPathOrArrayAlongPath),
// 40587 "OP_MSG messages must have a body", all answered; IllegalOpMsgFlag
// (223) for unknown required flags and TooManyDocumentSequences (233) for
// a third document sequence are ConnectionFatalMessageParseErrors
// (error_codes.yml), which close the connection without a reply
// (receivedCommands rethrows them). mongotest answered FailedToParse (9)
// and accepted any number of sequences.
func TestMalformedOpMsgCodes(t *testing.T) {
	ping := mustDoc(t, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	seq := func(id string) testSeq {
		return testSeq{identifier: id, docs: []bsoncore.Document{mustDoc(t, bson.D{{Key: "x", Value: 1}})}}
	}
	twoBodies := buildMsg(1, 0, ping)
	twoBodies = append(twoBodies, 0)
	twoBodies = append(twoBodies, ping...)
	binary.LittleEndian.PutUint32(twoBodies, uint32(len(twoBodies)))
	unknownKind := append(buildMsg(1, 0, ping), 7)
	binary.LittleEndian.PutUint32(unknownKind, uint32(len(unknownKind)))
	nested := mustDoc(t, bson.D{{Key: "insert", Value: "c"}, {Key: "a", Value: bson.D{{Key: "b", Value: 1}}}, {Key: "$db", Value: "x"}})

	tests := []struct {
		name      string
		give      []byte
		wantCode  int32
		wantFatal bool
	}{
		{"two body sections", twoBodies, 40430, false},
		{"duplicate sequence", buildMsg(1, 0, ping, seq("documents"), seq("documents")), 40431, false},
		{"unknown section kind", unknownKind, 40432, false},
		{"sequence clashes with body field", buildMsg(1, 0,
			mustDoc(t, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{}}, {Key: "$db", Value: "x"}}), seq("documents")), 40433, false},
		{"dotted sequence clashes with a nested body field", buildMsg(1, 0, nested, seq("a.b")), 40433, false},
		{"no body", wiremessage.AppendMsgFlags(wiremessage.AppendHeader(nil, 20, 1, 0, wiremessage.OpMsg), 0), 40587, false},
		{"unknown required flag", buildMsg(1, 1<<3, ping), 223, true},
		{"three document sequences", buildMsg(1, 0, ping, seq("a"), seq("b"), seq("c")), 233, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decodeMessage(tt.give)
			if err == nil {
				_, err = m.command(nil)
			}
			require.Error(t, err, "MongoDB refuses this message")
			var we *wireError
			require.ErrorAs(t, err, &we)
			assert.Equal(t, tt.wantCode, we.code, err.Error())
			assert.Equal(t, tt.wantFatal, we.fatal, "a ConnectionFatalMessageParseError closes the connection: %v", err)
		})
	}

	// Two sequences, and a dotted name that reaches no body field, are fine.
	m, err := decodeMessage(buildMsg(1, 0, nested, seq("a.c"), seq("b")))
	require.NoError(t, err)
	_, err = m.command(nil)
	require.NoError(t, err)
}

// OpMsg::parse reads the body and each document of a document sequence as
// a validated BSONObj, which may be at most BSONObjMaxInternalSize (16 MB +
// 16 KB): a larger one is BSONObjectTooLarge (10334), answered, while the
// message (up to 48 MB) is fine. A 16 MB document in a sequence passes.
func TestOpMsgSectionOver16MBIsRefused(t *testing.T) {
	doc := func(n int) bsoncore.Document {
		return mustDoc(t, bson.D{{Key: "x", Value: string(make([]byte, n))}})
	}
	insert := mustDoc(t, bson.D{{Key: "insert", Value: "c"}, {Key: "$db", Value: "x"}})
	tests := []struct {
		name string
		give []byte
		want int32 // 0: accepted
	}{
		{"a body over the limit", buildMsg(1, 0, doc(maxInternalDocSize)), merr.BSONObjectTooLarge},
		{"a sequence document over the limit", buildMsg(1, 0, insert, testSeq{identifier: "documents", docs: []bsoncore.Document{doc(1), doc(maxInternalDocSize)}}), merr.BSONObjectTooLarge},
		{"a 16 MB sequence document", buildMsg(1, 0, insert, testSeq{identifier: "documents", docs: []bsoncore.Document{doc(maxBSONObjectSize - 100)}}), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeMessage(tt.give)
			if tt.want == 0 {
				require.NoError(t, err)
				return
			}
			var we *wireError
			require.ErrorAs(t, err, &we)
			assert.Equal(t, tt.want, we.code, err.Error())
			assert.False(t, we.fatal, "answered; the connection lives on")
		})
	}
}
