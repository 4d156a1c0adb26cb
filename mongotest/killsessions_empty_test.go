package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// killSessions: [] kills every session when access control is off
// (kill_sessions_command.cpp: an empty list takes patternsForLoggedInUser,
// which without auth is makeKillAllSessionsByPattern, all sessions; the
// manual: "Specify an empty array [ ] to kill all sessions"). So the open
// transaction of another session is aborted and its cursors are closed.
// Finding mongotest-killsessions-empty-list.
func TestKillSessionsWithAnEmptyListKillsEverySession(t *testing.T) {
	srv := mongotest.Start(t)
	s, admin := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, admin.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}})))
	r := s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 1}})
	requireOK(t, r)
	id := replyField(replyField(r, "cursor").(bson.D), "id")
	requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 3}}), 1, true)))

	requireOK(t, admin.run("admin", bson.D{{Key: "killSessions", Value: bson.A{}}}))

	requireCode(t, s.run("db", bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}}), 43, "CursorNotFound")
	requireCode(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)), 251, "NoSuchTransaction", "TransientTransactionError")
	assert.Len(t, rawFindAll(t, admin, "c"), 2, "the killed transaction's insert is not stored")
}

// killAllSessions with a list of users kills only those users' sessions
// (kill_all_sessions_command.cpp: one pattern per user, matching the uid,
// the digest of that user's name). Sessions opened without authentication
// carry the digest of the empty user name, so killing the sessions of user
// "nobody"@"admin" leaves them alone: another session's transaction stays
