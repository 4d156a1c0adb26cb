package mongotest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// currentOpSpecs are the option combinations the pollers cycle through.
var currentOpSpecs = []bson.D{
	{},
	{{Key: "allUsers", Value: true}},
	{{Key: "idleConnections", Value: true}},
	{{Key: "idleSessions", Value: false}},
	{{Key: "allUsers", Value: true}, {Key: "idleConnections", Value: true}, {Key: "idleSessions", Value: true}, {Key: "localOps", Value: true}, {Key: "backtrace", Value: true}},
	{{Key: "truncateOps", Value: false}, {Key: "idleCursors", Value: false}},
}

// currentOpRests are the stages the pollers put after $currentOp.
var currentOpRests = [][]bson.D{
	nil,
	{{{Key: "$match", Value: bson.D{{Key: "type", Value: "idleSession"}}}}},
	{{{Key: "$match", Value: bson.D{{Key: "active", Value: true}}}}, {{Key: "$project", Value: bson.D{{Key: "opid", Value: 1}, {Key: "command", Value: 1}, {Key: "transaction", Value: 1}}}}},
	{{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$op"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}}, {{Key: "$sort", Value: bson.D{{Key: "n", Value: -1}}}}},
	{{{Key: "$sort", Value: bson.D{{Key: "transaction.timeOpenMicros", Value: -1}}}}, {{Key: "$limit", Value: 5}}},
}

// Under fault injection (fail point blocks and closed connections,
// killSessions, killAllSessions, session ends, client disconnects, the
// lifetime reaper), with pollers listing $currentOp in every option
// combination and killing every opid they see, the server neither races,
// panics nor hangs, and leaves what MongoDB would: transfers between
// accounts keep their sum, a retryable $inc is applied at least as often
// as it was acknowledged and never more often than it was sent, and once
// every session is killed no transaction is listed or counted open.
func TestCurrentOpAndKillOpUnderChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("stress")
	}
	srv := mongotest.Start(t, mongotest.WithTransactionLifetimeLimit(1500*time.Millisecond))
	admin := connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := admin.Database("db")
	const accounts, initial = 8, 1000
	for i := range accounts {
		_, err := db.Collection("acct").InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "bal", Value: initial}})
		require.NoError(t, err)
	}
	for i := range 50 {
		_, err := db.Collection("docs").InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: "x"}})
		require.NoError(t, err)
	}
	_, err := db.Collection("ctr").InsertOne(ctx, bson.D{{Key: "_id", Value: "c"}, {Key: "n", Value: 0}})
	require.NoError(t, err)

	run := 3 * time.Second
	if s := os.Getenv("ATTACK25_SECONDS"); s != "" {
		n, _ := strconv.Atoi(s)
		run = time.Duration(n) * time.Second
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(name string, fn func(ctx context.Context, r *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(len(name)), uint64(time.Now().UnixNano())))
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Each call has its own bound: a client whose monitor's
				// hello was killed (a guessed opid) waits for the server
				// to be selectable again, and must not look like a hang.
				octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
				fn(octx, r)
				ocancel()
			}
		}()
	}
	newClient := func() *mongo.Client {
		c, err := mongo.Connect(srv.ClientOptions().SetAppName("attack25").SetTimeout(3 * time.Second).SetMaxPoolSize(8))
		require.NoError(t, err)
		return c
	}
	clients := []*mongo.Client{newClient(), newClient()}
	defer func() {
		for _, c := range clients {
			_ = c.Disconnect(context.Background())
		}
	}()
	var transfers, commitsOK atomic.Int64
	for w := range 4 {
		c := clients[w%2]
		loop("txn"+strconv.Itoa(w), func(ctx context.Context, r *rand.Rand) {
			sess, err := c.StartSession()
			if err != nil {
				return
			}
			defer sess.EndSession(context.Background())
			from, to := r.IntN(accounts), r.IntN(accounts)
			amt := 1 + r.IntN(10)
			tctx, tcancel := context.WithTimeout(ctx, 2*time.Second)
			defer tcancel()
			transfers.Add(1)
			_, err = sess.WithTransaction(tctx, func(sctx context.Context) (any, error) {
				coll := c.Database("db").Collection("acct")
				if _, err := coll.UpdateOne(sctx, bson.D{{Key: "_id", Value: from}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "bal", Value: -amt}}}}); err != nil {
					return nil, err
				}
				if r.IntN(4) == 0 {
					time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond) // idle in the transaction
				}
				_, err := coll.UpdateOne(sctx, bson.D{{Key: "_id", Value: to}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "bal", Value: amt}}}})
				return nil, err
			})
			if err == nil {
				commitsOK.Add(1)
			}
		})
	}
	var incSent, incAcked atomic.Int64
	for w := range 2 {
		c := clients[w%2]
		loop("retry"+strconv.Itoa(w), func(ctx context.Context, _ *rand.Rand) {
			incSent.Add(1)
			_, err := c.Database("db").Collection("ctr").UpdateOne(ctx, bson.D{{Key: "_id", Value: "c"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
			if err == nil {
				incAcked.Add(1)
			}
		})
	}
	loop("cursor", func(ctx context.Context, r *rand.Rand) {
		c := clients[r.IntN(2)]
		cur, err := c.Database("db").Collection("docs").Find(ctx, bson.D{}, options.Find().SetBatchSize(3))
		if err != nil {
			return
		}
		for cur.Next(ctx) {
		}
		_ = cur.Close(ctx)
	})
	loop("kill-sessions", func(ctx context.Context, r *rand.Rand) {
		time.Sleep(time.Duration(20+r.IntN(60)) * time.Millisecond)
		if r.IntN(5) == 0 {
			_ = admin.Database("admin").RunCommand(ctx, bson.D{{Key: "killAllSessions", Value: bson.A{}}}).Err()
			return
		}
		cur, err := admin.Database("admin").Aggregate(ctx, mongo.Pipeline{{{Key: "$currentOp", Value: bson.D{}}}, {{Key: "$match", Value: bson.D{{Key: "type", Value: "idleSession"}}}}})
		if err != nil {
			return
		}
		var idle []bson.D
		if cur.All(ctx, &idle) != nil || len(idle) == 0 {
			return
		}
		id := path(idle[r.IntN(len(idle))], "lsid.id")
		_ = admin.Database("admin").RunCommand(ctx, bson.D{{Key: "killSessions", Value: bson.A{bson.D{{Key: "id", Value: id}}}}}).Err()
	})
	loop("fail-points", func(ctx context.Context, r *rand.Rand) {
		time.Sleep(time.Duration(50+r.IntN(100)) * time.Millisecond)
		cmds := bson.A{"update", "find", "getMore", "commitTransaction", "abortTransaction", "insert"}
		cmd := cmds[r.IntN(len(cmds))]
		var data bson.D
		switch r.IntN(3) {
		case 0:
			data = bson.D{{Key: "failCommands", Value: bson.A{cmd}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: int32(100 + r.IntN(300))}}
		case 1:
			data = bson.D{{Key: "failCommands", Value: bson.A{cmd}}, {Key: "closeConnection", Value: true}}
		default:
			data = bson.D{{Key: "failCommands", Value: bson.A{cmd}}, {Key: "errorCode", Value: int32(91)}}
		}
		_ = srv.FailCommand(bson.D{{Key: "times", Value: int32(1 + r.IntN(3))}}, data)
	})
	loop("disconnects", func(ctx context.Context, r *rand.Rand) {
		c := newClient()
		_, _ = c.Database("db").Collection("docs").Find(ctx, bson.D{}, options.Find().SetBatchSize(2))
		sess, err := c.StartSession()
		if err == nil {
			_ = sess.StartTransaction()
			_, _ = c.Database("db").Collection("acct").UpdateOne(mongo.NewSessionContext(ctx, sess), bson.D{{Key: "_id", Value: r.IntN(accounts)}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "bal", Value: 0}}}})
			// Disconnect with the transaction open: the driver aborts it, or
			// the lifetime reaper does.
		}
		_ = c.Disconnect(context.Background())
	})
	var polls, killed, malformed atomic.Int64
	var badMu sync.Mutex
	var bad []string
	for w := range 2 {
		loop("poller"+strconv.Itoa(w), func(ctx context.Context, r *rand.Rand) {
			spec := currentOpSpecs[r.IntN(len(currentOpSpecs))]
			rest := currentOpRests[r.IntN(len(currentOpRests))]
			pipeline := mongo.Pipeline{{{Key: "$currentOp", Value: spec}}}
			for _, s := range rest {
				pipeline = append(pipeline, s)
			}
			cur, err := admin.Database("admin").Aggregate(ctx, pipeline)
			if err != nil {
				var se mongo.ServerError
				if errors.As(err, &se) && !se.HasErrorCode(11601) && !se.HasErrorCode(91) && !se.HasErrorCode(50) {
					badMu.Lock()
					bad = append(bad, fmt.Sprintf("$currentOp %v: %v", pipeline, err))
					badMu.Unlock()
				}
				return
			}
			var ops []bson.D
			if cur.All(ctx, &ops) != nil {
				return
			}
			polls.Add(1)
			for _, op := range ops {
				if replyField(op, "type") == "idleSession" {
					if _, ok := path(op, "transaction.parameters.txnNumber").(int64); !ok {
						malformed.Add(1)
					}
				}
				opid, ok := replyField(op, "opid").(int32)
				if !ok {
					continue
				}
				if r.IntN(3) == 0 {
					continue
				}
				if cmd, _ := replyField(op, "command").(bson.D); replyField(cmd, "hello") != nil {
					// A killed monitor's hello fails its check and the
					// client stops selecting the server for a while, as
					// with MongoDB (TestKillOpInterruptsAnAwaitableHello):
					// the pollers would mostly wait.
					continue
				}
				// Every opid it sees, its own and the next ones included.
				for _, id := range []int32{opid, opid + 1, opid + 2} {
					if admin.Database("admin").RunCommand(ctx, bson.D{{Key: "killOp", Value: 1}, {Key: "op", Value: id}}).Err() == nil {
						killed.Add(1)
					}
				}
			}
		})
	}

	time.Sleep(run)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		t.Fatal("the workers hang")
	}
	require.NoError(t, srv.FailCommand("off", bson.D{}))
	t.Logf("transfers %d (committed %d), retryable $inc sent %d acked %d, polls %d, killOps %d", transfers.Load(), commitsOK.Load(), incSent.Load(), incAcked.Load(), polls.Load(), killed.Load())
	assert.Empty(t, bad)
	assert.Zero(t, malformed.Load())

	actx := testContext(t)
	var sum struct {
		Total int64 `bson:"total"`
	}
	cur, err := db.Collection("acct").Aggregate(actx, mongo.Pipeline{{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "total", Value: bson.D{{Key: "$sum", Value: "$bal"}}}}}}})
	require.NoError(t, err)
	require.True(t, cur.Next(actx))
	require.NoError(t, cur.Decode(&sum))
	assert.EqualValues(t, accounts*initial, sum.Total, "transfers keep the sum")

	var ctr struct {
		N int64 `bson:"n"`
	}
	require.NoError(t, db.Collection("ctr").FindOne(actx, bson.D{{Key: "_id", Value: "c"}}).Decode(&ctr))
	assert.GreaterOrEqual(t, ctr.N, incAcked.Load(), "every acknowledged $inc is applied")
	assert.LessOrEqual(t, ctr.N, incSent.Load(), "no $inc is applied twice")

	require.NoError(t, admin.Database("admin").RunCommand(actx, bson.D{{Key: "killAllSessions", Value: bson.A{}}}).Err())
	assert.Empty(t, idleSessions(t, admin), "no transaction is left open")
	var status bson.D
	require.NoError(t, admin.Database("admin").RunCommand(actx, bson.D{{Key: "serverStatus", Value: 1}}).Decode(&status))
	assert.EqualValues(t, 0, path(status, "transactions.currentOpen"), "transactions: %v", replyField(status, "transactions"))
	// Awaitable hellos (the drivers' monitors) stay in flight.
	active := currentOp(t, admin, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "active", Value: true}, {Key: "command.hello", Value: bson.D{{Key: "$exists", Value: false}}}}}})
	assert.Len(t, active, 1, "only the $currentOp itself runs: %v", active)
}

