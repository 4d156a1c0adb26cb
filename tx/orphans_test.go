package tx_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/mongotest"
	"github.com/txkit/txkit/tx"
)

// envOrphanChild, set, makes the test binary the process that the orphan
// tests kill (see TestMain): its value is an orphanChild as JSON.
const envOrphanChild = "TXKIT_TEST_ORPHAN_CHILD"

// orphanChild is what the child process does: it connects to URI over
// TCP, starts a transaction that writes document 1 of DB's "docs" and
// inserts document 2, says "ready" on stdout, and blocks until killed.
type orphanChild struct {
	URI, DB  string
	Reaping  bool // with WithOrphanReaping
	Instance string
	Lease    time.Duration
}

// runOrphanChild is the child process's main.
func runOrphanChild(spec string) {
	var c orphanChild
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintln(os.Stderr, "orphan child:", err)
		os.Exit(2)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(c.URI))
	if err != nil {
		fmt.Fprintln(os.Stderr, "orphan child:", err)
		os.Exit(2)
	}
	db := client.Database(c.DB)
	var opts []tx.Option
	if c.Reaping {
		opts = append(opts, tx.WithOrphanReaping(tx.OrphanReaping{Collection: db.Collection("sessions"), Instance: c.Instance, Lease: c.Lease}))
	}
	runner := tx.NewRunner(client, opts...)
	err = runner.Run(context.Background(), func(ctx context.Context) error {
		coll := db.Collection("docs")
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "orphan"}}}}); err != nil {
			return err
		}
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "orphan"}}); err != nil {
			return err
		}
		fmt.Println("ready")
		select {} // until SIGKILL
	})
	fmt.Fprintln(os.Stderr, "orphan child:", err)
	os.Exit(2)
}

// orphanServer returns the URI of a server whose transaction lifetime
// limit is far longer than the tests, so that it is not what frees a
// document, and a client of it.
func orphanServer(t *testing.T) (string, *mongo.Client) {
	t.Helper()
	uri := os.Getenv(testenv.EnvURI)
	if uri == "" {
		uri = mongotest.Start(t, mongotest.WithTransactionLifetimeLimit(time.Hour)).URI()
	}
	return uri, testenv.Connect(t, uri)
}

// killAfterReady runs c in a child process, waits until its transaction
// holds document 1, and kills it with SIGKILL.
func killAfterReady(t *testing.T, c orphanChild) {
	t.Helper()
	spec, err := json.Marshal(c)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envOrphanChild+"="+string(spec))
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
		require.Equal(t, "ready", line, "the child process did not open its transaction")
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the child process did not open its transaction in time")
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait() // "signal: killed"
}

// writeDoc1 writes document 1 in a transaction bounded by within.
func writeDoc1(runner *tx.Runner, coll *mongo.Collection, within time.Duration) error {
	return runner.Run(context.Background(), func(ctx context.Context) error {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "after"}}}})
		return err
	}, tx.WithTimeout(within))
}

func reapingRunner(t *testing.T, client *mongo.Client, db *mongo.Database, instance string, lease time.Duration) *tx.Runner {
	t.Helper()
	runner := tx.NewRunner(client, tx.WithOrphanReaping(tx.OrphanReaping{Collection: db.Collection("sessions"), Instance: instance, Lease: lease}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, runner.Close(ctx))
	})
	return runner
}

func TestATransactionOfAKilledProcessIsKilled(t *testing.T) {
	tests := []struct {
		name      string
		reaping   bool          // the killed process records its sessions
		lease     time.Duration // the killed process's lease
		instance  string        // the next process's instance name
		wantFreed bool
	}{
		// A lease of an hour: only the restart's own sweep can free it.
		{name: "by its restart under the same instance name, at once", reaping: true, lease: time.Hour, instance: "pod-0", wantFreed: true},
		{name: "by another process once its lease expires", reaping: true, lease: time.Second, instance: "pod-1", wantFreed: true},
		{name: "not at all without orphan reaping", reaping: false, lease: time.Second, instance: "pod-0", wantFreed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uri, client := orphanServer(t)
			db := testenv.NewDB(t, client)
			docs := db.Collection("docs")
			_, err := docs.InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "seed"}})
			require.NoError(t, err)

			killAfterReady(t, orphanChild{URI: uri, DB: db.Name(), Reaping: tt.reaping, Instance: "pod-0", Lease: tt.lease})

			runner := reapingRunner(t, client, db, tt.instance, time.Second)
			if !tt.wantFreed {
				// Far beyond what frees it in the other cases, far below
				// the transaction lifetime limit.
				require.Error(t, writeDoc1(runner, docs, 5*time.Second), "the killed process's transaction was freed")
				var got struct{ V string }
				require.NoError(t, docs.FindOne(context.Background(), bson.D{{Key: "_id", Value: 1}}).Decode(&got))
				assert.Equal(t, "seed", got.V)
				return
			}
			require.NoError(t, writeDoc1(runner, docs, 20*time.Second), "the killed process's transaction still holds the document")
			var got struct{ V string }
			require.NoError(t, docs.FindOne(context.Background(), bson.D{{Key: "_id", Value: 1}}).Decode(&got))
			assert.Equal(t, "after", got.V)
			n, err := docs.CountDocuments(context.Background(), bson.D{{Key: "_id", Value: 2}})
			require.NoError(t, err)
			assert.Zero(t, n, "the killed process's insert was committed")
		})
	}
}

