package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/mongotest"
)

// Faults of the orphan registry's write (tx_sessions), which a request's
// transaction makes before its first statement on a session not yet
// recorded: the request is answered with a truthful status (never 500,
// every 503 with Retry-After), and a 503 that says nothing was applied
// applied nothing.
func TestRegistryWriteFaultsAreAnsweredTruthfully(t *testing.T) {
	faults := map[string]bson.D{
		"not primary 10107": {{Key: "errorCode", Value: 10107}},
		"close connection":  {{Key: "closeConnection", Value: true}},
		"write concern 64":  {{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 64}, {Key: "errmsg", Value: "waiting for replication timed out"}, {Key: "errInfo", Value: bson.D{{Key: "wtimeout", Value: true}}}}}},
		"write concern 100": {{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: 100}, {Key: "errmsg", Value: "unsatisfiable"}}}},
		"block 3s":          {{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 3000}},
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			name := strings.ReplaceAll(name, " ", "_")
			uri := mongotestURI(t)
			ta := startApp(t, func(c *Config) { c.MongoURI, c.RequestTimeout = uri, 1*time.Second })
			ta = ta.on(t)
			ta.credit("alice", 1000)
			data := append(bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "namespace", Value: ta.db.Name() + ".tx_sessions"}}, fault...)
			require.NoError(t, ta.client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"}, {Key: "data", Value: data}}).Err())
			// Enough concurrent transactions that new sessions are needed.
			const n = 12
			res := make([]response, n)
			var wg sync.WaitGroup
			for i := range res {
				wg.Go(func() {
					res[i] = ta.do(req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"alice","to":"bob","amount":1}`, Key: "t-" + name + "-" + itoa(int64(i))})
				})
			}
			wg.Wait()
			// After a state-change code the driver waits for a heartbeat:
			// the fail point may not be reachable at once.
			_ = ta.client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}).Err()
			applied := 0
			statuses := map[string]int{}
			for i, r := range res {
				statuses[itoa(int64(r.Status))+" "+r.code()]++
				applied += ta.entriesWithKey("t-"+name+"-"+itoa(int64(i))) / 2
				switch {
				case r.Status == http.StatusCreated:
					assert.Equal(t, 2, ta.entriesWithKey("t-"+name+"-"+itoa(int64(i))), "201 but not applied")
				case r.Status == http.StatusServiceUnavailable:
					assert.Equal(t, "1", r.Header.Get("Retry-After"))
					if r.code() == "database_unavailable" {
						assert.Zero(t, ta.entriesWithKey("t-"+name+"-"+itoa(int64(i))), "database_unavailable but applied")
					}
				default:
					t.Errorf("request %d: %d %.200s", i, r.Status, r.Raw)
				}
			}
			t.Logf("%v", statuses)
		})
	}
}

// mongotestURI starts a mongotest server reachable by URI (the app then
// runs as against a replica set, with orphan reaping).
func mongotestURI(t *testing.T) string {
	return mongotest.Start(t).URI()
}

// The orphan registry unreachable (its writes held) does not keep the
// service from starting, and requests are answered in time.
func TestStartWithTheRegistryHeld(t *testing.T) {
	uri := mongotestURI(t)
	db := "txkit_reg_" + randomHex(4)
	c := testenv.Connect(t, uri)
	require.NoError(t, c.Database("admin").RunCommand(context.Background(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "find", "delete"}}, {Key: "namespace", Value: db + ".tx_sessions"}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 20000}}}}).Err())
	start := time.Now()
	ta := startApp(t, func(c *Config) { c.MongoURI, c.DB, c.RequestTimeout = uri, db, time.Second })
	t.Logf("started in %v", time.Since(start))
	assert.Less(t, time.Since(start), 5*time.Second)
	r := ta.do(req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"alice","to":"bob","amount":1}`, Key: "reg-1"})
	t.Logf("%d %s", r.Status, r.Raw)
	_ = c.Database("admin").RunCommand(context.Background(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}).Err()
}
