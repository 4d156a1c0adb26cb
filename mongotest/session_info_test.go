package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// src/mongo/db/initialize_operation_session_info.cpp refuses, before the
// command runs: startTransaction without autocommit ("'startTransaction'
// field requires 'autocommit' field to also be specified"),
// startTransaction: false ("Specifying startTransaction=false is not
// allowed.") and a negative txnNumber ("Transaction number cannot be
// negative"), all InvalidOptions (72). Filed by attack15b: the first ran as
// a retryable write, applied at once while the client believed it had
// started a transaction it could still abort.
func TestSessionInfoStartTransactionRequiresAutocommitFalse(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)

	cmd := append(insertCmd("c", bson.D{{Key: "_id", Value: 1}}),
		bson.E{Key: "txnNumber", Value: int64(1)}, bson.E{Key: "startTransaction", Value: true})
	requireCode(t, s.run("db", cmd), 72, "InvalidOptions")
	assert.Empty(t, rawFindAll(t, s, "c"), "a refused command writes nothing")

	cmd = append(insertCmd("c", bson.D{{Key: "_id", Value: 2}}),
		bson.E{Key: "txnNumber", Value: int64(2)}, bson.E{Key: "autocommit", Value: false},
		bson.E{Key: "startTransaction", Value: false})
	requireCode(t, s.run("db", cmd), 72, "InvalidOptions")

	cmd = append(insertCmd("c", bson.D{{Key: "_id", Value: 3}}), bson.E{Key: "txnNumber", Value: int64(-1)})
	requireCode(t, newRandomSession(t, srv).run("db", cmd), 72, "InvalidOptions")
	assert.Empty(t, rawFindAll(t, s, "c"))
}

// The session fields are checked before failCommand is evaluated: a
// malformed one is refused without consuming the fail point's activation.
func TestSessionInfoCheckedBeforeTheFailPoint(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 2},
	})
	cmd := append(insertCmd("c", bson.D{{Key: "_id", Value: 1}}),
		bson.E{Key: "txnNumber", Value: int64(1)}, bson.E{Key: "startTransaction", Value: true})
	requireCode(t, s.run("db", cmd), 72, "InvalidOptions")
	requireCode(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})), 2, "BadValue")
}
