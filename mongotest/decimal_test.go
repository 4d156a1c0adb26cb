package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// A double that meets a decimal in arithmetic is converted as MongoDB's
// Value::coerceToDecimal and SafeNum convert it: Decimal128(double,
// kRoundTo15Digits), exactly 15 significant digits
// (src/mongo/platform/decimal128.cpp; the manual's $toDecimal table: 2.5 ->
// Decimal128("2.50000000000000")). So {$add: [NumberDecimal("1"), 1.1]} is
// NumberDecimal("2.10000000000000"), not 2.1: equal in value, but a
// different decimal (its string, its scale). Finding
// mongotest-decimal-double-coercion-scale.
func TestDecimalMeetsDoubleWith15Digits(t *testing.T) {
	ctx, db := newTestDB(t)
	one, err := bson.ParseDecimal128("1")
	require.NoError(t, err)
	cur, err := db.Aggregate(ctx, bson.A{
		bson.D{{Key: "$documents", Value: bson.A{bson.D{}}}},
		bson.D{{Key: "$project", Value: bson.D{
			{Key: "_id", Value: 0},
			{Key: "add", Value: bson.D{{Key: "$add", Value: bson.A{one, 1.1}}}},
			{Key: "mul", Value: bson.D{{Key: "$multiply", Value: bson.A{2.5, one}}}},
			{Key: "sub", Value: bson.D{{Key: "$subtract", Value: bson.A{one, 0.1}}}},
		}}},
	})
	require.NoError(t, err)
	var out []struct {
		Add bson.Decimal128 `bson:"add"`
		Mul bson.Decimal128 `bson:"mul"`
		Sub bson.Decimal128 `bson:"sub"`
	}
	require.NoError(t, cur.All(ctx, &out))
	require.Len(t, out, 1)
	assert.Equal(t, "2.10000000000000", out[0].Add.String())
	assert.Equal(t, "2.50000000000000", out[0].Mul.String())
	assert.Equal(t, "0.900000000000000", out[0].Sub.String())

	coll := db.Collection("d")
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "inc", Value: one}, {Key: "mul", Value: one}})
	require.NoError(t, err)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "inc", Value: 1.1}}},
		{Key: "$mul", Value: bson.D{{Key: "mul", Value: 0.5}}},
	})
	require.NoError(t, err)
	var got struct {
		Inc bson.Decimal128 `bson:"inc"`
		Mul bson.Decimal128 `bson:"mul"`
	}
	require.NoError(t, coll.FindOne(ctx, bson.D{}).Decode(&got))
	assert.Equal(t, "2.10000000000000", got.Inc.String(), "stored by $inc")
	assert.Equal(t, "0.500000000000000", got.Mul.String(), "stored by $mul")
}
