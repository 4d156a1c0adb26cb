// Package bsonkit holds the value semantics that MongoDB's query, update and
// aggregation languages share: BSON's cross-type comparison order, numeric
// arithmetic with MongoDB's type promotion, and small helpers over bson.D.
//
// Values are what bson.Unmarshal into bson.D yields in mongo-driver v2:
// int32, int64, float64, string, bson.D, bson.A, bson.Binary, bson.ObjectID,
// bool, bson.DateTime, nil (null), bson.Regex, bson.Timestamp,
// bson.Decimal128, bson.MinKey, bson.MaxKey, bson.Undefined, bson.JavaScript,
// bson.Symbol, bson.CodeWithScope and bson.DBPointer.
package bsonkit

import (
	"bytes"
	"math"
	"math/big"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Canonical type ranks, in MongoDB's comparison order.
const (
	rankMinKey = iota
	rankNull   // null and undefined compare equal
	rankNumber
	rankString // string and symbol
	rankObject
	rankArray
	rankBinary
	rankObjectID
	rankBool
	rankDate
	rankTimestamp
	rankRegex
	rankDBPointer
	rankJavaScript
	rankCodeWithScope
	rankMaxKey
)

// TypeRank returns v's canonical rank in MongoDB's cross-type sort order.
func TypeRank(v any) int {
	switch v.(type) {
	case bson.MinKey:
		return rankMinKey
	case nil, bson.Null, bson.Undefined:
		return rankNull
	case int32, int64, float64, bson.Decimal128, int:
		return rankNumber
	case string, bson.Symbol:
		return rankString
	case bson.D, bson.M:
		return rankObject
	case bson.A, []any:
		return rankArray
	case bson.Binary:
		return rankBinary
	case bson.ObjectID:
		return rankObjectID
	case bool:
		return rankBool
	case bson.DateTime:
		return rankDate
	case bson.Timestamp:
		return rankTimestamp
	case bson.Regex:
		return rankRegex
	case bson.DBPointer:
		return rankDBPointer
	case bson.JavaScript:
		return rankJavaScript
	case bson.CodeWithScope:
		return rankCodeWithScope
	case bson.MaxKey:
		return rankMaxKey
	}
	return rankMaxKey
}

// TypeAlias returns the $type alias of v ("double", "string", "object", ...).
func TypeAlias(v any) string {
	switch v.(type) {
	case float64:
		return "double"
	case string:
		return "string"
	case bson.D, bson.M:
		return "object"
	case bson.A, []any:
		return "array"
	case bson.Binary:
		return "binData"
	case bson.Undefined:
		return "undefined"
	case bson.ObjectID:
		return "objectId"
	case bool:
		return "bool"
	case bson.DateTime:
		return "date"
	case nil, bson.Null:
		return "null"
	case bson.Regex:
		return "regex"
	case bson.DBPointer:
		return "dbPointer"
	case bson.JavaScript:
		return "javascript"
	case bson.Symbol:
		return "symbol"
	case bson.CodeWithScope:
		return "javascriptWithScope"
	case int32, int:
		return "int"
	case bson.Timestamp:
		return "timestamp"
	case int64:
		return "long"
	case bson.Decimal128:
		return "decimal"
	case bson.MinKey:
		return "minKey"
	case bson.MaxKey:
		return "maxKey"
	}
	return "unknown"
}

// TypeCode returns the BSON type byte of v, as $type numbers it.
func TypeCode(v any) int32 {
	switch v.(type) {
	case float64:
		return 1
	case string:
		return 2
	case bson.D, bson.M:
		return 3
	case bson.A, []any:
		return 4
	case bson.Binary:
		return 5
	case bson.Undefined:
		return 6
	case bson.ObjectID:
		return 7
	case bool:
		return 8
	case bson.DateTime:
		return 9
	case nil, bson.Null:
		return 10
	case bson.Regex:
		return 11
	case bson.DBPointer:
		return 12
	case bson.JavaScript:
		return 13
	case bson.Symbol:
		return 14
	case bson.CodeWithScope:
		return 15
	case int32, int:
		return 16
	case bson.Timestamp:
		return 17
	case int64:
		return 18
	case bson.Decimal128:
		return 19
	case bson.MinKey:
		return -1
	case bson.MaxKey:
		return 127
	}
	return 0
}

// IsNumber reports whether v is a BSON number.
func IsNumber(v any) bool { return TypeRank(v) == rankNumber }

// ToFloat converts a BSON number to float64.
func ToFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	case bson.Decimal128:
		f, err := decimalFloat(n)
		return f, err == nil
	}
	return 0, false
}

