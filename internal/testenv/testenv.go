// Package testenv gives integration tests a MongoDB to talk to: a mongotest
// server started for the test, or the deployment at $MONGODB_URI (a replica
// set) when that is set, so the same tests run against both.
//
//	func TestInsert(t *testing.T) {
//		db := testenv.DB(t)                // fresh database, dropped afterwards
//		testenv.FailCommand(t, db.Client(), bson.D{ // fault injection, turned off afterwards
//			{Key: "configureFailPoint", Value: "failCommand"},
//			{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
//			{Key: "data", Value: bson.D{
//				{Key: "failCommands", Value: bson.A{"insert"}},
//				{Key: "errorCode", Value: 112},
//				{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
//			}},
//		})
//		// …
//	}
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// EnvURI names the environment variable that points tests at a real
// deployment instead of mongotest.
const EnvURI = "MONGODB_URI"

// URI returns $MONGODB_URI if set; otherwise it starts a mongotest server
// that lives until the test ends and returns its URI. Each call without
// $MONGODB_URI starts a new server; call it once and [Connect] several
// clients to the result to share one.
//
// The server also listens on loopback TCP, for code under test that
// connects by URI alone; clients made by [Connect] reach it in memory
// through its dialer instead.
func URI(tb testing.TB) string {
	tb.Helper()
	if uri := os.Getenv(EnvURI); uri != "" {
		return uri
	}
	srv := mongotest.Start(tb)
	uri := srv.URI()
	servers.Store(uri, srv)
	tb.Cleanup(func() { servers.Delete(uri) })
	return uri
}

// servers maps the URI of each mongotest server started by [URI] to the
// server, so that [Connect] can use its in-process dialer.
var servers sync.Map // string → *mongotest.Server

// Real reports whether tests run against $MONGODB_URI rather than mongotest.
func Real() bool { return os.Getenv(EnvURI) != "" }

// Client connects to [URI] and disconnects when the test ends.
func Client(tb testing.TB, opts ...*options.ClientOptions) *mongo.Client {
	tb.Helper()
	return Connect(tb, URI(tb), opts...)
}

// appNames remembers each test client's unique app name, which
// [FailCommand] uses to aim its faults at that client only.
var appNames sync.Map // *mongo.Client → string

// Connect connects to uri, pings, and disconnects when the test ends. A
// mongotest server started by [URI] is reached in memory (no TCP). The
// client gets a unique app name, so faults set with [FailCommand] hit it
// and no other client of a shared deployment. opts apply after uri.
func Connect(tb testing.TB, uri string, opts ...*options.ClientOptions) *mongo.Client {
	tb.Helper()
	app := "txkit-test-" + randomHex(4)
	first := options.Client().ApplyURI(uri).SetAppName(app)
	if srv, ok := servers.Load(uri); ok {
		// A fault a test injects (a closed connection, ShutdownInProgress)
		// makes the driver wait for its monitor's next check before it
		// selects the server again; the server's topology did not change,
		// so, as on MongoDB, that check can take the whole heartbeat. The
		// shortest heartbeat keeps a test's recovery under a second
		// instead of 10 s, which under load outran server selection.
		first.SetHeartbeatInterval(500 * time.Millisecond)
		first.SetDialer(srv.(*mongotest.Server).Dialer())
	}
	all := append([]*options.ClientOptions{first}, opts...)
	client, err := mongo.Connect(all...)
	if err != nil {
		tb.Fatalf("testenv: connect to %s: %v", uri, err)
	}
	tb.Cleanup(func() {
		appNames.Delete(client)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Disconnect(ctx); err != nil {
			tb.Errorf("testenv: disconnect: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Ping(ctx, nil); err != nil {
		tb.Fatalf("testenv: ping %s: %v", uri, err)
	}
	appNames.Store(client, app)
	return client
}

// AppName returns the app name [Connect] gave client ("" for another
// client): what the server reports as its appName, in $currentOp say.
func AppName(client *mongo.Client) string {
	app, _ := appNames.Load(client)
	s, _ := app.(string)
	return s
}

// DB returns a new database with a unique name on a new [Client]. Against
// $MONGODB_URI it is dropped when the test ends, after the client has
// disconnected: ending its sessions aborts any transaction a test left
// open (a failed commit is never aborted by the driver), which a drop
// would otherwise wait for. A mongotest server ends with the test anyway.
func DB(tb testing.TB) *mongo.Database {
	tb.Helper()
	uri := URI(tb)
	name := dbName(tb.Name())
	if Real() {
		tb.Cleanup(func() { dropDatabase(tb, uri, name) }) // runs after the client's cleanup
	}
	return Connect(tb, uri).Database(name)
}

// NewDB returns a database with a unique name on client, dropped when the
// test ends if it lives on $MONGODB_URI.
func NewDB(tb testing.TB, client *mongo.Client) *mongo.Database {
	tb.Helper()
	db := client.Database(dbName(tb.Name()))
	if Real() {
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := db.Drop(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
				tb.Errorf("testenv: drop database %s: %v", db.Name(), err)
			}
		})
	}
	return db
}

// dropDatabase drops name on a client of its own.
func dropDatabase(tb testing.TB, uri, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		tb.Errorf("testenv: connect to drop %s: %v", name, err)
		return
	}
	defer func() { _ = client.Disconnect(ctx) }()
	if err := client.Database(name).Drop(ctx); err != nil {
		tb.Errorf("testenv: drop database %s: %v", name, err)
	}
}

