package query

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The one-allocation compile of {field: literal} matches the same
// documents and seeds an upsert with the same fields as the general parse.
func TestLiteralEqualityCompilesAsTheGeneralParse(t *testing.T) {
	docs := []bson.D{
		{{Key: "_id", Value: int32(1)}},
		{{Key: "_id", Value: 1.0}},
		{{Key: "_id", Value: int64(2)}},
		{{Key: "_id", Value: "1"}},
		{{Key: "_id", Value: bson.A{int32(1), int32(3)}}},
		{{Key: "_id", Value: nil}},
		{{Key: "x", Value: int32(1)}},
		{{Key: "a", Value: bson.D{{Key: "b", Value: int32(1)}}}},
		{{Key: "a", Value: bson.A{bson.D{{Key: "b", Value: int32(1)}}}}},
		{{Key: "_id", Value: bson.D{{Key: "k", Value: int32(1)}}}},
	}
	tests := []bson.E{
		{Key: "_id", Value: int32(1)},
		{Key: "_id", Value: "1"},
		{Key: "_id", Value: nil},
		{Key: "_id", Value: bson.A{int32(1), int32(3)}},
		{Key: "_id", Value: bson.D{{Key: "k", Value: int32(1)}}},
		{Key: "a.b", Value: int32(1)},
		{Key: "x", Value: int64(1)},
	}
	for _, tt := range tests {
		t.Run(tt.Key, func(t *testing.T) {
			filter := bson.D{tt}
			require.True(t, isLiteralEquality(tt))
			fast, err := CompileWith(filter, Options{})
			require.NoError(t, err)
			general := &Filter{}
			general.root, err = general.parseDoc(filter, true)
			require.NoError(t, err)
			require.Equal(t, general.Equalities(), fast.Equalities())
			for _, d := range docs {
				want, err := general.Eval(d)
				require.NoError(t, err)
				got, err := fast.Eval(d)
				require.NoError(t, err)
				require.Equal(t, want, got, "%v on %v", filter, d)
			}
		})
	}
	for _, e := range []bson.E{
		{Key: "$expr", Value: true},
		{Key: "_id", Value: bson.D{{Key: "$gt", Value: 1}}},
		{Key: "_id", Value: bson.Regex{Pattern: "a"}},
		{Key: "_id", Value: bson.Undefined{}},
	} {
		require.False(t, isLiteralEquality(e), "%v", e)
	}
}