// A sweep never takes a live process for dead: a transaction that lasts
// several leases while another process sweeps commits on its first
// attempt.
func TestALiveProcessesTransactionsAreNotKilledByAnothersSweep(t *testing.T) {
	uri := testenv.URI(t)
	// Renewed every 2/3 s: a renewal would have to be late by 2 s, three
	// times in a row, for the other process to take this one for dead.
	const lease = 2 * time.Second
	live := testenv.Connect(t, uri)
	db := testenv.NewDB(t, live)
	docs := db.Collection("docs")
	require.NoError(t, db.CreateCollection(context.Background(), "docs"))
	other := testenv.Connect(t, uri)
	_ = reapingRunner(t, other, other.Database(db.Name()), "pod-1", lease)
	runner := reapingRunner(t, live, db, "pod-0", lease)

	var attempts atomic.Int32
	err := runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		attempts.Add(1)
		if _, err := docs.InsertOne(ctx, bson.D{{Key: "_id", Value: "live"}}); err != nil {
			return err
		}
		time.Sleep(3 * lease) // the other process sweeps about nine times
		_, err := docs.InsertOne(ctx, bson.D{{Key: "_id", Value: "still live"}})
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, int32(1), attempts.Load(), "the transaction was killed and run again")
	n, err := docs.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
}

// A transaction whose session cannot be recorded does not start: a
// process killed during it would leave it unknown to the others.
func TestATransactionWhoseSessionCannotBeRecordedDoesNotStart(t *testing.T) {
	e := newEnv(t)
	runner := reapingRunner(t, e.client, e.db, "pod-0", time.Minute)
	// The registry is written with update; the transaction inserts.
	e.failCommand(t, -1, failData("update", 91)) // ShutdownInProgress
	err := runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		return err
	})
	require.ErrorContains(t, err, "record the session for orphan reaping")
	assert.Zero(t, e.count(t, nil))
}

// Close of a runner that left nothing open removes its registry
// documents: nobody needs to kill its sessions.
func TestCloseRemovesTheProcessesRegistryDocuments(t *testing.T) {
	e := newEnv(t)
	sessions := e.db.Collection("sessions")
	runner := tx.NewRunner(e.client, tx.WithOrphanReaping(tx.OrphanReaping{Collection: sessions, Instance: "pod-0"}))
	require.NoError(t, runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		return err
	}))
	n, err := sessions.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "a lease and a session")
	require.NoError(t, runner.Close(ctxTimeout(t)))
	n, err = sessions.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, int64(1), e.count(t, nil))
}

// Close stops the registry's goroutine without cutting the write it has
// in flight: a lease renewal cut by Close may still reach the server
// after Close removed the lease, and create it again (flake of
// TestCloseRemovesTheProcessesRegistryDocuments in CI: one document left).
// Here the goroutine's first renewal is held by the database while
// Close runs.
func TestCloseLeavesNoLeaseBehindWhenARenewalIsInFlight(t *testing.T) {
	e := newEnv(t)
	sessions := e.db.Collection("sessions")
	e.failCommand(t, 1, bson.D{
		{Key: "failCommands", Value: bson.A{"update"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 1000},
	})
	runner := tx.NewRunner(e.client, tx.WithOrphanReaping(tx.OrphanReaping{Collection: sessions, Instance: "pod-0"}))
	require.Eventually(t, func() bool { return len(e.mon.started("update")) > 0 }, 10*time.Second, time.Millisecond, "the renewal is sent")
	time.Sleep(100 * time.Millisecond) // and held by the database
	require.NoError(t, runner.Close(ctxTimeout(t)))
	time.Sleep(1500 * time.Millisecond) // past the hold
	n, err := sessions.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n, "the registry's documents after Close")
}
