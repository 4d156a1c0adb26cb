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
