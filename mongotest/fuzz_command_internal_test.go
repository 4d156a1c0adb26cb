package mongotest

import (
	"context"
	"net"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FuzzCommand sends arbitrary command bodies to every command. Whatever
// the body, a command answers (an error is fine); it must not panic, which
// the wire layer would turn into InternalError and which may leave state
// behind.
func FuzzCommand(f *testing.F) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		if n != "configureFailPoint" { // it may legitimately block or close connections
			names = append(names, n)
		}
	}
	sort.Strings(names)
	seeds := []bson.D{
		{{Key: "x", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}},
		{{Key: "x", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "a.5", Value: 1}}}}}, {Key: "upsert", Value: true}}}}},
		{{Key: "x", Value: "c"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$a"}}}}}}, {Key: "cursor", Value: bson.D{}}},
		{{Key: "x", Value: int64(5)}, {Key: "collection", Value: 7}},
	}
	for i, d := range seeds {
		raw, err := bson.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), raw)
	}
	srv, err := NewServer()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	client, peer := net.Pipe() // a connection for commands that look at theirs
	f.Cleanup(func() { _ = client.Close(); _ = peer.Close() })
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		var cmd bson.D
		if bson.Unmarshal(body, &cmd) != nil || len(cmd) == 0 {
			t.Skip()
		}
		name := names[int(which)%len(names)]
		cmd[0].Key = name
		req := &request{db: "fuzz", name: name, cmd: cmd, conn: &conn{srv: srv, nc: peer, log: srv.log}}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_ = srv.dispatch(ctx, req) // a panic fails the fuzz run
	})
}
