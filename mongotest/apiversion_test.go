package mongotest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// Stable API (manual: reference/stable-api; api_parameters.cpp): with
// apiVersion "1" and apiStrict: true, a command or aggregation stage
// outside API Version 1 fails with APIStrictError (323); an apiVersion
// other than "1" fails with APIVersionError (322); apiStrict without
// apiVersion is refused. Filed by attack15b: all were accepted, so a
// program pinned to the strict Stable API passed on mongotest and failed
// on MongoDB.
func TestStableAPIStrictRefusesStagesOutsideVersion1(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	strict := []bson.E{{Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}}
	requireOK(t, runWithoutLsid(t, s, "db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	requireCode(t, runWithoutLsid(t, s, "db", append(bson.D{{Key: "collStats", Value: "c"}}, strict...)),
		323, "APIStrictError")
	requireCode(t, runWithoutLsid(t, s, "admin", append(bson.D{{Key: "serverStatus", Value: 1}}, strict...)),
		323, "APIStrictError")
	requireCode(t, runWithoutLsid(t, s, "db", append(bson.D{{Key: "aggregate", Value: "c"},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$indexStats", Value: bson.D{}}}}}, {Key: "cursor", Value: bson.D{}}}, strict...)),
		323, "APIStrictError")
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: "2"}}),
		322, "APIVersionError")
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}, {Key: "apiStrict", Value: true}}),
		4886600, "Location4886600")
	requireCode(t, runWithoutLsid(t, s, "db", bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: 1}}),
		14, "TypeMismatch")
	// Commands in API Version 1 run as before; without apiStrict any runs.
	requireOK(t, runWithoutLsid(t, s, "db", append(bson.D{{Key: "find", Value: "c"}}, strict...)))
	requireOK(t, runWithoutLsid(t, s, "db", bson.D{{Key: "collStats", Value: "c"}, {Key: "apiVersion", Value: "1"}}))
}

// A client pinned to the strict Stable API (the driver sends apiVersion
// and apiStrict on every command, the handshake and endSessions included)
// runs CRUD and a transaction; a command outside Version 1 fails as on
// MongoDB.
func TestAStrictStableAPIClientWorks(t *testing.T) {
	srv := mongotest.Start(t)
	ctx := testContext(t)
	client, err := mongo.Connect(srv.ClientOptions().SetServerAPIOptions(
		options.ServerAPI(options.ServerAPIVersion1).SetStrict(true)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	coll := client.Database("db").Collection("c")
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	require.NoError(t, client.UseSession(ctx, func(sc context.Context) error {
		_, err := mongo.SessionFromContext(sc).WithTransaction(sc, func(tc context.Context) (any, error) {
			return coll.InsertOne(tc, bson.D{{Key: "_id", Value: 2}})
		})
		return err
	}))
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	err = client.Database("db").RunCommand(ctx, bson.D{{Key: "collStats", Value: "c"}}).Err()
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, 323, ce.Code)
}
