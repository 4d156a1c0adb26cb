package mongotest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// awaitableHello is what a driver's monitor sends: the server's current
// topologyVersion and how long to wait for a change.
func awaitableHello(s *Server, wait time.Duration) bson.D {
	return bson.D{
		{Key: "hello", Value: 1},
		{Key: "topologyVersion", Value: bson.D{{Key: "processId", Value: s.processID}, {Key: "counter", Value: int64(0)}}},
		{Key: "maxAwaitTimeMS", Value: wait.Milliseconds()},
		{Key: "$db", Value: "admin"},
	}
}

// A connection opening or closing is no topology change: an awaitable
// hello waits on while other clients come and go (MongoDB answers it only
// on a topology change or after maxAwaitTimeMS: the awaitable hello
// protocol of the server monitoring specification).
func TestAwaitableHelloIgnoresOtherClientsClosingConnections(t *testing.T) {
	s, nc := startServer(t, nil)
	_, err := nc.Write(buildMsg(1, 0, mustDoc(t, awaitableHello(s, time.Minute))))
	require.NoError(t, err)

	for range 3 {
		other, err := mongo.Connect(s.ClientOptions())
		require.NoError(t, err)
		require.NoError(t, other.Ping(context.Background(), nil))
		require.NoError(t, other.Disconnect(context.Background()))
	}
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = nc.Read(make([]byte, 1))
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "the awaitable hello was answered: %v", err)
}

func TestAwaitableHelloAnswersAfterMaxAwaitTime(t *testing.T) {
	s, nc := startServer(t, nil)
	reply := roundTrip(t, nc, 1, awaitableHello(s, 50*time.Millisecond))
	require.True(t, reply.Lookup("isWritablePrimary").Boolean())
}

// MongoDB kills a waiting hello when its client disconnects
// (CmdHello::runWithReplyBuilder, src/mongo/db/repl/replication_info.cpp,
// calls CommandHelpers::handleMarkKillOnClientDisconnect); the server
// lets go of the connection at once.
func TestAwaitableHelloEndsWhenItsClientCloses(t *testing.T) {
	s, nc := startServer(t, nil)
	_, err := nc.Write(buildMsg(1, 0, mustDoc(t, awaitableHello(s, time.Hour))))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.connCount() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, nc.Close())
	require.Eventually(t, func() bool { return s.connCount() == 0 }, time.Minute, 5*time.Millisecond,
		"the server still holds the closed connection of a waiting hello")
}

// A client's Disconnect is not held up by its monitor's awaitable hello,
// even with a maxAwaitTimeMS (heartbeatFrequencyMS) of an hour, over TCP
// and in memory. mongo-driver's Disconnect can miss a monitor check that
// starts as it runs (see clientGroup); each round gives that race a
// chance.
func TestDisconnectIsNotHeldByTheMonitorsHello(t *testing.T) {
	s, _ := startServer(t, nil)
	transports := []struct {
		name string
		opts func() *options.ClientOptions
	}{
		{"in memory", s.ClientOptions},
		{"over TCP", func() *options.ClientOptions { return options.Client().ApplyURI(s.URI()) }},
	}
	for _, tt := range transports {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 30 {
				var mu sync.Mutex
				var failed []string
				monitor := &event.ServerMonitor{ServerHeartbeatFailed: func(e *event.ServerHeartbeatFailedEvent) {
					mu.Lock()
					defer mu.Unlock()
					failed = append(failed, fmt.Sprintf("%v after %v", e.Failure, e.Duration))
				}}
				// The heartbeat (maxAwaitTimeMS) is an hour, so a Disconnect
				// held by the monitor's awaitable hello shows. The connect
				// timeout, which bounds the monitor's first (handshake)
				// check but not its awaitable hellos, is short: a first
				// check lost under load fails fast and Ping's server
				// selection asks for another, instead of one slow check
				// using up the whole selection timeout.
				client, err := mongo.Connect(tt.opts().SetHeartbeatInterval(time.Hour).
					SetConnectTimeout(10 * time.Second).SetServerSelectionTimeout(time.Minute).
					SetServerMonitor(monitor))
				require.NoError(t, err)
				err = client.Ping(context.Background(), nil)
				mu.Lock()
				require.NoError(t, err, "round %d; failed monitor checks: %q", i, failed)
				mu.Unlock()
				time.Sleep(time.Duration(i%6) * 500 * time.Microsecond)
				done := make(chan error, 1)
				go func() { done <- client.Disconnect(context.Background()) }()
				select {
				case err := <-done:
					require.NoError(t, err)
				case <-time.After(time.Minute):
					t.Fatalf("round %d: Disconnect is waiting for its monitor's hour-long hello", i)
				}
			}
		})
	}
}

// A NotPrimaryError reply carries the server's topologyVersion, so a
// driver that knows that version ignores it for monitoring; a
// ShutdownError carries none outside quiesce mode
// (appendErrorLabelsAndTopologyVersion in
// src/mongo/db/service_entry_point_common.cpp).
func TestNotPrimaryErrorsCarryTheTopologyVersion(t *testing.T) {
	tests := []struct {
		give int32
		want bool
	}{
		{give: 10107, want: true}, // NotWritablePrimary
		{give: 189, want: true},   // PrimarySteppedDown
		{give: 91, want: false},   // ShutdownInProgress
		{give: 112, want: false},  // WriteConflict
	}
	for _, tt := range tests {
		s, nc := startServer(t, nil)
		require.NoError(t, s.FailCommand(bson.D{{Key: "times", Value: 1}}, bson.D{
			{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "errorCode", Value: tt.give}}))
		reply := roundTrip(t, nc, 1, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
		tv, ok := reply.Lookup("topologyVersion").DocumentOK()
		require.Equal(t, tt.want, ok, "code %d: %v", tt.give, reply)
		if ok {
			require.Equal(t, s.processID.Hex(), bson.ObjectID(tv.Lookup("processId").ObjectID()).Hex())
		}
	}
}