// BenchmarkInsertFindCurrentOpPolled is BenchmarkInsertFind/in-process
// beside a client polling $currentOp (idle connections and sessions
// included), as txchaos does once a second, and as often as it can; the
// ratio of each to "alone" is the price of being watched.
func BenchmarkInsertFindCurrentOpPolled(b *testing.B) {
	for _, bb := range []struct {
		name  string
		every time.Duration // 0: no poller
	}{{"alone", 0}, {"polled-every-1s", time.Second}, {"polled-every-10ms", 10 * time.Millisecond}, {"polled-back-to-back", -1}} {
		b.Run(bb.name, func(b *testing.B) {
			srv := mongotest.Start(b, mongotest.WithoutListener())
			client := connect(b, srv)
			if bb.every != 0 {
				poller := connect(b, srv)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						cur, err := poller.Database("admin").Aggregate(context.Background(), mongo.Pipeline{{{Key: "$currentOp", Value: bson.D{{Key: "idleConnections", Value: true}}}}})
						if err == nil {
							var ops []bson.D
							_ = cur.All(context.Background(), &ops)
						}
						wait := bb.every
						if wait < 0 {
							wait = 0
						}
						select {
						case <-stop:
							return
						case <-time.After(wait):
						}
					}
				}()
				b.Cleanup(func() { close(stop); wg.Wait() })
			}
			benchInsertFind(b, client)
		})
	}
}

