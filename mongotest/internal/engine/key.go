package engine

import (
	"encoding/binary"
	"math"
	"math/big"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

// keyOf encodes v so that values MongoDB considers equal (1, 1.0, 1L) get
// the same key. It is used for _id lookup and index keys, never for order.
func keyOf(v any) string {
	return keyWith(v, nil)
}

// keyWith is keyOf with every string, at any depth, replaced by str's key
// for it: an index with a collation keys strings by their collation key,
// as MongoDB's CollationIndexKey does. A nil str keeps strings as they are.
func keyWith(v any, str func(string) string) string {
	var arr [64]byte
	return string(appendKey(arr[:0], v, str))
}

// lookupKey returns the record of c keyed by keyOf(v), building the key
// on the stack (a map lookup by string(bytes) does not allocate): a find
// by _id costs no key.
func (c *collection) lookupKey(v any) *record {
	var arr [64]byte
	return c.records[string(appendKey(arr[:0], v, nil))]
}

func appendKey(b []byte, v any, str func(string) string) []byte {
	b = append(b, byte(bsonkit.TypeRank(v)))
	switch x := v.(type) {
	case bson.Undefined:
		// Undefined ranks with null for queries but is a key of its own
		// (BSON orders it before null): an empty array's index key.
		b = append(b, 'u')
	case nil, bson.Null, bson.MinKey, bson.MaxKey:
	case int32, int64, int, float64, bson.Decimal128:
		b = appendNumberKey(b, x)
	case string:
		if str != nil {
			x = str(x)
		}
		b = appendString(b, x)
	case bson.Symbol:
		b = appendString(b, string(x))
	case bson.D:
		b = append(b, '{')
		for _, e := range x {
			b = append(b, e.Key...)
			b = append(b, 0)
			b = appendKey(b, e.Value, str)
		}
		b = append(b, '}')
	case bson.A:
		b = append(b, '[')
		for _, e := range x {
			b = appendKey(b, e, str)
		}
		b = append(b, ']')
	case bson.ObjectID:
		b = append(b, x[:]...)
	case bool:
		if x {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	case bson.DateTime:
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(x))
		b = append(b, buf[:]...)
	case bson.Binary:
		b = append(b, x.Subtype)
		b = append(b, strconv.Itoa(len(x.Data))...)
		b = append(b, ':')
		b = append(b, x.Data...)
	default:
		// Rare types: their printed form is exact enough for equality.
		raw, err := bson.Marshal(bson.D{{Key: "v", Value: x}})
		if err == nil {
			b = append(b, raw...)
		}
	}
	return b
}

// appendString appends s length-first: strings may hold any byte, NUL too,
// so no terminator could end them unambiguously.
func appendString(b []byte, s string) []byte {
	b = append(b, strconv.Itoa(len(s))...)
	b = append(b, ':')
	return append(b, s...)
}

func appendNumberKey(b []byte, v any) []byte {
	if i, ok := bsonkit.ToInt64(v); ok {
		var buf [20]byte
		b = append(b, 'i')
		return append(b, strconv.AppendInt(buf[:0], i, 10)...)
	}
	if d, ok := v.(bson.Decimal128); ok {
		// NaN and the infinities equal their double counterparts, as in
		// MongoDB's KeyString, so a unique index sees them as duplicates.
		switch {
		case d.IsNaN():
			return appendFloatKey(b, math.NaN())
		case d.IsInf() != 0:
			return appendFloatKey(b, math.Inf(d.IsInf()))
		}
		// Non-integral decimals equal a double only when exactly representable.
		if bi, exp, err := d.BigInt(); err == nil {
			r := new(big.Rat).SetInt(bi)
			scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil)
			if exp < 0 {
				r.Quo(r, new(big.Rat).SetInt(scale))
			} else {
				r.Mul(r, new(big.Rat).SetInt(scale))
			}
			if f, exact := r.Float64(); exact {
				return appendFloatKey(b, f)
			}
			b = append(b, 'r')
			return append(b, r.RatString()...)
		}
		b = append(b, 'd')
		return append(b, d.String()...)
	}
	f, _ := bsonkit.ToFloat(v)
	return appendFloatKey(b, f)
}

func appendFloatKey(b []byte, f float64) []byte {
	if math.IsNaN(f) {
		return append(b, "nan"...)
	}
	if f == math.Trunc(f) && f >= -9.223372036854776e18 && f < 9.223372036854776e18 {
		b = append(b, 'i')
		return append(b, strconv.FormatInt(int64(f), 10)...)
	}
	b = append(b, 'f')
	return append(b, strconv.FormatFloat(f, 'g', -1, 64)...)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// lookup resolves a dotted path for index keys: arrays along the path
// expand to their elements (multikey), numeric components index arrays.
// An empty array, at the end of the path or along it, yields undefined,
// as MongoDB's btree key generator ("x : [] - need to insert undefined"),
// so it is a key apart from null and missing.
func lookup(v any, path []string) []any {
	if len(path) == 0 {
		if a, ok := v.(bson.A); ok {
			if len(a) == 0 {
				return []any{bson.Undefined{}}
			}
			return a
		}
		return []any{v}
	}
	switch x := v.(type) {
	case bson.D:
		f, ok := bsonkit.Get(x, path[0])
		if !ok {
			return nil
		}
		return lookup(f, path[1:])
	case bson.A:
		if i, err := strconv.Atoi(path[0]); err == nil && i >= 0 {
			if i < len(x) {
				return lookup(x[i], path[1:])
			}
			return nil
		}
		if len(x) == 0 {
			return []any{bson.Undefined{}}
		}
		var out []any
		for _, e := range x {
			if _, ok := e.(bson.D); ok {
				out = append(out, lookup(e, path)...)
			}
		}
		return out
	}
	return nil
}
