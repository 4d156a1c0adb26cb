package expr

import (
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

// Sum adds numbers as $sum, $avg and $add do: integers exactly, so that an
// int64 total that overflows only in an intermediate step is still a long
// when the final total fits (MongoDB's AccumulatorSum keeps a
// DoubleDoubleSummation and returns a long when it fitsLong); the result
// has the widest type added. Non-numbers are ignored. The zero value is an
// empty sum.
type Sum struct {
	n      int
	widest int // 0 int32, 1 int64, 2 double, 3 decimal
	ints   int64
	big    *big.Int // the integer total once it left int64
	other  any      // the double and decimal total
}

// Add adds v when it is a number.
func (s *Sum) Add(v any) {
	switch x := v.(type) {
	case int32:
		s.addInt(int64(x))
	case int64:
		s.widest = max(s.widest, 1)
		s.addInt(x)
	case float64, bson.Decimal128:
		w := 2
		if _, ok := x.(bson.Decimal128); ok {
			w = 3
		}
		s.widest = max(s.widest, w)
		if s.other == nil {
			s.other = v
		} else {
			s.other, _ = bsonkit.Add(s.other, v)
		}
	default:
		return
	}
	s.n++
}

func (s *Sum) addInt(x int64) {
	if s.big != nil {
		s.big.Add(s.big, big.NewInt(x))
		return
	}
	r := s.ints + x
	if (x > 0 && r < s.ints) || (x < 0 && r > s.ints) {
		s.big = new(big.Int).Add(big.NewInt(s.ints), big.NewInt(x))
		return
	}
	s.ints = r
}

// Count is the number of numbers added.
func (s *Sum) Count() int { return s.n }

// intTotal returns the integer total, and whether it fits an int64.
func (s *Sum) intTotal() (int64, bool) {
	if s.big == nil {
		return s.ints, true
	}
	if s.big.IsInt64() {
		return s.big.Int64(), true
	}
	return 0, false
}

func (s *Sum) intAsFloat() float64 {
	if s.big == nil {
		return float64(s.ints)
	}
	f, _ := new(big.Float).SetInt(s.big).Float64()
	return f
}

// Result is the total: int32 for int32 inputs that fit, int64 when the
// integer total fits, else a double; with doubles or decimals, their type.
func (s *Sum) Result() any {
	i, fits := s.intTotal()
	switch {
	case s.widest <= 1 && fits:
		if s.widest == 0 && i >= math.MinInt32 && i <= math.MaxInt32 {
			return int32(i)
		}
		return i
	case s.widest <= 1:
		return s.intAsFloat()
	}
	var ints any = i
	if !fits {
		ints = s.intAsFloat()
	}
	r, _ := bsonkit.Add(s.other, ints)
	return r
}

// Avg is the mean as a double, or null when no number was added.
func (s *Sum) Avg() any {
	if s.n == 0 {
		return nil
	}
	if s.widest == 3 {
		// As MongoDB's AccumulatorAvg: decimals average in decimal.
		avg, err := bsonkit.Divide(s.Result(), int64(s.n))
		if err == nil {
			return avg
		}
	}
	f, _ := bsonkit.ToFloat(s.Result())
	return f / float64(s.n)
}
