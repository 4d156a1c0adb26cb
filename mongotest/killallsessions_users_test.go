package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// killAllSessions with a list of users kills only those users' sessions
// (kill_all_sessions_command.cpp: one pattern per user, matching the uid,
// the digest of that user's name). Sessions opened without authentication
// carry the digest of the empty user name, so killing the sessions of user
// "nobody"@"admin" leaves them alone: another session's transaction stays
// open and commits. Finding mongotest-killallsessions-ignores-users.
func TestKillAllSessionsOfNamedUsersSparesOtherSessions(t *testing.T) {
	srv := mongotest.Start(t)
	s, admin := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, s.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 1, true)))
	requireOK(t, admin.run("admin", bson.D{{Key: "killAllSessions", Value: bson.A{bson.D{{Key: "user", Value: "nobody"}, {Key: "db", Value: "admin"}}}}}))
	requireOK(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)))
	assert.Len(t, rawFindAll(t, admin, "c"), 1)
}
