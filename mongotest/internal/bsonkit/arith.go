package bsonkit

import (
	"errors"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrNotNumber is returned by arithmetic on a non-numeric operand.
var ErrNotNumber = errors.New("operand is not a number")

// ErrOverflow is returned when a 64-bit integer result cannot be represented.
var ErrOverflow = errors.New("integer overflow")

// numeric width order: int32 < int64 < double < decimal.
func width(v any) int {
	switch v.(type) {
	case int32, int:
		return 0
	case int64:
		return 1
	case float64:
		return 2
	case bson.Decimal128:
		return 3
	}
	return -1
}

// Add returns a+b with MongoDB's promotion: the wider operand type wins;
// int32 overflow widens to int64; int64 overflow is ErrOverflow.
func Add(a, b any) (any, error) { return arith(a, b, false) }

// Multiply returns a*b with the same promotion rules as Add.
func Multiply(a, b any) (any, error) { return arith(a, b, true) }

func arith(a, b any, mul bool) (any, error) {
	wa, wb := width(a), width(b)
	if wa < 0 || wb < 0 {
		return nil, ErrNotNumber
	}
	w := max(wa, wb)
	switch w {
	case 0, 1:
		x, _ := exactInt(a)
		y, _ := exactInt(b)
		var r int64
		var ok bool
		if mul {
			r, ok = mul64(x, y)
		} else {
			r, ok = add64(x, y)
		}
		if !ok {
			return nil, ErrOverflow
		}
		if w == 0 && r >= math.MinInt32 && r <= math.MaxInt32 {
			return int32(r), nil
		}
		return r, nil
	case 2:
		x, _ := ToFloat(a)
		y, _ := ToFloat(b)
		if mul {
			return x * y, nil
		}
		return x + y, nil
	}
	x, okx := ratOf(a)
	y, oky := ratOf(b)
	if !okx || !oky {
		return bson.NewDecimal128(0x7c00000000000000, 0), nil // NaN
	}
	var r big.Rat
	if mul {
		r.Mul(x, y)
	} else {
		r.Add(x, y)
	}
	d, err := bson.ParseDecimal128(r.FloatString(20))
	if err != nil {
		return nil, err
	}
	return d, nil
}

func add64(a, b int64) (int64, bool) {
	c := a + b
	if (c > a) == (b > 0) {
		return c, true
	}
	return c, b == 0
}

func mul64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	c := a * b
	if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return c, false
	}
	return c, true
}