// ToInt64 converts a BSON number with an exact integral value to int64.
func ToInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		if n != math.Trunc(n) || n < -9.223372036854776e18 || n >= 9.223372036854776e18 {
			return 0, false
		}
		return int64(n), true
	case bson.Decimal128:
		r, ok := decimalRat(n)
		if !ok || !r.IsInt() || !r.Num().IsInt64() {
			return 0, false
		}
		return r.Num().Int64(), true
	}
	return 0, false
}

func decimalFloat(d bson.Decimal128) (float64, error) {
	if d.IsNaN() {
		return math.NaN(), nil
	}
	if s := d.IsInf(); s != 0 {
		return math.Inf(s), nil
	}
	r, _ := decimalRat(d)
	f, _ := r.Float64()
	return f, nil
}

func decimalRat(d bson.Decimal128) (*big.Rat, bool) {
	if d.IsNaN() || d.IsInf() != 0 {
		return nil, false
	}
	bi, exp, err := d.BigInt()
	if err != nil {
		return nil, false
	}
	r := new(big.Rat).SetInt(bi)
	if exp > 0 {
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	} else if exp < 0 {
		r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil)))
	}
	return r, true
}

// compareNumbers orders two BSON numbers by value; NaN sorts below all numbers.
func compareNumbers(a, b any) int {
	if ai, ok := exactInt(a); ok {
		if bi, ok := exactInt(b); ok {
			return cmp3(ai, bi)
		}
	}
	_, aDec := a.(bson.Decimal128)
	_, bDec := b.(bson.Decimal128)
	if aDec || bDec {
		if ar, ok := ratOf(a); ok {
			if br, ok := ratOf(b); ok {
				return ar.Cmp(br)
			}
		}
	}
	af, _ := ToFloat(a)
	bf, _ := ToFloat(b)
	switch {
	case math.IsNaN(af) && math.IsNaN(bf):
		return 0
	case math.IsNaN(af):
		return -1
	case math.IsNaN(bf):
		return 1
	}
	// Compare a double against an int64 without losing int64 precision.
	if ai, ok := exactInt(a); ok && !math.IsInf(bf, 0) {
		return -compareFloatInt(bf, ai)
	}
	if bi, ok := exactInt(b); ok && !math.IsInf(af, 0) {
		return compareFloatInt(af, bi)
	}
	return cmp3(af, bf)
}

func compareFloatInt(f float64, i int64) int {
	if f < -9.223372036854776e18 {
		return -1
	}
	if f >= 9.223372036854776e18 {
		return 1
	}
	t := int64(math.Trunc(f))
	if t != i {
		return cmp3(t, i)
	}
	return cmp3(f-math.Trunc(f), 0)
}

func exactInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

// Rat returns the exact value of a finite BSON number.
func Rat(v any) (*big.Rat, bool) { return ratOf(v) }

func ratOf(v any) (*big.Rat, bool) {
	switch n := v.(type) {
	case bson.Decimal128:
		return decimalRat(n)
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(n), true
	}
	if i, ok := exactInt(v); ok {
		return new(big.Rat).SetInt64(i), true
	}
	return nil, false
}

