package mongotest_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// a22Big is the size of the big value of a retention test: big enough to
// stand out of the heap's noise (a22Slack), small enough to keep the tests
// short under the race detector.
const (
	a22Big   = 8 << 20
	a22Slack = 3 << 20
)

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Nothing keeps a command once it is answered: after a big command, the
// connection's later small commands of the same session (same lsid, as a
// driver's pooled session sends) do not keep it alive. The connection's
// Repeats remembers the lsid decoded with the big command; that value must
// not be a slice of the command's one allocation of fields, which would
// keep every field of it (and the big string it points to) reachable for
// as long as the session keeps sending the same lsid on that connection
// (finding mongotest-repeats-retains-big-command).
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
		big := strings.Repeat("x", a22Big)
		// the session's lsid on this connection, which the later ones repeat
		s.lsid = lsid
		requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}, {Key: "comment", Value: big}}))
	}()
	for i := 0; i < 5; i++ {
		requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
	}
	after := heapAlloc()
	assert.Less(t, int64(after)-int64(base), int64(a22Slack), "heap grew by %d bytes after the big command was answered", int64(after)-int64(base))
	runtime.KeepAlive(s)
}

// Once a command is answered, an idle connection keeps nothing of it: the
// connection's reused request (conn.req: the decoded command, the raw
// body pointing into the wire buffer, the op with its reply storage,
// transaction and context) must not hold the last command until the next
// one arrives, or a pooled connection that goes idle after a big command
// keeps it (finding mongotest-idle-conn-keeps-last-command).
func TestA22IdleConnectionKeepsNoCommand(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
	base := heapAlloc()
	func() {
		big := strings.Repeat("x", a22Big)
		requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}, {Key: "comment", Value: big}}))
	}()
	after := heapAlloc()
	assert.Less(t, int64(after)-int64(base), int64(a22Slack), "heap grew by %d bytes after the big command was answered", int64(after)-int64(base))
	runtime.KeepAlive(s)
}

// A retryable insert's record keeps the inserted document's _id, not the
// whole command: once the document is deleted (and no snapshot history
// keeps it), its bytes are not kept by the session's retry record. A
// pointer to the _id field inside the command's one allocation of fields
// would keep every field of every document of the command; so would an
// _id that is a document decoded into that allocation (finding
// mongotest-retry-record-retains-insert-command).
func TestA22RetryRecordKeepsNoDeletedDocument(t *testing.T) {
	tests := []struct {
		name string
		give any
	}{
		{"an int32 _id", int32(1)},
		{"a string _id", "some id"},
		{"a document _id", bson.D{{Key: "k", Value: int32(1)}, {Key: "l", Value: bson.A{"x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mongotest.Start(t)
			s, other := newRandomSession(t, srv), newRawSession(t, srv)
			requireOK(t, runWithoutLsid(t, other, "admin", bson.D{{Key: "setParameter", Value: 1}, {Key: "minSnapshotHistoryWindowInSeconds", Value: 0}}))
			requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
			insert := func(pad string) bson.D {
				return append(insertCmd("c", bson.D{{Key: "_id", Value: tt.give}, {Key: "pad", Value: pad}}), bson.E{Key: "txnNumber", Value: int64(1)})
			}
			base := heapAlloc()
			func() {
				r := s.run("db", insert(strings.Repeat("x", a22Big)))
				requireOK(t, r)
				assert.EqualValues(t, 1, replyField(r, "n"))
			}()
			r := runWithoutLsid(t, other, "db", bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: tt.give}}}, {Key: "limit", Value: 1}}}}})
			requireOK(t, r)
			assert.EqualValues(t, 1, replyField(r, "n"))
			requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
			requireOK(t, runWithoutLsid(t, other, "db", bson.D{{Key: "ping", Value: 1}}))
			after := heapAlloc()
			assert.Less(t, int64(after)-int64(base), int64(a22Slack), "heap grew by %d bytes after the document was deleted", int64(after)-int64(base))
			// The record still answers a retry of the insert, which is not
			// applied again; an update's retry of it reports its _id.
			r = s.run("db", insert("small"))
			requireOK(t, r)
			assert.EqualValues(t, 1, replyField(r, "n"))
			assert.Empty(t, findAll(t, other, "c", nil), "a retry of the insert is not applied again")
			r = s.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: tt.give}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 1}}}}}, {Key: "upsert", Value: true}}}}, {Key: "txnNumber", Value: int64(1)}})
			requireOK(t, r)
			assert.Equal(t, bson.A{bson.D{{Key: "index", Value: int32(0)}, {Key: "_id", Value: tt.give}}}, replyField(r, "upserted"))
			runtime.KeepAlive(s)
		})
	}
}

