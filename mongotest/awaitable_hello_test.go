package mongotest_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/txkit/txkit/mongotest"
)

// sendAwaitableHello sends a monitor's awaitable hello, with the server's
// current topologyVersion, on a new raw connection.
func sendAwaitableHello(t *testing.T, srv *mongotest.Server, maxAwait time.Duration) *rawSession {
	t.Helper()
	s := newRandomSession(t, srv)
	r := s.run("admin", bson.D{{Key: "hello", Value: 1}})
	requireOK(t, r)
	hello := bson.D{
		{Key: "hello", Value: 1},
		{Key: "topologyVersion", Value: replyField(r, "topologyVersion")},
		{Key: "maxAwaitTimeMS", Value: maxAwait.Milliseconds()},
		{Key: "$db", Value: "admin"},
	}
	raw, err := bson.Marshal(hello)
	require.NoError(t, err)
	write(t, s.nc, opMsg(100, 0, bsoncore.Document(raw)))
	return s
}

// An awaitable hello waits for the client's maxAwaitTimeMS while the
// topology is unchanged; another client's connection closing is no
// topology change.
func TestAwaitableHelloIgnoresOtherClientsClosingConnections(t *testing.T) {
	srv := mongotest.Start(t)
	monitor := sendAwaitableHello(t, srv, time.Minute)

	for range 3 {
		other, err := mongo.Connect(srv.ClientOptions())
		require.NoError(t, err)
		require.NoError(t, other.Ping(context.Background(), nil))
		require.NoError(t, other.Disconnect(context.Background()))
	}
	// Nothing to read yet: the hello is still waiting.
	require.NoError(t, monitor.nc.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err := monitor.nc.Read(make([]byte, 1))
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "the awaitable hello answered early: %v", err)
}

// The hello answers once maxAwaitTimeMS has passed.
func TestAwaitableHelloAnswersAfterMaxAwaitTime(t *testing.T) {
	srv := mongotest.Start(t)
	monitor := sendAwaitableHello(t, srv, 200*time.Millisecond)
	require.NoError(t, monitor.nc.SetReadDeadline(time.Now().Add(30*time.Second)))
	reply := readMsgReply(t, monitor.nc, 100)
	require.True(t, reply.Lookup("isWritablePrimary").Boolean())
}

// A client that disconnects while its monitor's hello waits is not held up
// for maxAwaitTimeMS, and its connections are gone from the server.
func TestDisconnectDuringAwaitableHello(t *testing.T) {
	srv := mongotest.Start(t)
	for _, opts := range []*options.ClientOptions{srv.ClientOptions(), options.Client().ApplyURI(srv.URI())} {
		client, err := mongo.Connect(opts.SetHeartbeatInterval(time.Hour))
		require.NoError(t, err)
		require.NoError(t, client.Ping(context.Background(), nil))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		require.NoError(t, client.Disconnect(ctx))
		cancel()
	}
	require.Eventually(t, func() bool {
		r := newRandomSession(t, srv).run("admin", bson.D{{Key: "serverStatus", Value: 1}})
		return replyField(replyField(r, "connections").(bson.D), "current") == int32(1) // this session's own
	}, 30*time.Second, 20*time.Millisecond)
}
