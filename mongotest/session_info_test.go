package mongotest_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

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
