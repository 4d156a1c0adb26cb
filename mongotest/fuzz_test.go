package mongotest

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

// FuzzDecodeMessage feeds arbitrary bytes through the request decoding
// path a connection runs: it must return a message or an error, never panic.
// The seed corpus lives in testdata/fuzz/FuzzDecodeMessage.
func FuzzDecodeMessage(f *testing.F) {
	ping, _ := bson.Marshal(bson.D{{Key: "ping", Value: int32(1)}, {Key: "$db", Value: "admin"}})
	f.Add(buildMsg(1, 0, ping))
	f.Add(buildMsg(2, wiremessage.MoreToCome, ping,
		testSeq{identifier: "documents", docs: []bsoncore.Document{ping, ping}}))
	f.Add(buildQuery(3, "admin.$cmd", ping))

	f.Fuzz(func(t *testing.T, wm []byte) {
		m, err := decodeMessage(wm)
		if err != nil {
			we, ok := err.(*wireError)
			if !ok {
				t.Fatalf("decodeMessage returned %T, want *wireError", err)
			}
			if m == nil && !we.fatal {
				t.Fatalf("non-fatal error %q without a message to answer", err)
			}
			return
		}
		if m.body == nil {
			t.Fatal("decoded message has no body")
		}
		cmd, err := m.command(nil)
		if err != nil {
			if _, ok := err.(*wireError); !ok {
				t.Fatalf("command returned %T, want *wireError", err)
			}
			return
		}
		if len(cmd) == 0 {
			t.Fatal("decoded command is empty")
		}
		if m.opCode == wiremessage.OpMsg && m.db == "" {
			t.Fatal("OP_MSG command decoded without a database")
		}
		// The reply path must cope with whatever the command holds.
		if _, err := bson.Marshal(cmd); err != nil {
			t.Fatalf("decoded command does not re-encode: %v", err)
		}
	})
}
