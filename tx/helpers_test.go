package tx_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"

	"github.com/txkit/txkit/internal/currentop"
	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/txtest"
)

// env is one test's world: a client that records the commands it sends, a
// fresh database and collection, and a Runner reporting to rec.
type env struct {
	uri    string
	client *mongo.Client
	mon    *monitor
	db     *mongo.Database
	coll   *mongo.Collection
	rec    *txtest.Recorder
	runner *tx.Runner

	// commitFaults is set once a test fakes a commit failure. The driver
	// (and the transactions spec) forbid aborting after a commit attempt,
	// so the server keeps such a transaction until the pooled session is
	// reused or the transaction lifetime limit ends it: only then may one
	// be left open.
	commitFaults atomic.Bool
}

func newEnv(t *testing.T, opts ...tx.Option) *env {
	t.Helper()
	uri := testenv.URI(t)
	return newEnvAt(t, uri, opts...)
}

// newEnvAt connects another env to uri, to share a server.
func newEnvAt(t *testing.T, uri string, opts ...tx.Option) *env {
	t.Helper()
	mon := &monitor{}
	client := testenv.Connect(t, uri, options.Client().SetMonitor(mon.commandMonitor()))
	db := testenv.NewDB(t, client)
	coll := db.Collection("docs")
	// Create the collection up front: a real server may refuse to create
	// one inside a transaction that also reads it.
	require.NoError(t, db.CreateCollection(context.Background(), "docs"))
	rec := &txtest.Recorder{}
	runner := tx.NewRunner(client, append([]tx.Option{tx.WithObserver(rec)}, opts...)...)
	e := &env{uri: uri, client: client, mon: mon, db: db, coll: coll, rec: rec, runner: runner}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, runner.Close(ctx), "sessions left open on the server")
		assert.Zero(t, client.NumberSessionsInProgress(), "sessions left checked out")
		// A shared deployment has other tests' transactions.
		if !testenv.Real() && !e.commitFaults.Load() {
			open, _ := serverStatus(t, client)
			if !assert.Zero(t, open, "transactions left open on the server") {
				txns, err := currentop.Open(context.Background(), client.Database("admin"), 0)
				t.Logf("open: %v (%v); commands: %s", txns, err, mon.dump("insert", "update", "find", "commitTransaction", "abortTransaction", "killSessions", "endSessions"))
			}
		}
	})
	mon.reset()
	return e
}

// count returns how many documents match filter, read outside any
// transaction.
func (e *env) count(t *testing.T, filter any) int64 {
	t.Helper()
	if filter == nil {
		filter = bson.D{}
	}
	n, err := e.coll.CountDocuments(context.Background(), filter)
	require.NoError(t, err)
	return n
}

// failCommand makes the next times runs of cmds fail with code and labels.
// times < 0 means always.
func (e *env) failCommand(t *testing.T, times int, data bson.D) {
	t.Helper()
	for _, el := range data {
		if cmds, ok := el.Value.(bson.A); ok && el.Key == "failCommands" {
			for _, c := range cmds {
				if c == "commitTransaction" {
					e.commitFaults.Store(true)
				}
			}
		}
	}
	mode := any(bson.D{{Key: "times", Value: times}})
	if times < 0 {
		mode = "alwaysOn"
	}
	testenv.FailCommand(t, e.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: mode},
		{Key: "data", Value: data},
	})
}

func failData(cmd string, code int, labels ...string) bson.D {
	d := bson.D{{Key: "failCommands", Value: bson.A{cmd}}, {Key: "errorCode", Value: code}}
	if labels != nil {
		a := bson.A{}
		for _, l := range labels {
			a = append(a, l)
		}
		d = append(d, bson.E{Key: "errorLabels", Value: a})
	}
	return d
}

// Error codes used with failCommand.
const (
	codeWriteConflict      = 112
	codeNoSuchTransaction  = 251
	codeWriteConcernFailed = 64
	codeMaxTimeMSExpired   = 50
	codeInternalError      = 1
)

// command is one command the client sent, as the server received it.
type command struct {
	Name       string
	DB         string
	LSID       string // hex of lsid.id, "" without a session
	TxnNumber  int64  // 0 when absent
	Autocommit *bool  // present (false) only inside a transaction
	StartTxn   bool
	Body       bson.Raw
	Failed     bool
	Succeeded  bool
	Err        string
	// NotSent marks a command the driver gave up on before writing it:
	// it checks its ctx after publishing the started event.
	NotSent bool
	// Refused marks a command the server answered with an error: it
	// cannot reach the server again.
	Refused bool
}

