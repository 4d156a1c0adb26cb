package mongotest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// Fail points evaluated as mongod evaluates them (src/mongo/db/commands.cpp,
// src/mongo/util/fail_point.cpp). Filed by attack15b.

// mongod attaches the lsid to the operation before it evaluates failCommand
// (service_entry_point_common.cpp), the block sleeps interruptibly, and
// killSessions kills every operation of the session: the blocked insert
// fails with Interrupted and inserts nothing.
func TestKillSessionsInterruptsACommandBlockedByAFailPoint(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 3000},
	})
	reply := runAsync(s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}))
	killer := newRandomSession(t, srv)
	kill := bson.D{{Key: "killSessions", Value: bson.A{s.lsid}}}
	var r bson.D
	for r == nil {
		// Kill until the insert answers: some kill lands while it blocks.
		requireOK(t, runWithoutLsid(t, killer, "admin", kill))
		select {
		case r = <-reply:
		case <-time.After(50 * time.Millisecond):
		}
	}
	requireCode(t, r, 11601, "Interrupted")
	assert.Empty(t, rawFindAll(t, killer, "c"), "the killed insert was applied")
}

// failAllCommands fires on every command but configureFailPoint, with or
// without failCommands; threadName limits the fail point to one
// connection ("conn<connectionId>", the client's desc on mongod).
func TestFailCommandFailAllCommandsAndThreadName(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":{"times":2},
		"data":{"failAllCommands":true,"errorCode":2}}`)))
	t.Cleanup(func() { _ = srv.FailCommand("off", nil) })
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}), 2, "BadValue")
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "count", Value: "c"}}), 2, "BadValue")
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))

	requireOK(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":"alwaysOn",
		"data":{"failAllCommands":true,"errorCode":2}}`)))
	requireOK(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":"off"}`)))

	hello := runWithoutLsid(t, s, "admin", bson.D{{Key: "hello", Value: 1}})
	id, _ := replyField(hello, "connectionId").(int64)
	requireOK(t, runWithoutLsid(t, s, "admin", bson.D{{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: 2},
			{Key: "threadName", Value: fmt.Sprintf("conn%d", id+1000)}}}}))
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
	requireOK(t, runWithoutLsid(t, s, "admin", bson.D{{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: 2},
			{Key: "threadName", Value: fmt.Sprintf("conn%d", id)}}}}))
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}), 2, "BadValue")
}

// FailPoint::parseBSON (src/mongo/util/fail_point.cpp) reads times and
// skip with bsonExtractIntegerField: a fractional or too large one is
// BadValue, a non-number TypeMismatch; a missing mode is IllegalOperation.
func TestFailPointModeCountsMustBeWholeNumbers(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	t.Cleanup(func() { _ = srv.FailCommand("off", nil) })
	for _, mode := range []string{`{"times":1.5}`, `{"times":3000000000}`, `{"skip":0.5}`} {
		requireCode(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":`+mode+`,
			"data":{"failCommands":["ping"],"errorCode":2}}`)), 2, "BadValue")
	}
	requireCode(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":{"times":"1"},
		"data":{"failCommands":["ping"],"errorCode":2}}`)), 14, "TypeMismatch")
	requireCode(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand",
		"data":{"failCommands":["ping"],"errorCode":2}}`)), 20, "IllegalOperation")
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
}

// configureFailPoint answers count: the times the fail point was entered
// so far (FailPoint::setMode returns _timesEntered, never reset), which
// waitForFailPoint-style tests build on.
func TestConfigureFailPointCountsTimesEntered(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	t.Cleanup(func() { _ = srv.FailCommand("off", nil) })
	configure := fromJSON(t, `{"configureFailPoint":"failCommand","mode":{"times":2},"data":{"failCommands":["ping"],"errorCode":2}}`)
	r := runWithoutLsid(t, s, "admin", configure)
	requireOK(t, r)
	assert.EqualValues(t, 0, replyField(r, "count"))
	for range 3 {
		runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}})
	}
	r = runWithoutLsid(t, s, "admin", configure)
	requireOK(t, r)
	assert.EqualValues(t, 2, replyField(r, "count"))
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}), 2, "BadValue")
	r = runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":"off"}`))
	requireOK(t, r)
	assert.EqualValues(t, 3, replyField(r, "count"))
}

// evaluateFailCommandFailPoint (src/mongo/db/commands.cpp): blockConnection
// without an integer blockTimeMS fails the command with InvalidOptions
// "must specify 'blockTimeMS' when 'blockConnection' is true", a negative
// one with "'blockTimeMS' must be non-negative".
func TestFailCommandBlockConnectionRequiresBlockTimeMS(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	t.Cleanup(func() { _ = srv.FailCommand("off", nil) })
	for _, data := range []string{`{"failCommands":["ping"],"blockConnection":true}`, `{"failCommands":["ping"],"blockConnection":true,"blockTimeMS":-5}`} {
		requireOK(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":{"times":1},"data":`+data+`}`)))
		requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}), 72, "InvalidOptions")
		requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
	}
}

// errorExtraInfo is not implemented: refused when configured, never
// accepted and ignored.
func TestFailCommandErrorExtraInfoIsRefused(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireCode(t, runWithoutLsid(t, s, "admin", fromJSON(t, `{"configureFailPoint":"failCommand","mode":"alwaysOn",
		"data":{"failCommands":["ping"],"errorCode":2,"errorExtraInfo":{"a":1}}}`)), 2, "BadValue")
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}}))
}

// failCommand's writeConcernError is applied where mongod waits for write
// concern (RunCommandAndWaitForWriteConcern::_waitForWriteConcern in
// src/mongo/db/service_entry_point_common.cpp), which only commands that
// support a write concern reach: a find never carries it and does not
// consume the activation. A command that supports it and fails while
// running carries it too (_handleError waits for write concern). The
// document is appended verbatim. Filed by attack15b.
func TestFailCommandWriteConcernErrorOnlyWhereWriteConcernIsWaitedFor(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"find", "insert"}},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 100}, {Key: "errmsg", Value: "x"}}},
	})
	r := runWithoutLsid(t, s, "db", bson.D{{Key: "find", Value: "c"}})
	requireOK(t, r)
	assert.Nil(t, replyField(r, "writeConcernError"), "a find has no write concern: %v", r)
	r = runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}))
	requireOK(t, r)
	assert.Equal(t, bson.D{{Key: "code", Value: int32(100)}, {Key: "errmsg", Value: "x"}}, replyField(r, "writeConcernError"),
		"the find left the activation to the insert, which gets the document verbatim")

	requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"create":"v","viewOn":"c","pipeline":[]}`)))
	failCommand(t, srv, bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 91}, {Key: "errmsg", Value: "x"}}},
	})
	r = runWithoutLsid(t, s, "db", insertCmd("v", bson.D{{Key: "_id", Value: 1}}))
	assert.EqualValues(t, 0, replyField(r, "ok"), "an insert into a view fails: %v", r)
	assert.NotNil(t, replyField(r, "writeConcernError"), "the failed insert waited for write concern: %v", r)
}
