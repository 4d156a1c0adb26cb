package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A document is stored and returned as sent: an empty array or document
// that is the only array or document of the command stays [] or {}. (The
// driver's TestClient_BSONOptions/NilSliceAsEmpty sends exactly this; a
// decoding shortcut once returned null for it.)
func TestEmptyArrayAndDocumentRoundTrip(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	for _, doc := range []bson.D{
		{{Key: "x", Value: bson.A{}}},
		{{Key: "x", Value: bson.D{}}},
	} {
		res, err := coll.InsertOne(ctx, doc)
		require.NoError(t, err)
		raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: res.InsertedID}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 0}})).Raw()
		require.NoError(t, err)
		want, err := bson.Marshal(doc)
		require.NoError(t, err)
		require.Equal(t, bson.Raw(want).String(), raw.String())
	}
}
