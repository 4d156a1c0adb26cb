package bsonkit

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"

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
	// Decimal: exact coefficient and exponent arithmetic, as IEEE 754
	// decimal128 (1 + 2 is 3, 1.0 × 2 is 2.0), rounded to 34 digits.
	if r, special := decimalSpecial(a, b, mul); special {
		return r, nil
	}
	ca, ea, okA := decimalParts(a)
	cb, eb, okB := decimalParts(b)
	if !okA || !okB {
		return decimalNaN, nil
	}
	var c big.Int
	e := ea + eb
	if mul {
		c.Mul(ca, cb)
	} else {
		e = min(ea, eb)
		ten := big.NewInt(10)
		x := new(big.Int).Mul(ca, new(big.Int).Exp(ten, big.NewInt(int64(ea-e)), nil))
		y := new(big.Int).Mul(cb, new(big.Int).Exp(ten, big.NewInt(int64(eb-e)), nil))
		c.Add(x, y)
	}
	return decimalQuotient(&c, e, big.NewInt(1), 0)
}

var (
	decimalNaN    = bson.NewDecimal128(0x7c00000000000000, 0)
	decimalInf    = bson.NewDecimal128(0x7800000000000000, 0)
	decimalNegInf = bson.NewDecimal128(0xf800000000000000, 0)
)

// infSign is +1 or -1 for an infinite operand (decimal or double), else 0;
// nan reports a NaN operand.
func infSign(v any) (sign int, nan bool) {
	switch x := v.(type) {
	case bson.Decimal128:
		return x.IsInf(), x.IsNaN()
	case float64:
		switch {
		case math.IsNaN(x):
			return 0, true
		case math.IsInf(x, 1):
			return 1, false
		case math.IsInf(x, -1):
			return -1, false
		}
	}
	return 0, false
}

// decimalSpecial is IEEE 754's answer when an operand of a decimal sum or
// product is NaN or infinite: NaN for NaN, ∞ - ∞ and ∞ × 0, else the
// signed infinity.
func decimalSpecial(a, b any, mul bool) (bson.Decimal128, bool) {
	sa, nanA := infSign(a)
	sb, nanB := infSign(b)
	switch {
	case nanA || nanB:
		return decimalNaN, true
	case sa == 0 && sb == 0:
		return bson.Decimal128{}, false
	}
	sign := sa + sb
	if mul {
		za, _ := ToFloat(a)
		zb, _ := ToFloat(b)
		if (sa == 0 && za == 0) || (sb == 0 && zb == 0) {
			return decimalNaN, true
		}
		sign = signOf(a) * signOf(b)
	}
	switch {
	case sign > 0:
		return decimalInf, true
	case sign < 0:
		return decimalNegInf, true
	}
	return decimalNaN, true // ∞ - ∞
}

// signOf is -1 for a negative number (or -∞), else 1.
func signOf(v any) int {
	if s, _ := infSign(v); s != 0 {
		return s
	}
	if d, ok := v.(bson.Decimal128); ok {
		c, _, err := d.BigInt()
		if err == nil && c.Sign() < 0 {
			return -1
		}
		return 1
	}
	if f, _ := ToFloat(v); f < 0 {
		return -1
	}
	return 1
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

// decimalDigits is decimal128's precision: 34 significant digits.
const decimalDigits = 34

// Divide is a / b as MongoDB divides: in decimal128 when either is a
// decimal (an exact quotient at the ideal exponent, else 34 significant
// digits rounded half to even), else in double. b must not be zero.
func Divide(a, b any) (any, error) {
	_, da := a.(bson.Decimal128)
	_, db := b.(bson.Decimal128)
	if !da && !db {
		x, _ := ToFloat(a)
		y, _ := ToFloat(b)
		return x / y, nil
	}
	ca, ea, okA := decimalParts(a)
	cb, eb, okB := decimalParts(b)
	if !okA || !okB || cb.Sign() == 0 {
		return bson.NewDecimal128(0x7c00000000000000, 0), nil // NaN
	}
	return decimalQuotient(ca, ea, cb, eb)
}

// decimalParts returns v as coefficient × 10^exponent; a double is taken
// to 15 significant digits, as MongoDB converts one to decimal.
func decimalParts(v any) (*big.Int, int, bool) {
	switch x := v.(type) {
	case bson.Decimal128:
		c, e, err := x.BigInt()
		return c, e, err == nil
	case int32:
		return big.NewInt(int64(x)), 0, true
	case int64:
		return big.NewInt(x), 0, true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, 0, false
		}
		c, e, err := DecimalFromDouble(x).BigInt()
		return c, e, err == nil
	}
	return nil, 0, false
}