// monitor records the commands a client sends, skipping the driver's
// handshakes.
type monitor struct {
	mu      sync.Mutex
	cmds    []*command
	byReqID map[int64]*command
}

func (m *monitor) commandMonitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, ev *event.CommandStartedEvent) {
			switch ev.CommandName {
			case "hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo", "getLastError", "saslStart", "saslContinue":
				return
			}
			c := &command{Name: ev.CommandName, DB: ev.DatabaseName, Body: ev.Command}
			if lsid, err := ev.Command.LookupErr("lsid", "id"); err == nil {
				_, data := lsid.Binary()
				c.LSID = hex.EncodeToString(data)
			}
			if v, err := ev.Command.LookupErr("txnNumber"); err == nil {
				c.TxnNumber = v.AsInt64()
			}
			if v, err := ev.Command.LookupErr("autocommit"); err == nil {
				b := v.Boolean()
				c.Autocommit = &b
			}
			if v, err := ev.Command.LookupErr("startTransaction"); err == nil {
				c.StartTxn = v.Boolean()
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.byReqID == nil {
				m.byReqID = map[int64]*command{}
			}
			m.cmds = append(m.cmds, c)
			m.byReqID[ev.RequestID] = c
		},
		Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if c := m.byReqID[ev.RequestID]; c != nil {
				c.Succeeded = true
			}
		},
		Failed: func(_ context.Context, ev *event.CommandFailedEvent) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if c := m.byReqID[ev.RequestID]; c != nil {
				c.Failed, c.Err = true, ev.Failure.Error()
				c.NotSent = errors.Is(ev.Failure, context.Canceled) // tests never cancel a commit on the wire
				var de driver.Error
				c.Refused = errors.As(ev.Failure, &de) && de.Code != 0 && !de.NetworkError()
			}
		},
	}
}

func (m *monitor) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cmds, m.byReqID = nil, nil
}

// named returns the recorded commands called name, in order.
// dump describes the recorded commands called one of names, for a
// failure message.
func (m *monitor) dump(names ...string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, c := range m.cmds {
		if slices.Contains(names, c.Name) {
			fmt.Fprintf(&b, "\n  %s lsid=%.8s txn=%d start=%v ok=%v failed=%v notSent=%v %s", c.Name, c.LSID, c.TxnNumber, c.StartTxn, c.Succeeded, c.Failed, c.NotSent, c.Err)
		}
	}
	return b.String()
}

func (m *monitor) named(name string) []command {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []command
	for _, c := range m.cmds {
		if c.Name == name && !c.NotSent {
			out = append(out, *c)
		}
	}
	return out
}

// started returns the recorded commands called name, in order, those the
// driver gave up on included.
func (m *monitor) started(name string) []command {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []command
	for _, c := range m.cmds {
		if c.Name == name {
			out = append(out, *c)
		}
	}
	return out
}

// sessions returns the distinct server sessions (lsids) the commands used.
func (m *monitor) sessions() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := map[string]bool{}
	for _, c := range m.cmds {
		if c.LSID != "" {
			s[c.LSID] = true
		}
	}
	return s
}

// errBusiness stands for a business rule saying no.
var errBusiness = errors.New("insufficient credits")

// businessError is an error type a caller matches with errors.As.
type businessError struct{ Account string }

func (e *businessError) Error() string { return "account " + e.Account + " is frozen" }

func doc(id any, kv ...any) bson.D {
	d := bson.D{{Key: "_id", Value: id}}
	for i := 0; i+1 < len(kv); i += 2 {
		d = append(d, bson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return d
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func txnOptsMajorityWrite() *options.TransactionOptionsBuilder {
	return options.Transaction().SetWriteConcern(writeconcern.Majority())
}

func txnOptsW1() *options.TransactionOptionsBuilder {
	return options.Transaction().SetWriteConcern(writeconcern.W1())
}

func txnOptsLocalRead() *options.TransactionOptionsBuilder {
	return options.Transaction().SetReadConcern(readconcern.Local())
}

// serverStatus returns the server's count of open transactions and of the
// logical sessions it knows.
func serverStatus(t *testing.T, client *mongo.Client) (openTxns, sessions int64) {
	t.Helper()
	var st struct {
		Transactions struct {
			CurrentOpen int64 `bson:"currentOpen"`
		} `bson:"transactions"`
		Sessions struct {
			Active int64 `bson:"activeSessionsCount"`
		} `bson:"logicalSessionRecordCache"`
	}
	err := client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "serverStatus", Value: 1}}).Decode(&st)
	require.NoError(t, err)
	return st.Transactions.CurrentOpen, st.Sessions.Active
}
