package mongotest_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Nothing keeps a command once it is answered: after a 15 MB command, the
// connection's later small commands of the same session (same lsid, as a
// driver's pooled session sends) do not keep its 15 MB alive. The
// connection's Repeats remembers the lsid decoded with the big command,
// a slice of that command's one allocation of fields, so every field of it
// (and the 15 MB string it points to) stays reachable for as long as the
// session keeps sending the same lsid on that connection.
func TestA22BigCommandNotRetainedBySessionRepeats(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
	// The session exists already (another connection started it): the
	// server's session record keeps that command's lsid, not the big one's.
	lsid := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}}}
	other := newRawSession(t, srv)
	other.lsid = lsid
	requireOK(t, other.run("db", bson.D{{Key: "ping", Value: 1}}))
	base := heapAlloc()
	func() {
		big := strings.Repeat("x", 15<<20)
		// the session's lsid on this connection, which the later ones repeat
		s.lsid = lsid
		requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}, {Key: "comment", Value: big}}))
	}()
	for i := 0; i < 5; i++ {
		requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
	}
	after := heapAlloc()
	assert.Less(t, int64(after)-int64(base), int64(4<<20), "heap grew by %d bytes after the big command was answered", int64(after)-int64(base))
	runtime.KeepAlive(s)
}

// Once a command is answered, an idle connection keeps nothing of it: the
// connection's reused request (conn.req: the decoded command, the raw
// body pointing into the wire buffer, the op with its reply storage,
// transaction and context) still holds the last command until the next
// one arrives, so a pooled connection that goes idle after a 15 MB
// command keeps it.
func TestA22IdleConnectionKeepsNoCommand(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
	base := heapAlloc()
	func() {
		big := strings.Repeat("x", 15<<20)
		requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}, {Key: "comment", Value: big}}))
	}()
	after := heapAlloc()
	assert.Less(t, int64(after)-int64(base), int64(4<<20), "heap grew by %d bytes after the big command was answered", int64(after)-int64(base))
	runtime.KeepAlive(s)
}

// A retryable insert's record keeps the inserted document's _id, not the
// whole command: once the document is deleted (and no snapshot history
// keeps it), its 15 MB are not kept by the session's retry record, which
// now points at the _id field inside the command's one allocation of
// fields (and so keeps every field of every document of the command).
func TestA22RetryRecordKeepsNoDeletedDocument(t *testing.T) {
	srv := mongotest.Start(t)
	s, other := newRandomSession(t, srv), newRawSession(t, srv)
	requireOK(t, runWithoutLsid(t, other, "admin", bson.D{{Key: "setParameter", Value: 1}, {Key: "minSnapshotHistoryWindowInSeconds", Value: 0}}))
	requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
	base := heapAlloc()
	func() {
		big := strings.Repeat("x", 15<<20)
		r := s.run("db", append(insertCmd("c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "pad", Value: big}}), bson.E{Key: "txnNumber", Value: int64(1)}))
		requireOK(t, r)
		assert.EqualValues(t, 1, replyField(r, "n"))
	}()
	r := runWithoutLsid(t, other, "db", bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "limit", Value: 1}}}}})
	requireOK(t, r)
	assert.EqualValues(t, 1, replyField(r, "n"))
	requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
	requireOK(t, runWithoutLsid(t, other, "db", bson.D{{Key: "ping", Value: 1}}))
	after := heapAlloc()
	assert.Less(t, int64(after)-int64(base), int64(4<<20), "heap grew by %d bytes after the document was deleted", int64(after)-int64(base))
	runtime.KeepAlive(s)
}
