package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"go.uber.org/fx"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/mongotest"
	"github.com/txkit/txkit/tx"
)

// A restart right after kill -9 finds the killed process's transactions
// still open on the server (until its transaction lifetime). Start must
// not wait for them: the schema exists, so there is nothing to build.
func TestRestartDoesNotWaitForAKilledProcessesTransactions(t *testing.T) {
	if testenv.Real() {
		t.Skip("needs a server whose transaction lifetime the test sets")
	}
	srv := mongotest.Start(t, mongotest.WithTransactionLifetimeLimit(time.Hour))
	db := "txkit_restart_" + randomHex(4)
	first := startApp(t, func(c *Config) { c.MongoURI, c.DB = srv.URI(), db })
	first.credit("kim", 100)
	first.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "p1",
		Body: `{"account":"kim","amount_minor":100,"currency":"USD","credits":100,"provider":"psp","provider_ref":"r1"}`})
	first.app.RequireStop()

	// The "killed" process: transactions that wrote to every collection
	// and will never commit or abort.
	killed, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	ctx := context.Background()
	names, err := killed.Database(db).ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for _, name := range names {
		sess, err := killed.StartSession()
		require.NoError(t, err)
		require.NoError(t, sess.StartTransaction())
		sctx := mongo.NewSessionContext(ctx, sess)
		_, err = killed.Database(db).Collection(name).InsertOne(sctx, bson.D{{Key: "_id", Value: "left-behind-" + name}, {Key: "created_at", Value: time.Now()}})
		require.NoError(t, err, name)
	}

	second := startApp(t, func(c *Config) { c.MongoURI, c.DB = srv.URI(), db })
	require.Equal(t, float64(100), second.balance("kim")["balance"])
	_ = killed.Disconnect(ctx) // ends the sessions, as the server's reaper would
}

// envKilledChild, set, makes the test binary the service process that
// TestARestartAfterKill9WritesToTheAccountTheKilledProcessHeld kills: its
// value is the Config as JSON.
const envKilledChild = "TXKIT_TEST_KILLED_CHILD"

// killedChild is the configuration the child process runs the service
// with.
type killedChild struct {
	URI, DB, Instance string
}

// runKilledChild is the child process's main: it starts the service and,
// through the service's own runner and ledger, opens a transaction that
// credits "kim" 50, says "ready" on stdout, and blocks until killed.
func runKilledChild(spec string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "killed child:", err)
		os.Exit(2)
	}
	var c killedChild
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fail(err)
	}
	cfg := childConfig(c)
	var (
		runner *tx.Runner
		ledger *credits.Service
	)
	app := fx.New(appOptions(cfg), fx.NopLogger, fx.Populate(&runner, &ledger))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		fail(err)
	}
	err := runner.Run(context.Background(), func(ctx context.Context) error {
		if _, err := ledger.Add(ctx, "kim", 50); err != nil {
			return err
		}
		fmt.Println("ready")
		select {} // until SIGKILL
	})
	fail(err)
}

func childConfig(c killedChild) Config {
	return Config{
		Addr: "127.0.0.1:0", MongoURI: c.URI, DB: c.DB, Instance: c.Instance,
		APIToken: testToken, WebhookSecret: testSecret, LogFormat: "json",
		ShutdownTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second, MongoTimeout: 5 * time.Second,
	}
}

// A process killed with kill -9 in the middle of a transaction leaves it
// open on the server, holding the account. Restarted under the same
// instance name, the service kills it at start and can write to the
// account at once; the killed process's credit is not applied.
func TestARestartAfterKill9WritesToTheAccountTheKilledProcessHeld(t *testing.T) {
	uri := os.Getenv(testenv.EnvURI)
	if uri == "" {
		// A lifetime limit far beyond the test: only the restart frees it.
		uri = mongotest.Start(t, mongotest.WithTransactionLifetimeLimit(time.Hour)).URI()
	}
	db := "txkit_kill9_" + randomHex(4)
	first := startApp(t, func(c *Config) { c.MongoURI, c.DB, c.Instance = uri, db, "pod-0" })
	first.credit("kim", 100)
	first.app.RequireStop()

	spec, err := json.Marshal(killedChild{URI: uri, DB: db, Instance: "pod-0"})
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envKilledChild+"="+string(spec))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ready := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		s.Scan()
		ready <- s.Text()
		for s.Scan() { // until the pipe closes
		}
	}()
	select {
	case line := <-ready:
		require.Equal(t, "ready", line, "the killed process did not open its transaction")
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the killed process did not open its transaction in time")
	}
	require.NoError(t, cmd.Process.Kill()) // SIGKILL
	_ = cmd.Wait()

	// The request timeout (5 s) is far below the lifetime limit: a 201
	// means the killed process's transaction was killed.
	second := startApp(t, func(c *Config) {
		c.MongoURI, c.DB, c.Instance, c.RequestTimeout = uri, db, "pod-0", 5*time.Second
	})
	second.credit("kim", 7)
	require.Equal(t, float64(107), second.balance("kim")["balance"], "the killed process's credit of 50 was applied")
}
