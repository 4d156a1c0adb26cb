package mongotest

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// A command that looked its session up just before the session expired
// does not run on the ended record: it runs on a new session of the same
// lsid, which the server then knows. (killSessions ends no session: the
// session keeps its history, see TestRetryableWriteHistorySurvivesKillSessions.)
func TestACommandOnAJustExpiredSessionRunsOnANewSession(t *testing.T) {
	s, nc := startServer(t, nil)
	lsid := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}
	insert := func(nc net.Conn, reqID int32, id int) {
		reply := roundTrip(t, nc, reqID, bson.D{{Key: "insert", Value: "c"},
			{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: id}}}},
			{Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: int64(id)}, {Key: "$db", Value: "db"}})
		require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), reply.String())
	}
	insert(nc, 1, 1)
	ss := s.core.sessions
	old, err := ss.get(lsid)
	require.NoError(t, err)

	// The session is busy; a second command looks it up and waits for it.
	old.mu.Lock()
	other, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	require.NoError(t, other.SetDeadline(time.Now().Add(10*time.Second)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		insert(other, 2, 2)
	}()
	time.Sleep(100 * time.Millisecond) // let it wait on the session (if not, it finds no session: the test passes vacuously)
	// Expiry: ended under the session's lock and forgotten.
	ss.mu.Lock()
	delete(ss.m, old.key)
	ss.mu.Unlock()
	require.True(t, old.endIdle(time.Now().Add(time.Hour), time.Minute))
	ss.release(old, "session expired")
	old.mu.Unlock()
	<-done

	require.Equal(t, 1, ss.count(), "the command's session is not known to the server: it ran on the expired record")
	now, err := ss.get(lsid)
	require.NoError(t, err)
	require.NotSame(t, old, now)
	now.mu.Lock()
	defer now.mu.Unlock()
	require.EqualValues(t, 2, now.txnNumber, "the retryable write is recorded on the live session")
}

// A retryable write remembers each statement's outcome, listed while few,
// mapped beyond: both ways a retry finds exactly the statements that ran.
func TestRetryRecordRemembersEachStatement(t *testing.T) {
	for _, n := range []int{1, maxListedStmts, 4 * maxListedStmts} {
		r := &retryRecord{}
		for i := n - 1; i >= 0; i -= 2 { // out of order, every other one
			r.record(i, i*10)
		}
		for i := range n {
			got, ok := r.done(i)
			ran := (n-1-i)%2 == 0
			require.Equal(t, ran, ok, "n=%d stmt %d", n, i)
			if ran {
				require.Equal(t, i*10, got, "n=%d stmt %d", n, i)
			}
		}
		r.record(n-1, "again")
		got, _ := r.done(n - 1)
		require.Equal(t, "again", got)
	}
	var none *retryRecord
	_, ok := none.done(0)
	require.False(t, ok)
}

// endSessions closes nothing at once: MongoDB's session cache only records
// the ids (LogicalSessionCacheImpl::endSessions) and kills the ended
// sessions' cursors at its next refresh, logicalSessionRefreshMillis (5
// minutes) later. A getMore in between still reads the cursor; after the
// refresh it is CursorNotFound (43).
func TestEndSessionsClosesTheCursorsAtTheNextRefresh(t *testing.T) {
	s, nc := startServer(t, nil)
	lsid := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: []byte("ending-session-1")}}}
	run := func(reqID int32, cmd bson.D) bsoncore.Document {
		return roundTrip(t, nc, reqID, append(cmd, bson.E{Key: "lsid", Value: lsid}, bson.E{Key: "$db", Value: "db"}))
	}
	reply := run(1, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{
		bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "_id", Value: 3}},
	}}})
	require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), reply.String())
	reply = run(2, bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 1}})
	require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), reply.String())
	id := reply.Lookup("cursor", "id").Int64()
	getMore := bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: 1}}

	reply = run(3, bson.D{{Key: "endSessions", Value: bson.A{lsid}}})
	require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), reply.String())
	reply = run(4, getMore)
	require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), "the cursor was closed before the refresh: %s", reply.String())

	s.core.housekeep(time.Now().Add(logicalSessionRefresh))
	reply = run(5, getMore)
	require.EqualValues(t, 0, reply.Lookup("ok").AsInt64(), reply.String())
	require.EqualValues(t, 43, reply.Lookup("code").AsInt64(), reply.String())
}