func cmp3[T int64 | float64 | string | uint32](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Compare orders a and b as MongoDB does: by canonical type rank first, then
// by value; numbers compare by value across int32, int64, double and decimal.
func Compare(a, b any) int { return CompareWith(a, b, nil) }

// CompareWith is Compare with string values (also inside documents and
// arrays, but not field names) ordered by str, a collation; nil is binary.
func CompareWith(a, b any, str func(a, b string) int) int {
	ra, rb := TypeRank(a), TypeRank(b)
	if ra != rb {
		return cmp3(int64(ra), int64(rb))
	}
	switch ra {
	case rankMinKey, rankNull, rankMaxKey:
		return 0
	case rankNumber:
		return compareNumbers(a, b)
	case rankString:
		if str != nil {
			return str(stringOf(a), stringOf(b))
		}
		return strings.Compare(stringOf(a), stringOf(b))
	case rankObject:
		return compareDocs(asDoc(a), asDoc(b), str)
	case rankArray:
		return compareArrays(asArray(a), asArray(b), str)
	case rankBinary:
		x, y := a.(bson.Binary), b.(bson.Binary)
		if len(x.Data) != len(y.Data) {
			return cmp3(int64(len(x.Data)), int64(len(y.Data)))
		}
		if x.Subtype != y.Subtype {
			return cmp3(int64(x.Subtype), int64(y.Subtype))
		}
		return bytes.Compare(x.Data, y.Data)
	case rankObjectID:
		x, y := a.(bson.ObjectID), b.(bson.ObjectID)
		return bytes.Compare(x[:], y[:])
	case rankBool:
		x, y := a.(bool), b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case rankDate:
		return cmp3(int64(a.(bson.DateTime)), int64(b.(bson.DateTime)))
	case rankTimestamp:
		x, y := a.(bson.Timestamp), b.(bson.Timestamp)
		if x.T != y.T {
			return cmp3(x.T, y.T)
		}
		return cmp3(x.I, y.I)
	case rankRegex:
		x, y := a.(bson.Regex), b.(bson.Regex)
		if c := strings.Compare(x.Pattern, y.Pattern); c != 0 {
			return c
		}
		return strings.Compare(x.Options, y.Options)
	case rankDBPointer:
		x, y := a.(bson.DBPointer), b.(bson.DBPointer)
		if c := strings.Compare(x.DB, y.DB); c != 0 {
			return c
		}
		return bytes.Compare(x.Pointer[:], y.Pointer[:])
	case rankJavaScript:
		return strings.Compare(string(a.(bson.JavaScript)), string(b.(bson.JavaScript)))
	case rankCodeWithScope:
		x, y := a.(bson.CodeWithScope), b.(bson.CodeWithScope)
		return strings.Compare(string(x.Code), string(y.Code))
	}
	return 0
}

// Equal reports whether MongoDB considers a and b equal (1 == 1.0 == 1L).
func Equal(a, b any) bool { return Compare(a, b) == 0 }

func stringOf(v any) string {
	if s, ok := v.(bson.Symbol); ok {
		return string(s)
	}
	return v.(string)
}

func asDoc(v any) bson.D {
	switch d := v.(type) {
	case bson.D:
		return d
	case bson.M:
		out := make(bson.D, 0, len(d))
		for k, x := range d {
			out = append(out, bson.E{Key: k, Value: x})
		}
		return out
	}
	return nil
}

func asArray(v any) bson.A {
	switch a := v.(type) {
	case bson.A:
		return a
	case []any:
		return bson.A(a)
	}
	return nil
}

func compareDocs(a, b bson.D, str func(a, b string) int) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		// MongoDB compares the type of each field, then its name, then its value.
		if c := cmp3(int64(TypeRank(a[i].Value)), int64(TypeRank(b[i].Value))); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Key, b[i].Key); c != 0 {
			return c
		}
		if c := CompareWith(a[i].Value, b[i].Value, str); c != 0 {
			return c
		}
	}
	return cmp3(int64(len(a)), int64(len(b)))
}

func compareArrays(a, b bson.A, str func(a, b string) int) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := CompareWith(a[i], b[i], str); c != 0 {
			return c
		}
	}
	return cmp3(int64(len(a)), int64(len(b)))
}
