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

// Decimal results outside decimal128's range round as IEEE 754 (the BID
// library MongoDB uses) rounds them: to ±Infinity above, to zero below;
// infinite and NaN operands give infinities and NaN, never an error.
func TestDecimalArithmeticStaysInRange(t *testing.T) {
	dec := func(s string) bson.Decimal128 {
		d, err := bson.ParseDecimal128(s)
		require.NoError(t, err)
		return d
	}
	maxDec := dec("9.999999999999999999999999999999999E+6144")
	for _, c := range []struct {
		name string
		got  func() (any, error)
		want string
	}{
		{"max + max", func() (any, error) { return Add(maxDec, maxDec) }, "Infinity"},
		{"-max - max", func() (any, error) { return Add(dec("-9.999999999999999999999999999999999E+6144"), dec("-1E+6144")) }, "-Infinity"},
		{"max × 10", func() (any, error) { return Multiply(maxDec, int32(10)) }, "Infinity"},
		{"an exponent above the range is absorbed by zeros", func() (any, error) { return Multiply(dec("1E+6110"), dec("1E+2")) }, "1.0E+6112"},
		{"smallest / 2 rounds to even zero", func() (any, error) { return Divide(dec("1E-6176"), int32(2)) }, "0E-6176"},
		{"3 × smallest / 2 rounds to even 2", func() (any, error) { return Divide(dec("3E-6176"), int32(2)) }, "2E-6176"},
		{"Infinity + 1", func() (any, error) { return Add(dec("Infinity"), int32(1)) }, "Infinity"},
		{"Infinity - Infinity", func() (any, error) { return Add(dec("Infinity"), dec("-Infinity")) }, "NaN"},
		{"-Infinity × -2", func() (any, error) { return Multiply(dec("-Infinity"), int32(-2)) }, "Infinity"},
		{"Infinity × 0", func() (any, error) { return Multiply(dec("Infinity"), 0.0) }, "NaN"},
		{"NaN + 1", func() (any, error) { return Add(dec("NaN"), int32(1)) }, "NaN"},
	} {
		r, err := c.got()
		require.NoError(t, err, c.name)
		assert.Equal(t, c.want, r.(bson.Decimal128).String(), c.name)
	}
}
