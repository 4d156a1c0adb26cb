package aggregate

import (
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/collation"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Server codes for $group errors.
const (
	codeGroupNotObject      int32 = 15947
	codeGroupNoID           int32 = 15955
	codeGroupUnknownAcc     int32 = 15952
	codeGroupNotAccumulator int32 = 40234
	codeGroupDottedField    int32 = 40235
	codeGroupOneAccumulator int32 = 40238
	codeGroupUnary          int32 = 40237
	codeGroupDollarField    int32 = 40236
)

// accumulator folds the values of one $group output field.
type accumulator interface {
	add(v any)
	result() any
}

// accumulators make an accumulator; str is the collation's string order.
var accumulators = map[string]func(str func(a, b string) int) accumulator{
	"$sum":      func(func(a, b string) int) accumulator { return &sumAcc{} },
	"$avg":      func(func(a, b string) int) accumulator { return &avgAcc{} },
	"$min":      func(str func(a, b string) int) accumulator { return &extremeAcc{dir: -1, str: str} },
	"$max":      func(str func(a, b string) int) accumulator { return &extremeAcc{dir: 1, str: str} },
	"$first":    func(func(a, b string) int) accumulator { return &firstAcc{} },
	"$last":     func(func(a, b string) int) accumulator { return &lastAcc{} },
	"$push":     func(func(a, b string) int) accumulator { return &pushAcc{set: false} },
	"$addToSet": func(str func(a, b string) int) accumulator { return &pushAcc{set: true, str: str} },
	"$count":    func(func(a, b string) int) accumulator { return &countAcc{} },
}

type sumAcc struct{ sum expr.Sum }

func (a *sumAcc) add(v any) {
	a.sum.Add(v)
}
func (a *sumAcc) result() any { return a.sum.Result() }

type avgAcc struct{ sum expr.Sum }

func (a *avgAcc) add(v any)   { a.sum.Add(v) }
func (a *avgAcc) result() any { return a.sum.Avg() }

type extremeAcc struct {
	dir  int
	best any
	set  bool
	str  func(a, b string) int
}

func (a *extremeAcc) add(v any) {
	if expr.Nullish(v) {
		return
	}
	if !a.set || a.dir*expr.CompareWith(v, a.best, a.str) > 0 {
		a.best, a.set = v, true
	}
}
func (a *extremeAcc) result() any { return a.best }

type firstAcc struct {
	v   any
	set bool
}

func (a *firstAcc) add(v any) {
	if !a.set {
		a.v, a.set = orNull(v), true
	}
}
func (a *firstAcc) result() any { return a.v }

type lastAcc struct{ v any }

func (a *lastAcc) add(v any)   { a.v = orNull(v) }
func (a *lastAcc) result() any { return a.v }

type pushAcc struct {
	set  bool
	vals bson.A
	str  func(a, b string) int
}

func (a *pushAcc) add(v any) {
	if expr.IsMissing(v) {
		return
	}
	if a.set && slices.ContainsFunc(a.vals, func(x any) bool { return bsonkit.CompareWith(x, v, a.str) == 0 }) {
		return
	}
	a.vals = append(a.vals, v)
}

func (a *pushAcc) result() any {
	if a.vals == nil {
		return bson.A{}
	}
	return a.vals
}

type countAcc struct{ n expr.Sum }

func (a *countAcc) add(any)     { a.n.Add(int32(1)) }
func (a *countAcc) result() any { return a.n.Result() }

func orNull(v any) any {
	if expr.IsMissing(v) {
		return nil
	}
	return v
}

type groupField struct {
	name string
	new  func(str func(a, b string) int) accumulator
	arg  expr.Expr
}

func parseGroup(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(codeGroupNotObject, "a group's fields must be specified in an object")
	}
	var id expr.Expr
	var fields []groupField
	for _, e := range d {
		if e.Key == "_id" {
			var err error
			if id, err = c.expr(e.Value); err != nil {
				return nil, err
			}
			continue
		}
		f, err := parseAccumulator(c, e)
		if err != nil {
			return nil, err
		}
		fields = append(fields, f)
	}
	if id == nil {
		return nil, merr.New(codeGroupNoID, "a group specification must include an _id")
	}
	return func(docs []bson.D) ([]bson.D, error) {
		type group struct {
			key  any
			accs []accumulator
		}
		var groups []*group
		index := map[string]*group{}
		for _, doc := range docs {
			k, err := id.Eval(doc)
			if err != nil {
				return nil, err
			}
			k = orNull(k)
			hk := groupKey(k, c.opts.Collation)
			g := index[hk]
			if g == nil {
				g = &group{key: k, accs: make([]accumulator, len(fields))}
				for i, f := range fields {
					g.accs[i] = f.new(c.str())
				}
				index[hk] = g
				groups = append(groups, g)
			}
			for i, f := range fields {
				v, err := f.arg.Eval(doc)
				if err != nil {
					return nil, err
				}
				g.accs[i].add(v)
			}
		}
		out := make([]bson.D, len(groups))
		for i, g := range groups {
			d := make(bson.D, 0, len(fields)+1)
			d = append(d, bson.E{Key: "_id", Value: g.key})
			for j, f := range fields {
				d = append(d, bson.E{Key: f.name, Value: g.accs[j].result()})
			}
			out[i] = d
		}
		return out, nil
	}, nil
}

