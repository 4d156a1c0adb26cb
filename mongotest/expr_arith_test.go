package mongotest_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// ExpressionAdd::evaluate (src/mongo/db/pipeline/expression.cpp): with a
// date operand and no decimal, "uassert(ErrorCodes::Overflow, "date
// overflow in $add", nonDecimalTotal.fitsLong())", the total rounded half
// away from zero (DoubleDoubleSummation::getLong); with a decimal operand
// the total is rounded half to even by Decimal128::toLong, which never
// fails. mongotest wrapped around (the latest date plus 1 ms was the
// earliest date) and took a decimal operand as a double.
func TestDateAddRoundsAndOverflowsAsMongoDB(t *testing.T) {
	ctx, db := newTestDB(t)
	for _, stage := range []string{
		`{"$project":{"p":{"$add":[1e300,{"$date":{"$numberLong":"0"}}]}}}`,
		`{"$project":{"p":{"$add":[{"$date":{"$numberLong":"0"}},{"$numberDouble":"NaN"}]}}}`,
	} {
		cur, err := db.Aggregate(ctx, bson.A{fromJSON(t, `{"$documents":[{"a":1}]}`), fromJSON(t, stage)})
		if err == nil {
			var got []bson.D
			require.NoError(t, cur.All(ctx, &got))
			t.Errorf("%s: MongoDB fails with Overflow (15); mongotest returned %v", stage, got)
			continue
		}
		requireCommandError(t, err, 15, "Overflow")
	}

	tests := []struct {
		give string
		want int64
	}{
		{give: `[{"$date":{"$numberLong":"9223372036854775806"}},1]`, want: math.MaxInt64},
		{give: `[{"$date":{"$numberLong":"0"}},0.5]`, want: 1},
		{give: `[{"$date":{"$numberLong":"0"}},-0.5]`, want: -1},
		{give: `[{"$date":{"$numberLong":"0"}},{"$numberDecimal":"0.5"}]`, want: 0},
		{give: `[{"$date":{"$numberLong":"0"}},{"$numberDecimal":"1.5"}]`, want: 2},
		{give: `[{"$date":{"$numberLong":"9223372036854775807"}},{"$numberDecimal":"1"}]`, want: math.MinInt64},
		{give: `[{"$date":{"$numberLong":"1"}},{"$numberDecimal":"9007199254740993"}]`, want: 9007199254740994},
		{give: `[{"$date":{"$numberLong":"1000"}},{"$numberLong":"9223372036854775807"},{"$numberLong":"-9223372036854775807"}]`, want: 1000},
	}
	for _, tt := range tests {
		cur, err := db.Aggregate(ctx, bson.A{
			fromJSON(t, `{"$documents":[{"a":1}]}`),
			fromJSON(t, `{"$project":{"_id":0,"p":{"$add":`+tt.give+`}}}`),
		})
		require.NoError(t, err, tt.give)
		var got []bson.D
		require.NoError(t, cur.All(ctx, &got))
		require.Len(t, got, 1)
		assert.Equal(t, bson.DateTime(tt.want), replyField(got[0], "p"), tt.give)
	}
}
