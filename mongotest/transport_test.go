package mongotest_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

func TestServerWithoutListenerServesTransactionsInMemory(t *testing.T) {
	srv := mongotest.Start(t, mongotest.WithoutListener())
	ctx := testContext(t)

	// Nothing listens: the address does not even resolve.
	_, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
	require.Error(t, err)

	client := connect(t, srv)
	coll := client.Database("db").Collection("accounts")
	sess, err := client.StartSession()
	require.NoError(t, err)
	defer sess.EndSession(ctx)
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "balance", Value: int64(10)}}); err != nil {
			return nil, err
		}
		return coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "b"}, {Key: "balance", Value: int64(20)}})
	})
	require.NoError(t, err)

	// A second, independent client sees the committed documents.
	other := connect(t, srv)
	n, err := other.Database("db").Collection("accounts").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
}

func TestDialerReachesAListeningServerToo(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := testContext(t)
	viaTCP, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = viaTCP.Disconnect(context.Background()) })

	_, err = connect(t, srv).Database("db").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	n, err := viaTCP.Database("db").Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
}

func TestDialerRefusesAnotherAddress(t *testing.T) {
	srv := mongotest.Start(t, mongotest.WithoutListener())
	_, err := srv.Dialer().DialContext(t.Context(), "tcp", "127.0.0.1:27017")
	require.ErrorContains(t, err, "cannot dial")
}

func TestDialerAfterCloseFails(t *testing.T) {
	srv, err := mongotest.NewServer(mongotest.WithoutListener())
	require.NoError(t, err)
	require.NoError(t, srv.Close())
	_, err = srv.Dialer().DialContext(t.Context(), "tcp", srv.Addr())
	require.ErrorContains(t, err, "server closed")
}

func TestCloseEndsInMemoryConnections(t *testing.T) {
	srv, err := mongotest.NewServer(mongotest.WithoutListener())
	require.NoError(t, err)
	nc, err := srv.Dialer().DialContext(t.Context(), "tcp", srv.Addr())
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, srv.Close()) // waits for the connection's goroutine (goleak checks)
	_, err = nc.Read(make([]byte, 1))
	require.Error(t, err)
}

// The production binary of an app embedding mongotest must not link package
// testing (issue 13): mongotest's non-test code does not import it, even
// indirectly.
func TestPackageDoesNotLinkTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/txkit/txkit/mongotest").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, dep := range strings.Fields(string(out)) {
		assert.NotEqual(t, "testing", dep, "mongotest links package testing")
	}
}
