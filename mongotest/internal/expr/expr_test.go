package expr

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

func TestSum(t *testing.T) {
	tests := []struct {
		name string
		give []any
		want any
	}{
		{name: "ints stay int", give: []any{int32(1), int32(2)}, want: int32(3)},
		{name: "ints overflowing int32 become long", give: []any{int32(math.MaxInt32), int32(1)}, want: int64(math.MaxInt32) + 1},
		{name: "a long overflowing only in between stays long", give: []any{int64(math.MaxInt64), int64(1), int64(-1)}, want: int64(math.MaxInt64)},
		{name: "a long total that does not fit is a double", give: []any{int64(math.MaxInt64), int64(1)}, want: float64(math.MaxInt64) + 1},
		{name: "a double makes a double", give: []any{int32(1), 0.5}, want: 1.5},
		{name: "non-numbers are ignored", give: []any{"x", nil, int32(2)}, want: int32(2)},
		{name: "nothing is int zero", give: nil, want: int32(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sum
			for _, v := range tt.give {
				s.Add(v)
			}
			require.Equal(t, tt.want, s.Result())
		})
	}
}

func TestVariables(t *testing.T) {
	x, err := Compile("$$limit", Vars{"limit": int32(5)})
	require.NoError(t, err)
	v, err := x.Eval(bson.D{})
	require.NoError(t, err)
	require.Equal(t, int32(5), v)

	_, err = Compile("$$limit", nil)
	var me *merr.Error
	require.True(t, errors.As(err, &me))
	require.Equal(t, CodeUndefinedVariable, me.Code)

	for _, bad := range []string{"Upper", "_x", "1a", "a-b"} {
		require.Error(t, ValidateVarName(bad), bad)
	}
	require.NoError(t, ValidateVarName("aB_1"))
}

// MongoDB computes with decimal128 in decimal (IEEE 754-2008): a quotient
// or average is a decimal with up to 34 significant digits, not a double,
// and sums and products keep the exponent arithmetic gives them.
func TestDecimalDivideAndAverage(t *testing.T) {
	dec := func(s string) bson.Decimal128 {
		d, err := bson.ParseDecimal128(s)
		require.NoError(t, err)
		return d
	}
	tests := []struct {
		name string
		give string
		doc  bson.D
		want any
	}{
		{name: "decimal by decimal", give: `{"$divide": ["$a", "$b"]}`, doc: bson.D{{Key: "a", Value: dec("1")}, {Key: "b", Value: dec("3")}}, want: dec("0.3333333333333333333333333333333333")},
		{name: "decimal by int", give: `{"$divide": ["$a", 4]}`, doc: bson.D{{Key: "a", Value: dec("1")}}, want: dec("0.25")},
		{name: "int by decimal", give: `{"$divide": [2, "$a"]}`, doc: bson.D{{Key: "a", Value: dec("3")}}, want: dec("0.6666666666666666666666666666666667")},
		{name: "doubles stay double", give: `{"$divide": [1, 4]}`, doc: bson.D{}, want: 0.25},
		{name: "average of decimals", give: `{"$avg": ["$a", "$b"]}`, doc: bson.D{{Key: "a", Value: dec("1")}, {Key: "b", Value: dec("2")}}, want: dec("1.5")},
		{name: "average of ints is a double", give: `{"$avg": [1, 2]}`, doc: bson.D{}, want: 1.5},
		{name: "decimal sums keep the exponent", give: `{"$add": ["$a", "$b"]}`, doc: bson.D{{Key: "a", Value: dec("1")}, {Key: "b", Value: dec("2")}}, want: dec("3")},
		{name: "decimal products add exponents", give: `{"$multiply": ["$a", 2]}`, doc: bson.D{{Key: "a", Value: dec("1.0")}}, want: dec("2.0")},
		{name: "a long quotient rounds half to even", give: `{"$divide": ["$a", "$b"]}`, doc: bson.D{{Key: "a", Value: dec("-2")}, {Key: "b", Value: dec("3")}}, want: dec("-0.6666666666666666666666666666666667")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec bson.D
			require.NoError(t, bson.UnmarshalExtJSON([]byte(`{"e": `+tt.give+`}`), false, &spec))
			x, err := Compile(spec[0].Value, nil)
			require.NoError(t, err)
			got, err := x.Eval(tt.doc)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
