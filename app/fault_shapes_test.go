package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
)

// more fault shapes on the writes of the debit (single-document
// claim + update) and transfer (transaction) routes: write concern errors
// with the RetryableWriteError label (the driver resends an applied
// write), other write concern codes, retryable error codes (not
// applied), twice in a row. One effect per key, every 2xx the same.
// (Shutdown codes 91 and 11600 leave the server unknown to the driver
// until its next heartbeat, up to 10 s, as on MongoDB: their answer is
// pinned by app/api's TestAServerThatCannotTakeWritesNowIsA503.)
func TestFaultShapesAreAnsweredByWhatHappened(t *testing.T) {
	if testenv.Real() {
		t.Skip("needs a test server")
	}
	wce := func(code int32, name string, labels ...string) bson.D {
		d := bson.D{{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: code}, {Key: "codeName", Value: name}, {Key: "errmsg", Value: "injected"}}}}
		if len(labels) > 0 {
			d = append(d, bson.E{Key: "errorLabels", Value: bson.A{labels[0]}})
		}
		return d
	}
	faults := []struct {
		name string
		give bson.D
	}{
		{"wce 64 retryable", wce(64, "WriteConcernFailed", "RetryableWriteError")},
		{"wce 100 unsatisfiable", wce(100, "UnsatisfiableWriteConcern")},
		{"error 189 primary stepped down", bson.D{{Key: "errorCode", Value: int32(189)}}},
		{"error 10107 not writable primary", bson.D{{Key: "errorCode", Value: int32(10107)}}},
		{"commit unknown label", bson.D{{Key: "errorCode", Value: int32(50)}, {Key: "errorLabels", Value: bson.A{"UnknownTransactionCommitResult"}}}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			ta := startApp(t)
			ta.credit("alice", 1000)
			fail := func(cmds ...any) {
				testenv.FailCommand(t, ta.client, bson.D{
					{Key: "configureFailPoint", Value: "failCommand"},
					{Key: "mode", Value: bson.D{{Key: "times", Value: 2}}},
					{Key: "data", Value: append(bson.D{{Key: "failCommands", Value: bson.A(cmds)}, {Key: "appName", Value: "txkit"}}, f.give...)},
				})
			}
			fail("insert", "update")
			ta.sendConcurrently(req{Method: "POST", Path: "/v1/accounts/alice/debits", Body: `{"amount":10}`, Key: "d-" + randomHex(4)}, http.StatusCreated)
			assert.Equal(t, float64(990), ta.balance("alice")["balance"])
			fail("insert", "update", "commitTransaction")
			ta.sendConcurrently(req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"alice","to":"bob","amount":10}`, Key: "t-" + randomHex(4)}, http.StatusCreated)
			assert.Equal(t, float64(980), ta.balance("alice")["balance"])
			fail("insert", "update", "commitTransaction")
			ta.sendConcurrently(req{Method: "POST", Path: "/v1/payments", Key: "p-" + randomHex(4),
				Body: `{"account":"dave","amount_minor":499,"currency":"USD","credits":500,"provider":"stripe","provider_ref":"pi_` + randomHex(4) + `"}`}, http.StatusCreated)
			assert.Equal(t, 1, ta.count("payments", bson.D{}))
			rep := ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/reconcile"}).Body
			assert.Equal(t, true, rep["ok"], "%v", rep)
		})
	}
}
