package bsonkit

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// MongoDB converts a double to decimal with Decimal128(double,
// kRoundTo15Digits) (src/mongo/platform/decimal128.cpp): exactly 15
// significant digits, rounded half to even from the double's exact value;
// zero, infinities and NaN unchanged. These are the values its comment and
// the manual's $toDecimal table give, and the edges of the exponent guess.
func TestDecimalFromDoubleHas15Digits(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0.1, "0.100000000000000"},
		{1.1, "1.10000000000000"},
		{2.5, "2.50000000000000"},
		{-2.5, "-2.50000000000000"},
		{100000, "100000.000000000"},
		{999999, "999999.000000000"},
		{0.00001, "0.0000100000000000000"},
		{0.9999999999999994, "0.999999999999999"},
		{0.99999999999999994, "1.00000000000000"},
		{1e300, "1.00000000000000E+300"},
		{5e-324, "4.94065645841247E-324"},
		{math.MaxFloat64, "1.79769313486232E+308"},
		{0, "0"},
		{math.Copysign(0, -1), "-0"},
		{math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"},
	} {
		d := DecimalFromDouble(c.in)
		assert.Equal(t, c.want, d.String(), "%v", c.in)
	}
	assert.Equal(t, "NaN", DecimalFromDouble(math.NaN()).String())
}

// Arithmetic that meets a double and a decimal converts the double as
// above: Value::coerceToDecimal for $add/$multiply/$subtract/$divide,
// SafeNum for $inc/$mul.
func TestDecimalArithmeticConvertsDoublesTo15Digits(t *testing.T) {
	one, err := bson.ParseDecimal128("1")
	require.NoError(t, err)
	sum, err := Add(one, 1.1)
	require.NoError(t, err)
	assert.Equal(t, "2.10000000000000", sum.(bson.Decimal128).String())
	sum, err = Add(0.1, one)
	require.NoError(t, err)
	assert.Equal(t, "1.100000000000000", sum.(bson.Decimal128).String())
	prod, err := Multiply(one, 2.5)
	require.NoError(t, err)
	assert.Equal(t, "2.50000000000000", prod.(bson.Decimal128).String())
	quo, err := Divide(2.5, one)
	require.NoError(t, err)
	assert.Equal(t, "2.50000000000000", quo.(bson.Decimal128).String())
}