// DecimalFromDouble converts f as MongoDB converts a double to decimal
// (Decimal128(double) with its default kRoundTo15Digits,
// src/mongo/platform/decimal128.cpp): exactly 15 significant digits,
// rounded half to even from f's exact binary value, so 1.1 is
// 1.10000000000000 and 100000 is 100000.000000000. Zeros, infinities and
// NaN convert unchanged.
func DecimalFromDouble(f float64) bson.Decimal128 {
	switch {
	case math.IsNaN(f):
		return bson.NewDecimal128(0x7c00000000000000, 0)
	case math.IsInf(f, 1):
		return bson.NewDecimal128(0x7800000000000000, 0)
	case math.IsInf(f, -1):
		return bson.NewDecimal128(0xf800000000000000, 0)
	case f == 0:
		if math.Signbit(f) {
			return bson.NewDecimal128(0xb040000000000000, 0) // -0E+0
		}
		return bson.NewDecimal128(0x3040000000000000, 0) // 0E+0
	}
	// 'e' with 14 decimals is d.dddddddddddddde±x: 15 significant digits,
	// correctly rounded; the coefficient is those digits, the exponent x-14.
	s := strconv.FormatFloat(f, 'e', 14, 64)
	mant, exp, _ := strings.Cut(s, "e")
	e, _ := strconv.Atoi(exp)
	d, _ := bson.ParseDecimal128(strings.Replace(mant, ".", "", 1) + "E" + strconv.Itoa(e-14))
	return d
}

func decimalQuotient(ca *big.Int, ea int, cb *big.Int, eb int) (any, error) {
	neg := ca.Sign()*cb.Sign() < 0
	num := new(big.Int).Abs(ca)
	den := new(big.Int).Abs(cb)
	exp := ea - eb
	ten := big.NewInt(10)
	limit := new(big.Int).Exp(ten, big.NewInt(decimalDigits), nil) // 10^34
	q, r := new(big.Int), new(big.Int)
	// Exact: the fewest extra digits that divide evenly, within 34 digits.
	for {
		q.QuoRem(num, den, r)
		if r.Sign() == 0 || q.Cmp(limit) >= 0 {
			break
		}
		num.Mul(num, ten)
		exp--
	}
	if r.Sign() != 0 || q.Cmp(limit) >= 0 {
		// Inexact (or too long): keep 34 digits, rounding half to even
		// on the dropped digits and the remainder.
		drop := len(q.String()) - decimalDigits
		rest := new(big.Int)
		if drop > 0 {
			p := new(big.Int).Exp(ten, big.NewInt(int64(drop)), nil)
			q.QuoRem(q, p, rest)
			half := new(big.Int).Quo(p, big.NewInt(2))
			c := rest.Cmp(half)
			if c > 0 || (c == 0 && (r.Sign() != 0 || q.Bit(0) == 1)) {
				q.Add(q, big.NewInt(1))
			}
			exp += drop
		} else {
			twice := new(big.Int).Mul(r, big.NewInt(2))
			c := twice.Cmp(den)
			if c > 0 || (c == 0 && q.Bit(0) == 1) {
				q.Add(q, big.NewInt(1))
			}
		}
	}
	return decimalFromParts(neg, q, exp, r.Sign() != 0), nil
}

// decimal128's exponent range for an integer coefficient of up to 34
// digits (IEEE 754-2008: emax 6144, emin -6143).
const (
	decimalMaxExp = 6111
	decimalMinExp = -6176
)

// decimalFromParts is ±q × 10^exp (q at most 34 digits, inexact when a
// remainder was dropped) as a decimal128, as the BID library rounds a
// result to the format: an exponent above the range is absorbed by
// trailing zeros when they fit, else the result overflows to ±Infinity;
// below the range, digits are dropped rounding half to even, down to ±0.
func decimalFromParts(neg bool, q *big.Int, exp int, inexact bool) bson.Decimal128 {
	ten := big.NewInt(10)
	if exp > decimalMaxExp && q.Sign() != 0 {
		p := new(big.Int).Exp(ten, big.NewInt(int64(exp-decimalMaxExp)), nil)
		padded := new(big.Int).Mul(q, p)
		if len(padded.String()) > decimalDigits {
			if neg {
				return bson.NewDecimal128(0xf800000000000000, 0)
			}
			return bson.NewDecimal128(0x7800000000000000, 0)
		}
		q, exp = padded, decimalMaxExp
	}
	if exp > decimalMaxExp { // zero: clamp the exponent
		exp = decimalMaxExp
	}
	if exp < decimalMinExp {
		drop := decimalMinExp - exp
		q = new(big.Int).Set(q)
		if drop > decimalDigits+1 {
			// Everything is dropped and the rest is below half an ulp.
			q.SetInt64(0)
		} else {
			p := new(big.Int).Exp(ten, big.NewInt(int64(drop)), nil)
			rest := new(big.Int)
			q.QuoRem(q, p, rest)
			half := new(big.Int).Quo(p, big.NewInt(2))
			c := rest.Cmp(half)
			if c > 0 || (c == 0 && (inexact || q.Bit(0) == 1)) {
				q.Add(q, big.NewInt(1))
			}
		}
		exp = decimalMinExp
	}
	s := q.String()
	if neg {
		s = "-" + s
	}
	d, err := bson.ParseDecimal128(s + "E" + strconv.Itoa(exp))
	if err != nil { // cannot happen: q and exp are in range
		return bson.NewDecimal128(0x7c00000000000000, 0)
	}
	return d
}