// A thousand idle connections are each listed with idleConnections, and
// the listing stays one small batch per connection's document.
func TestCurrentOpListsAThousandIdleConnections(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	for range 1000 {
		nc := dial(t, srv)
		write(t, nc, opMsg(1, 0, mustMarshal(t, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})))
		readMsgReply(t, nc, 1)
	}
	start := time.Now()
	ops := currentOp(t, client, bson.D{{Key: "idleConnections", Value: true}}, bson.D{{Key: "$match", Value: bson.D{{Key: "active", Value: false}}}})
	t.Logf("%d idle connections listed in %v", len(ops), time.Since(start))
	assert.GreaterOrEqual(t, len(ops), 1000)
	assert.Len(t, currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "active", Value: false}}}}), 0, "without idleConnections none is listed")
}

func mustMarshal(t *testing.T, d bson.D) []byte {
	raw, err := bson.Marshal(d)
	require.NoError(t, err)
	return raw
}

// A 16 MB document inserted through the driver travels in a document
// sequence, which $currentOp's command leaves out, as MongoDB's (the op
// description is the body); a body of nearly BSONObjMaxInternalSize makes
// the op's document too large, and $currentOp fails with
// BSONObjectTooLarge rather than answer more than the limit.
func TestCurrentOpOfAHugeCommand(t *testing.T) {
	srv := mongotest.Start(t)
	client := connect(t, srv)
	// 16 MB messages under -race on a loaded machine take seconds each:
	// the bounds are for a hang, not a speed.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	require.NoError(t, srv.FailCommand(bson.D{{Key: "times", Value: 2}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "blockConnection", Value: true},
		{Key: "blockTimeMS", Value: 1500},
	}))
	big := make([]byte, 16*1024*1024-100)
	done := make(chan error, 1)
	go func() {
		_, err := client.Database("db").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "b", Value: bson.Binary{Data: big}}})
		done <- err
	}()
	var ops []bson.D
	require.Eventually(t, func() bool {
		ops = currentOp(t, client, bson.D{}, bson.D{{Key: "$match", Value: bson.D{{Key: "op", Value: "insert"}}}})
		return len(ops) == 1
	}, time.Minute, 5*time.Millisecond)
	cmd, _ := replyField(ops[0], "command").(bson.D)
	assert.Nil(t, replyField(cmd, "documents"), "the document sequence is not in the command")
	require.NoError(t, <-done)

	// The body itself near the limit.
	body := bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 2}, {Key: "b", Value: bson.Binary{Data: make([]byte, 16*1024*1024+16*1024-200)}}}}}, {Key: "$db", Value: "db"}}
	nc := dial(t, srv)
	write(t, nc, opMsg(1, 0, mustMarshal(t, body)))
	require.Eventually(t, func() bool {
		cur, err := client.Database("admin").Aggregate(ctx, mongo.Pipeline{{{Key: "$currentOp", Value: bson.D{}}}, {{Key: "$match", Value: bson.D{{Key: "op", Value: "insert"}}}}})
		if err == nil {
			_ = cur.Close(ctx)
			return false
		}
		var se mongo.ServerError
		return errors.As(err, &se) && se.HasErrorCode(10334)
	}, time.Minute, 5*time.Millisecond)
	var reply bson.D
	require.NoError(t, bson.Unmarshal(readMsgReply(t, nc, 1), &reply))
}