// A session's record does not keep the command that started the session:
// it keeps its own copy of the lsid, not the big first command's decoded
// one (a slice of that command's one allocation of fields), for the
// session's lifetime (30 minutes idle) (finding
// mongotest-repeats-retains-big-command, its older relative).
func TestA22BigFirstCommandNotRetainedBySessionRecord(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
	base := heapAlloc()
	func() {
		big := strings.Repeat("x", a22Big)
		s.lsid = bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: []byte("fedcba9876543210")}}}
		requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}, {Key: "comment", Value: big}}))
	}()
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
	after := heapAlloc()
	assert.Less(t, int64(after)-int64(base), int64(a22Slack), "heap grew by %d bytes after the big command was answered", int64(after)-int64(base))
	r := runWithoutLsid(t, s, "admin", bson.D{{Key: "aggregate", Value: 1}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$listLocalSessions", Value: bson.D{}}}}}, {Key: "cursor", Value: bson.D{}}})
	requireOK(t, r)
	assert.Len(t, replyField(replyField(r, "cursor").(bson.D), "firstBatch"), 1, "the session exists")
	runtime.KeepAlive(s)
}

// A stored document keeps nothing else of the command that wrote it: not
// the other documents of its insert's batch once they are deleted, not a
// big field of the command's body. A command's documents decode into one
// allocation of fields (bsonkit.DecodeCommand), so a stored document that
// is a slice of it, or holds a value that is, keeps all of it (finding
// mongotest-stored-doc-keeps-its-command).
func TestA22StoredDocumentKeepsNothingElseOfItsCommand(t *testing.T) {
	big := func() string { return strings.Repeat("x", a22Big) }
	tests := []struct {
		name string
		give func(s *rawSession) // stores {_id: 2} with something big around it
	}{
		{"a batch-mate deleted", func(s *rawSession) {
			requireOK(t, s.runSeq("db", bson.D{{Key: "insert", Value: "c"}}, docSeq("documents", bson.D{{Key: "_id", Value: 1}, {Key: "pad", Value: big()}}, bson.D{{Key: "_id", Value: 2}})))
			requireOK(t, s.run("db", bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "limit", Value: 1}}}}}))
		}},
		{"the insert's comment", func(s *rawSession) {
			requireOK(t, s.runSeq("db", bson.D{{Key: "insert", Value: "c"}, {Key: "comment", Value: big()}}, docSeq("documents", bson.D{{Key: "_id", Value: 2}})))
		}},
		{"an update's comment, the stored value a document", func(s *rawSession) {
			requireOK(t, s.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: 1}}}}}}}, {Key: "upsert", Value: true}}}}, {Key: "comment", Value: big()}}))
		}},
		{"a replacement's comment", func(s *rawSession) {
			requireOK(t, s.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "upsert", Value: true}}}}, {Key: "comment", Value: big()}}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mongotest.Start(t)
			s := newRawSession(t, srv)
			requireOK(t, runWithoutLsid(t, s, "admin", bson.D{{Key: "setParameter", Value: 1}, {Key: "minSnapshotHistoryWindowInSeconds", Value: 0}}))
			requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
			base := heapAlloc()
			tt.give(s)
			requireOK(t, s.run("db", bson.D{{Key: "ping", Value: 1}}))
			after := heapAlloc()
			assert.Less(t, int64(after)-int64(base), int64(a22Slack), "heap grew by %d bytes after the command was answered", int64(after)-int64(base))
			docs := findAll(t, s, "c", nil)
			assert.Len(t, docs, 1)
			runtime.KeepAlive(s)
		})
	}
}
