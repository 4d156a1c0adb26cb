package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
)

// failCommit makes the app's next commit fail as data says.
func (ta *testApp) failCommit(data bson.D) {
	ta.t.Helper()
	testenv.FailCommand(ta.t, ta.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: append(bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "appName", Value: "txkit"},
		}, data...)},
	})
}

// A commit whose write concern timed out has applied: the client must not
// hear "database unavailable" (which reads as "nothing happened") but that
// the outcome is unknown, and its repeat with the same key tells it.
func TestUnknownCommitIsAnsweredOutcomeUnknown(t *testing.T) {
	ta := startApp(t)
	ta.credit("alice", 100)
	ta.failCommit(bson.D{{Key: "writeConcernError", Value: bson.D{
		{Key: "code", Value: int32(50)}, {Key: "codeName", Value: "MaxTimeMSExpired"}, {Key: "errmsg", Value: "injected"},
	}}})

	// A transfer: debits and credits are not transactions (they take the
	// ledger's single-document path), transfers are.
	transfer := req{Method: "POST", Path: "/v1/transfers", Key: "d1", Body: `{"from":"alice","to":"zoe","amount":10}`}
	r := ta.do(transfer)
	if r.Status != http.StatusCreated {
		require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Raw)
		assert.Equal(t, "outcome_unknown", r.code())
		assert.Equal(t, "1", r.Header.Get("Retry-After"))
	}
	again := ta.mustStatus(http.StatusCreated, transfer)
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"), "the first request applied; its repeat replays it")
	assert.Equal(t, float64(90), ta.balance("alice")["balance"], "debited once")
}

// A commit held up by the database past the request's deadline is cut at
// the deadline: the client gets an answer that says the outcome is
// unknown, not an empty reply when the server's write timeout passes.
func TestBlockedCommitIsAnsweredNotDropped(t *testing.T) {
	if testenv.Real() {
		t.Skip("blocks a commit for 12 s")
	}
	ta := startApp(t, func(c *Config) { c.RequestTimeout = time.Second })
	ta.credit("bob", 100)
	ta.failCommit(bson.D{{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: int32(12000)}})

	// The bound is the point of the test: the commit is blocked for 12 s,
	// the answer is due 1 s + AnswerGrace after the request.
	ta.http.Timeout = 8 * time.Second
	r := ta.do(req{Method: "POST", Path: "/v1/transfers", Key: "b1", Body: `{"from":"bob","to":"zoe","amount":10}`})
	if r.Status == http.StatusCreated {
		// The runner's commit retry got through in time: applied, and said so.
		assert.Equal(t, float64(90), ta.balance("bob")["balance"])
		return
	}
	require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Raw)
	assert.Equal(t, "outcome_unknown", r.code())
	assert.NotEmpty(t, r.Header.Get("Retry-After"))
}

// A database that stops answering in the middle of a transaction (its
// abort hangs too) still gets the client an answer, at most AnswerGrace
// after the request's deadline, never an empty reply.
func TestFrozenDatabaseMidTransactionIsAnswered(t *testing.T) {
	if testenv.Real() {
		t.Skip("blocks the database for 12 s")
	}
	ta := startApp(t, func(c *Config) {
		c.RequestTimeout = time.Second
		c.ShutdownTimeout = 15 * time.Second // the handler's abort is still hung
	})
	ta.credit("carol", 100)
	testenv.FailCommand(t, ta.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 3}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"find", "abortTransaction"}},
			{Key: "appName", Value: "txkit"},
			{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: int32(12000)},
		}},
	})
	r := ta.mustStatus(http.StatusServiceUnavailable, req{Method: "POST", Path: "/v1/transfers", Key: "t1", Body: `{"from":"carol","to":"dave","amount":5}`})
	assert.Contains(t, []string{"outcome_unknown", "database_unavailable"}, r.code())
	assert.NotEmpty(t, r.Header.Get("Retry-After"))
}

// A handler whose abort hangs (the database stops answering mid-
// transaction) gives up the abort after the runner's clean-up timeout,
// which the app derives from -request-timeout, and answers the truth
// itself before the request's guard would: nothing was applied. The
// transaction it left open is killed by the runner's reaper once the
// database answers, so the account is not held until the server's
// transaction lifetime limit.
func TestAHandlerWhoseAbortHangsAnswersItselfInTime(t *testing.T) {
	if testenv.Real() {
		t.Skip("blocks the database for 12 s")
	}
	ta := startApp(t, func(c *Config) { c.RequestTimeout = time.Second })
	ta.credit("erin", 100)
	testenv.FailCommand(t, ta.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 2}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"find", "abortTransaction"}},
			{Key: "appName", Value: "txkit"},
			{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: int32(12000)},
		}},
	})
	ta.http.Timeout = 8 * time.Second
	r := ta.mustStatus(http.StatusServiceUnavailable, req{Method: "POST", Path: "/v1/transfers", Key: "e1", Body: `{"from":"erin","to":"fred","amount":5}`})
	assert.Equal(t, "database_unavailable", r.code(), "the handler's own answer (nothing applied), not the guard's outcome_unknown: %s", r.Raw)

	// The account is free again well before the lifetime limit (60 s).
	ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/transfers", Key: "e2", Body: `{"from":"erin","to":"fred","amount":7}`})
	assert.Equal(t, float64(93), ta.balance("erin")["balance"])
}