// codeCommandNotFound is MongoDB's CommandNotFound, the answer of a
// server started without test commands to configureFailPoint.
const codeCommandNotFound = 59

// FailCommand runs fp, a configureFailPoint command such as
// {configureFailPoint: "failCommand", mode: {times: 1}, data: {…}}, on
// client's admin database, and turns the fail point off when the test ends.
// For failCommand, data.appName is set to client's app name unless fp sets
// it, so that other clients of a shared deployment are spared. The test is
// skipped if the server has no configureFailPoint (a MongoDB started
// without enableTestCommands).
func FailCommand(tb testing.TB, client *mongo.Client, fp bson.D) {
	tb.Helper()
	if len(fp) == 0 || fp[0].Key != "configureFailPoint" {
		tb.Fatalf("testenv: FailCommand needs a configureFailPoint command, got %v", fp)
	}
	name := fp[0].Value
	if app, ok := appNames.Load(client); ok && name == "failCommand" {
		fp = withAppName(fp, app.(string))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := client.Database("admin").RunCommand(ctx, fp).Err()
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == codeCommandNotFound {
		tb.Skip("testenv: server lacks configureFailPoint")
	}
	if err != nil {
		tb.Fatalf("testenv: configureFailPoint %v: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		off := bson.D{{Key: "configureFailPoint", Value: name}, {Key: "mode", Value: "off"}}
		// The fail point may have cleared the client's pool (a
		// shutdown code, a closed connection) just before: turning it
		// off is idempotent, so try again until the clean-up's bound.
		for {
			err := client.Database("admin").RunCommand(ctx, off).Err()
			if err == nil || errors.Is(err, mongo.ErrClientDisconnected) {
				return
			}
			select {
			case <-ctx.Done():
				tb.Errorf("testenv: turn off fail point %v: %v", name, err)
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// withAppName returns fp with data.appName = app, unless data sets one.
func withAppName(fp bson.D, app string) bson.D {
	out := make(bson.D, 0, len(fp)+1)
	found := false
	for _, e := range fp {
		if e.Key == "data" {
			if data, ok := e.Value.(bson.D); ok {
				found = true
				hasApp := false
				for _, d := range data {
					hasApp = hasApp || d.Key == "appName"
				}
				if !hasApp {
					data = append(append(bson.D{}, data...), bson.E{Key: "appName", Value: app})
				}
				e.Value = data
			}
		}
		out = append(out, e)
	}
	if !found {
		out = append(out, bson.E{Key: "data", Value: bson.D{{Key: "appName", Value: app}}})
	}
	return out
}

// dbName turns a test name into a valid, unique database name (at most 63
// bytes, no "/\. \"$*<>:|?").
func dbName(test string) string {
	var b strings.Builder
	for _, r := range test {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "t_" + randomHex(6) + "_" + name
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FailTransient makes the next times runs of cmd by client fail with a
// WriteConflict labelled TransientTransactionError, as a conflicting
// transaction would: the fault a transaction runner must retry.
func FailTransient(tb testing.TB, client *mongo.Client, cmd string, times int) {
	tb.Helper()
	FailCommand(tb, client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: times}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{cmd}},
			{Key: "errorCode", Value: 112}, // WriteConflict
			{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
		}},
	})
}
