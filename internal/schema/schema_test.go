package schema_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/goleak"

	"github.com/txkit/txkit/internal/schema"
	"github.com/txkit/txkit/internal/testenv"
)

func TestCreateCollectionTwiceLeavesOneCollection(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	require.NoError(t, schema.CreateCollection(ctx, db, "things"))
	_, err := db.Collection("things").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	require.NoError(t, schema.CreateCollection(ctx, db, "things"), "a second call is not an error")
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: "things"}})
	require.NoError(t, err)
	require.Equal(t, []string{"things"}, names)
	n, err := db.Collection("things").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the existing collection keeps its documents")
}

func TestCreateCollectionReportsOtherErrors(t *testing.T) {
	db := testenv.DB(t)
	err := schema.CreateCollection(context.Background(), db, "bad$name")
	require.Error(t, err)
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
