package engine

import (
	"encoding/binary"
	"math"
	"math/big"
	"strconv"
	"strings"

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
	var b strings.Builder
	writeKey(&b, v, str)
	return b.String()
}

func writeKey(b *strings.Builder, v any, str func(string) string) {
	b.WriteByte(byte(bsonkit.TypeRank(v)))
	switch x := v.(type) {
	case bson.Undefined:
		// Undefined ranks with null for queries but is a key of its own
		// (BSON orders it before null): an empty array's index key.
		b.WriteByte('u')
	case nil, bson.Null, bson.MinKey, bson.MaxKey:
	case int32, int64, int, float64, bson.Decimal128:
		writeNumberKey(b, x)
	case string:
		if str != nil {
			x = str(x)
		}
		writeString(b, x)
	case bson.Symbol:
		writeString(b, string(x))
	case bson.D:
		b.WriteByte('{')
		for _, e := range x {
			b.WriteString(e.Key)
			b.WriteByte(0)
			writeKey(b, e.Value, str)
		}
		b.WriteByte('}')
	case bson.A:
		b.WriteByte('[')
		for _, e := range x {
			writeKey(b, e, str)
		}
		b.WriteByte(']')
	case bson.ObjectID:
		b.Write(x[:])
	case bool:
		if x {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	case bson.DateTime:
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(x))
		b.Write(buf[:])
	case bson.Binary:
		b.WriteByte(x.Subtype)
		b.WriteString(strconv.Itoa(len(x.Data)))
		b.WriteByte(':')
		b.Write(x.Data)
	default:
		// Rare types: their printed form is exact enough for equality.
		raw, err := bson.Marshal(bson.D{{Key: "v", Value: x}})
		if err == nil {
			b.Write(raw)
		}
	}
}

// writeString writes s length-first: strings may hold any byte, NUL too,
// so no terminator could end them unambiguously.
func writeString(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}

func writeNumberKey(b *strings.Builder, v any) {
	if i, ok := bsonkit.ToInt64(v); ok {
		var buf [20]byte
		b.WriteByte('i')
		b.Write(strconv.AppendInt(buf[:0], i, 10))
		return
	}
	if d, ok := v.(bson.Decimal128); ok {
		// NaN and the infinities equal their double counterparts, as in
		// MongoDB's KeyString, so a unique index sees them as duplicates.
		switch {
		case d.IsNaN():
			writeFloatKey(b, math.NaN())
			return
		case d.IsInf() != 0:
			writeFloatKey(b, math.Inf(d.IsInf()))
			return
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
				writeFloatKey(b, f)
				return
			}
			b.WriteByte('r')
			b.WriteString(r.RatString())
			return
		}
		b.WriteByte('d')
		b.WriteString(d.String())
		return
	}
	f, _ := bsonkit.ToFloat(v)
	writeFloatKey(b, f)
}

func writeFloatKey(b *strings.Builder, f float64) {
	if math.IsNaN(f) {
		b.WriteString("nan")
		return
	}
	if f == math.Trunc(f) && f >= -9.223372036854776e18 && f < 9.223372036854776e18 {
		b.WriteByte('i')
		b.WriteString(strconv.FormatInt(int64(f), 10))
		return
	}
	b.WriteByte('f')
	b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
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