func parseAccumulator(c *compiler, e bson.E) (groupField, error) {
	if strings.Contains(e.Key, ".") {
		return groupField{}, merr.New(codeGroupDottedField,
			"the group aggregate field name '%s' cannot be used because $group's field names cannot contain '.'", e.Key)
	}
	if strings.HasPrefix(e.Key, "$") {
		return groupField{}, merr.New(codeGroupDollarField, "the group aggregate field name '%s' cannot be an operator name", e.Key)
	}
	d, ok := e.Value.(bson.D)
	if !ok {
		return groupField{}, merr.New(codeGroupNotAccumulator, "The field '%s' must be an accumulator object", e.Key)
	}
	if len(d) != 1 {
		return groupField{}, merr.New(codeGroupOneAccumulator, "The field '%s' must specify one accumulator", e.Key)
	}
	name := d[0].Key
	newAcc, ok := accumulators[name]
	if !ok {
		return groupField{}, merr.New(codeGroupUnknownAcc, "Unknown group operator '%s'", name)
	}
	if _, isArray := d[0].Value.(bson.A); isArray {
		return groupField{}, merr.New(codeGroupUnary, "The %s accumulator is a unary operator", name)
	}
	arg, err := c.expr(d[0].Value)
	if name == "$count" {
		arg = expr.Constant(nil)
		if c, ok := d[0].Value.(bson.D); !ok || len(c) != 0 {
			return groupField{}, merr.New(merr.TypeMismatch, "$count takes no arguments, i.e. $count:{}")
		}
	}
	if err != nil {
		return groupField{}, err
	}
	return groupField{name: e.Key, new: newAcc, arg: arg}, nil
}

// groupKey encodes v so that values the server considers equal (1, 1.0 and
// 1L; null and missing) share a key.
func groupKey(v any, coll *collation.Collation) string {
	var b strings.Builder
	writeKey(&b, v, coll)
	return b.String()
}

// writeKey encodes v; strings by their collation key, so that strings the
// collation equates share a group.
func writeKey(b *strings.Builder, v any, coll *collation.Collation) {
	if expr.IsMissing(v) {
		v = nil
	}
	switch x := v.(type) {
	case nil, bson.Null, bson.Undefined:
		b.WriteString("null")
	case string:
		b.WriteString("s" + strconv.Quote(coll.Key(x)))
	case bson.Symbol:
		b.WriteString("s" + strconv.Quote(coll.Key(string(x))))
	case bson.D:
		b.WriteString("{")
		for _, e := range x {
			b.WriteString(strconv.Quote(e.Key) + ":")
			writeKey(b, e.Value, coll)
			b.WriteString(",")
		}
		b.WriteString("}")
	case bson.A:
		b.WriteString("[")
		for _, e := range x {
			writeKey(b, e, coll)
			b.WriteString(",")
		}
		b.WriteString("]")
	default:
		if bsonkit.IsNumber(v) {
			if n, ok := bsonkit.ToInt64(v); ok {
				b.WriteString("n" + strconv.FormatInt(n, 10))
				return
			}
			f, _ := bsonkit.ToFloat(v)
			b.WriteString("n" + strconv.FormatFloat(f, 'g', -1, 64))
			return
		}
		b.WriteString(bsonkit.TypeAlias(v) + ":" + bsonkit.FormatValue(v))
	}
}
