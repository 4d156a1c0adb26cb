package query

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// ej parses canonical/relaxed Extended JSON into a bson.D, the shape the
// server sees after bson.Unmarshal.
func ej(t testing.TB, s string) bson.D {
	t.Helper()
	var d bson.D
	require.NoError(t, bson.UnmarshalExtJSON([]byte(s), false, &d), s)
	return d
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		doc    string
		want   bool
	}{
		// Empty filter and plain equality.
		{"empty filter matches anything", `{}`, `{"a": 1}`, true},
		{"equality matches same value", `{"a": 1}`, `{"a": 1}`, true},
		{"equality rejects other value", `{"a": 1}`, `{"a": 2}`, false},
		{"equality rejects missing field", `{"a": 1}`, `{"b": 1}`, false},
		{"int equals double", `{"a": 1}`, `{"a": 1.0}`, true},
		{"int equals long", `{"a": 1}`, `{"a": {"$numberLong": "1"}}`, true},
		{"int equals decimal", `{"a": 1}`, `{"a": {"$numberDecimal": "1.0"}}`, true},
		{"decimal equals double", `{"a": {"$numberDecimal": "1"}}`, `{"a": 1.0}`, true},
		{"number never equals string", `{"a": 1}`, `{"a": "1"}`, false},
		{"document equality is ordered", `{"a": {"x": 1, "y": 2}}`, `{"a": {"y": 2, "x": 1}}`, false},
		{"document equality matches exactly", `{"a": {"x": 1, "y": 2}}`, `{"a": {"x": 1, "y": 2.0}}`, true},
		{"NaN equals NaN", `{"a": {"$eq": {"$numberDouble": "NaN"}}}`, `{"a": {"$numberDouble": "NaN"}}`, true},

		// $expr compares fields of the same document.
		{"expr compares two fields", `{"$expr": {"$gt": ["$spent", "$budget"]}}`, `{"spent": 5, "budget": 3}`, true},
		{"expr is false when the comparison is", `{"$expr": {"$gt": ["$spent", "$budget"]}}`, `{"spent": 1, "budget": 3}`, false},
		{"expr combines with field filters", `{"a": 1, "$expr": {"$eq": ["$a", "$b"]}}`, `{"a": 1, "b": 1.0}`, true},
		{"expr truthiness of a number", `{"$expr": "$n"}`, `{"n": 0}`, false},

		// Arrays.
		{"scalar matches array element", `{"a": 5}`, `{"a": [1, 5]}`, true},
		{"scalar misses array without it", `{"a": 7}`, `{"a": [1, 5]}`, false},
		{"array matches whole array", `{"a": [1, 5]}`, `{"a": [1, 5]}`, true},
		{"array order matters", `{"a": [5, 1]}`, `{"a": [1, 5]}`, false},
		{"array matches nested element", `{"a": [1, 5]}`, `{"a": [0, [1, 5]]}`, true},
		{"scalar does not reach nested arrays", `{"a": 1}`, `{"a": [[1]]}`, false},
		{"gt matches any element", `{"a": {"$gt": 4}}`, `{"a": [1, 5]}`, true},
		{"gt and lt may use different elements", `{"a": {"$gt": 4, "$lt": 2}}`, `{"a": [1, 5]}`, true},
		{"elemMatch needs one element for both", `{"a": {"$elemMatch": {"$gt": 4, "$lt": 2}}}`, `{"a": [1, 5]}`, false},
		{"elemMatch value form", `{"a": {"$elemMatch": {"$gt": 1, "$lt": 6}}}`, `{"a": [1, 5]}`, true},
		{"elemMatch document form", `{"a": {"$elemMatch": {"b": 1, "c": 2}}}`, `{"a": [{"b": 1}, {"b": 1, "c": 2}]}`, true},
		{"elemMatch document form needs one element", `{"a": {"$elemMatch": {"b": 1, "c": 2}}}`, `{"a": [{"b": 1}, {"c": 2}]}`, false},
		{"elemMatch ignores non-arrays", `{"a": {"$elemMatch": {"$eq": 1}}}`, `{"a": 1}`, false},
		{"elemMatch with $or inside", `{"a": {"$elemMatch": {"$or": [{"b": 1}, {"c": 1}]}}}`, `{"a": [{"c": 1}]}`, true},
		{"elemMatch with $ne in value form", `{"a": {"$elemMatch": {"$ne": 1}}}`, `{"a": [1, 2]}`, true},
		{"gt compares whole arrays too", `{"a": {"$gt": [1]}}`, `{"a": [2]}`, true},

		// $ne and $nin.
		{"ne rejects array containing value", `{"a": {"$ne": 5}}`, `{"a": [1, 5]}`, false},
		{"ne matches array without value", `{"a": {"$ne": 5}}`, `{"a": [1, 2]}`, true},
		{"ne matches missing field", `{"a": {"$ne": 5}}`, `{}`, true},
		{"ne null rejects missing", `{"a": {"$ne": null}}`, `{}`, false},
		{"ne null matches value", `{"a": {"$ne": null}}`, `{"a": 0}`, true},
		{"nin rejects listed element", `{"a": {"$nin": [1, 2]}}`, `{"a": [2, 3]}`, false},
		{"nin matches missing field", `{"a": {"$nin": [1, 2]}}`, `{}`, true},

		// $in.
		{"in matches listed value", `{"a": {"$in": [1, 2]}}`, `{"a": 2.0}`, true},
		{"in misses unlisted value", `{"a": {"$in": [1, 2]}}`, `{"a": 3}`, false},
		{"in matches array element", `{"a": {"$in": [3, 9]}}`, `{"a": [1, 9]}`, true},
		{"in matches whole array", `{"a": {"$in": [[1, 9]]}}`, `{"a": [1, 9]}`, true},
		{"in with regex", `{"a": {"$in": [{"$regularExpression": {"pattern": "^x", "options": ""}}]}}`, `{"a": "xyz"}`, true},
		{"in with null matches missing", `{"a": {"$in": [null]}}`, `{}`, true},
		{"empty in matches nothing", `{"a": {"$in": []}}`, `{"a": 1}`, false},
		{"in mixes types", `{"a": {"$in": ["x", 1, true]}}`, `{"a": true}`, true},

		// Null and missing.
		{"null matches missing", `{"a": null}`, `{}`, true},
		{"null matches null", `{"a": null}`, `{"a": null}`, true},
		{"null matches array containing null", `{"a": null}`, `{"a": [1, null]}`, true},
		{"null rejects value", `{"a": null}`, `{"a": 0}`, false},
		{"null matches undefined", `{"a": null}`, `{"a": {"$undefined": true}}`, true},
		{"gte null matches missing", `{"a": {"$gte": null}}`, `{}`, true},
		{"gt null matches nothing", `{"a": {"$gt": null}}`, `{"a": 1}`, false},
		{"dotted null matches subdocument without field", `{"a.b": null}`, `{"a": [{"b": 1}, {"c": 2}]}`, true},
		{"dotted null matches scalar parent", `{"a.b": null}`, `{"a": 5}`, true},
		{"dotted null misses array of scalars", `{"a.b": null}`, `{"a": [1, 2]}`, false},
		{"dotted null misses empty array", `{"a.b": null}`, `{"a": []}`, false},

		// $exists.
		{"exists true matches present", `{"a": {"$exists": true}}`, `{"a": null}`, true},
		{"exists true rejects missing", `{"a": {"$exists": true}}`, `{}`, false},
		{"exists false matches missing", `{"a": {"$exists": false}}`, `{}`, true},
		{"exists false rejects present", `{"a": {"$exists": false}}`, `{"a": 1}`, false},
		{"exists with number operand", `{"a": {"$exists": 0}}`, `{}`, true},
		{"exists through array of documents", `{"a.b": {"$exists": true}}`, `{"a": [{"c": 1}, {"b": 2}]}`, true},
		{"exists false through array of scalars", `{"a.b": {"$exists": false}}`, `{"a": [1]}`, true},
		{"exists on empty array", `{"a": {"$exists": true}}`, `{"a": []}`, true},

		// Comparison and type bracketing.
		{"gt number", `{"a": {"$gt": 5}}`, `{"a": 6}`, true},
		{"gt never matches strings", `{"a": {"$gt": 5}}`, `{"a": "6"}`, false},
		{"lt never matches null", `{"a": {"$lt": 5}}`, `{"a": null}`, false},
		{"lt never matches missing", `{"a": {"$lt": 5}}`, `{}`, false},
		{"gte across numeric types", `{"a": {"$gte": {"$numberLong": "5"}}}`, `{"a": 5.0}`, true},
		{"lte decimal", `{"a": {"$lte": {"$numberDecimal": "5.5"}}}`, `{"a": 5}`, true},
		{"gt string", `{"a": {"$gt": "abc"}}`, `{"a": "abd"}`, true},
		{"lt date", `{"a": {"$lt": {"$date": "2024-01-02T00:00:00Z"}}}`, `{"a": {"$date": "2024-01-01T00:00:00Z"}}`, true},
		{"date never compares with timestamp", `{"a": {"$lt": {"$date": "2024-01-02T00:00:00Z"}}}`, `{"a": {"$timestamp": {"t": 1, "i": 1}}}`, false},
		{"gt NaN matches nothing", `{"a": {"$gt": {"$numberDouble": "NaN"}}}`, `{"a": 1}`, false},
		{"lt number rejects NaN", `{"a": {"$lt": 5}}`, `{"a": {"$numberDouble": "NaN"}}`, false},
		{"gte NaN matches NaN", `{"a": {"$gte": {"$numberDouble": "NaN"}}}`, `{"a": {"$numberDouble": "NaN"}}`, true},
		{"lt MaxKey matches strings", `{"a": {"$lt": {"$maxKey": 1}}}`, `{"a": "x"}`, true},
		{"gt MinKey matches numbers", `{"a": {"$gt": {"$minKey": 1}}}`, `{"a": 1}`, true},
		{"gt document", `{"a": {"$gt": {"x": 1}}}`, `{"a": {"x": 2}}`, true},
		{"objectId equality", `{"_id": {"$oid": "650000000000000000000001"}}`, `{"_id": {"$oid": "650000000000000000000001"}}`, true},

		// Logical operators.
		{"and requires all", `{"$and": [{"a": 1}, {"b": 2}]}`, `{"a": 1, "b": 2}`, true},
		{"and rejects partial", `{"$and": [{"a": 1}, {"b": 2}]}`, `{"a": 1}`, false},
		{"or accepts any", `{"$or": [{"a": 1}, {"b": 2}]}`, `{"b": 2}`, true},
		{"or rejects none", `{"$or": [{"a": 1}, {"b": 2}]}`, `{"c": 3}`, false},
		{"nor rejects any", `{"$nor": [{"a": 1}, {"b": 2}]}`, `{"b": 2}`, false},
		{"nor accepts none", `{"$nor": [{"a": 1}, {"b": 2}]}`, `{"c": 3}`, true},
		{"comment is ignored", `{"$comment": "hi", "a": 1}`, `{"a": 1}`, true},
		{"not negates", `{"a": {"$not": {"$gt": 5}}}`, `{"a": 3}`, true},
		{"not matches missing", `{"a": {"$not": {"$gt": 5}}}`, `{}`, true},
		{"not over array sees all elements", `{"a": {"$not": {"$gt": 5}}}`, `{"a": [1, 9]}`, false},
		{"not with regex", `{"a": {"$not": {"$regularExpression": {"pattern": "^x", "options": ""}}}}`, `{"a": "yx"}`, true},
		{"not with several operators negates their conjunction", `{"a": {"$not": {"$gt": 1, "$lt": 5}}}`, `{"a": 7}`, true},
		{"alwaysFalse", `{"$alwaysFalse": 1}`, `{}`, false},

		// $regex.
		{"regex value", `{"a": {"$regularExpression": {"pattern": "^ab", "options": ""}}}`, `{"a": "abc"}`, true},
		{"regex operator", `{"a": {"$regex": "^AB", "$options": "i"}}`, `{"a": "abc"}`, true},
		{"regex case sensitive by default", `{"a": {"$regex": "^AB"}}`, `{"a": "abc"}`, false},
		{"regex on array elements", `{"a": {"$regex": "z$"}}`, `{"a": ["x", "yz"]}`, true},
		{"regex ignores numbers", `{"a": {"$regex": "1"}}`, `{"a": 1}`, false},
		{"regex multiline", `{"a": {"$regex": "^b", "$options": "m"}}`, `{"a": "a\nb"}`, true},
		{"regex dotall", `{"a": {"$regex": "a.b", "$options": "s"}}`, `{"a": "a\nb"}`, true},
		{"regex extended", `{"a": {"$regex": "a b # comment", "$options": "x"}}`, `{"a": "ab"}`, true},
		{"regex object in $regex with $options", `{"a": {"$regex": {"$regularExpression": {"pattern": "^A", "options": ""}}, "$options": "i"}}`, `{"a": "a"}`, true},
		{"regex matches identical stored regex", `{"a": {"$regularExpression": {"pattern": "x", "options": "i"}}}`, `{"a": {"$regularExpression": {"pattern": "x", "options": "i"}}}`, true},
		{"eq with regex compares literally", `{"a": {"$eq": {"$regularExpression": {"pattern": "x", "options": ""}}}}`, `{"a": "x"}`, false},

		// $type.
		{"type alias", `{"a": {"$type": "string"}}`, `{"a": "x"}`, true},
		{"type number code", `{"a": {"$type": 16}}`, `{"a": 1}`, true},
		{"type code as double", `{"a": {"$type": 1.0}}`, `{"a": 1.5}`, true},
		{"type number alias", `{"a": {"$type": "number"}}`, `{"a": {"$numberDecimal": "1"}}`, true},
		{"type array of types", `{"a": {"$type": ["bool", "long"]}}`, `{"a": {"$numberLong": "3"}}`, true},
		{"type array matches the array itself", `{"a": {"$type": "array"}}`, `{"a": [1]}`, true},
		{"type matches array elements", `{"a": {"$type": "string"}}`, `{"a": [1, "x"]}`, true},
		{"type null does not match missing", `{"a": {"$type": "null"}}`, `{}`, false},
		{"type mismatch", `{"a": {"$type": "int"}}`, `{"a": 1.0}`, false},

		// $size, $all, $mod.
		{"size matches length", `{"a": {"$size": 2}}`, `{"a": [1, [2, 3]]}`, true},
		{"size rejects other length", `{"a": {"$size": 1}}`, `{"a": [1, 2]}`, false},
		{"size ignores non-arrays", `{"a": {"$size": 1}}`, `{"a": "x"}`, false},
		{"size through array of documents", `{"a.b": {"$size": 1}}`, `{"a": [{"b": [1]}]}`, true},
		{"size with double", `{"a": {"$size": 2.0}}`, `{"a": [1, 2]}`, true},
		{"all requires every value", `{"a": {"$all": [1, 2]}}`, `{"a": [2, 3, 1]}`, true},
		{"all rejects partial", `{"a": {"$all": [1, 4]}}`, `{"a": [2, 3, 1]}`, false},
		{"all on scalar", `{"a": {"$all": [1]}}`, `{"a": 1}`, true},
		{"empty all matches nothing", `{"a": {"$all": []}}`, `{"a": [1]}`, false},
		{"all with nested array", `{"a": {"$all": [[1, 2]]}}`, `{"a": [1, 2]}`, true},
		{"all with elemMatch", `{"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"b": 2}}]}}`, `{"a": [{"b": 1}, {"b": 2}]}`, true},
		{"all with elemMatch rejects partial", `{"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"b": 3}}]}}`, `{"a": [{"b": 1}, {"b": 2}]}`, false},
		{"mod matches", `{"a": {"$mod": [4, 1]}}`, `{"a": 9}`, true},
		{"mod truncates doubles", `{"a": {"$mod": [4, 1]}}`, `{"a": 9.9}`, true},
		{"mod negative dividend", `{"a": {"$mod": [4, -1]}}`, `{"a": -9}`, true},
		{"mod rejects strings", `{"a": {"$mod": [4, 1]}}`, `{"a": "9"}`, false},
		{"mod rejects NaN", `{"a": {"$mod": [4, 1]}}`, `{"a": {"$numberDouble": "NaN"}}`, false},

		// Dotted paths.
		{"dotted path into document", `{"a.b": 1}`, `{"a": {"b": 1}}`, true},
		{"dotted path through array of documents", `{"a.b": 2}`, `{"a": [{"b": 1}, {"b": 2}]}`, true},
		{"dotted path expands leaf arrays", `{"a.b": 2}`, `{"a": [{"b": [1, 2]}]}`, true},
		{"dotted path does not enter nested arrays", `{"a.b": 1}`, `{"a": [[{"b": 1}]]}`, false},
		{"numeric component indexes array", `{"a.1": 5}`, `{"a": [1, 5]}`, true},
		{"numeric component misses other index", `{"a.0": 5}`, `{"a": [1, 5]}`, false},
		{"numeric component then field", `{"a.0.b": 1}`, `{"a": [{"b": 1}, {"b": 2}]}`, true},
		{"numeric component then field misses", `{"a.1.b": 1}`, `{"a": [{"b": 1}, {"b": 2}]}`, false},
		{"numeric component as field name", `{"a.0": 1}`, `{"a": {"0": 1}}`, true},
		{"numeric component into nested array", `{"a.0.1": 2}`, `{"a": [[1, 2]]}`, true},
		{"offset leaf array is not expanded", `{"a.0": 1}`, `{"a": [[1]]}`, false},
		{"deep path", `{"a.b.c": 1}`, `{"a": [{"b": [{"c": 0}, {"c": 1}]}]}`, true},
		{"dotted path over scalar", `{"a.b": 1}`, `{"a": 1}`, false},

		// DBRef-looking documents are literals, not operators.
		{"dbref equality", `{"r": {"$ref": "c", "$id": 1}}`, `{"r": {"$ref": "c", "$id": 1}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(ej(t, tt.filter))
			require.NoError(t, err)
			require.Equal(t, tt.want, f.Match(ej(t, tt.doc)))
		})
	}
}

func TestMatchWithGoValues(t *testing.T) {
	tests := []struct {
		name string
		give bson.D
		doc  bson.D
		want bool
	}{
		{"nil filter matches", nil, bson.D{{Key: "a", Value: 1}}, true},
		{"int32 equals int64", bson.D{{Key: "a", Value: int32(1)}}, bson.D{{Key: "a", Value: int64(1)}}, true},
		{"bson.Null is null", bson.D{{Key: "a", Value: nil}}, bson.D{{Key: "a", Value: bson.Null{}}}, true},
		{"large int64 vs double is exact", bson.D{{Key: "a", Value: int64(1<<53 + 1)}}, bson.D{{Key: "a", Value: float64(1 << 53)}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(tt.give)
			require.NoError(t, err)
			require.Equal(t, tt.want, f.Match(tt.doc))
		})
	}
	var nilFilter *Filter
	require.True(t, nilFilter.Match(bson.D{}))
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		give     string
		wantCode int32
		wantMsg  string
	}{
		{`{"a": {"$foo": 1}}`, merr.BadValue, "unknown operator: $foo"},
		{`{"$foo": 1}`, merr.BadValue, "unknown top level operator: $foo. If you have a field name that starts with a '$' symbol, consider using $getField or $setField."},
		{`{"$not": {"a": 1}}`, merr.BadValue, "unknown top level operator: $not. If you are trying to negate an entire expression, use $nor."},
		{`{"a": {"$in": 1}}`, merr.BadValue, "$in needs an array"},
		{`{"a": {"$nin": 1}}`, merr.BadValue, "$nin needs an array"},
		{`{"a": {"$in": [{"$gt": 1}]}}`, merr.BadValue, "cannot nest $ under $in"},
		{`{"$and": []}`, merr.BadValue, "$and/$or/$nor must be a nonempty array"},
		{`{"$or": 1}`, merr.BadValue, "$and/$or/$nor must be a nonempty array"},
		{`{"$nor": [1]}`, merr.BadValue, "$or/$and/$nor entries need to be full objects"},
		{`{"a": {"$regex": 1}}`, merr.BadValue, "$regex has to be a string"},
		{`{"a": {"$options": "i"}}`, merr.BadValue, "$options needs a $regex"},
		{`{"a": {"$regex": "(", "$options": ""}}`, 51091, ""},
		{`{"a": {"$regex": "a", "$options": "q"}}`, 51108, "invalid flag in regex options: q"},
		{`{"a": {"$regex": {"$regularExpression": {"pattern": "a", "options": "i"}}, "$options": "m"}}`, merr.BadValue, "options set in both $regex and $options"},
		{`{"a": {"$size": "1"}}`, merr.BadValue, "$size needs a number"},
		{`{"a": {"$size": -1}}`, merr.BadValue, "$size may not be negative"},
		{`{"a": {"$all": 1}}`, merr.BadValue, "$all needs an array"},
		{`{"a": {"$all": [{"$elemMatch": {"b": 1}}, 1]}}`, merr.BadValue, "$all/$elemMatch has to be consistent"},
		{`{"a": {"$all": [{"$gt": 1}]}}`, merr.BadValue, "no $ expressions in $all"},
		{`{"a": {"$elemMatch": 1}}`, merr.BadValue, "$elemMatch needs an Object"},
		{`{"a": {"$not": 1}}`, merr.BadValue, "$not needs a regex or a document"},
		{`{"a": {"$not": {}}}`, merr.BadValue, "$not cannot be empty"},
		{`{"a": {"$type": "foo"}}`, merr.BadValue, "Unknown type name alias: foo"},
		{`{"a": {"$type": 100}}`, merr.BadValue, "Invalid numerical type code: 100"},
		{`{"a": {"$type": true}}`, merr.TypeMismatch, "type must be represented as a number or a string"},
		{`{"a": {"$mod": 1}}`, merr.BadValue, "malformed mod, needs to be an array"},
		{`{"a": {"$mod": [1]}}`, merr.BadValue, "malformed mod, not enough elements"},
		{`{"a": {"$mod": [1, 2, 3]}}`, merr.BadValue, "malformed mod, too many elements"},
		{`{"a": {"$mod": ["1", 2]}}`, merr.BadValue, "malformed mod, divisor not a number"},
		{`{"a": {"$mod": [0, 2]}}`, merr.BadValue, "divisor cannot be 0"},
		{`{"a": {"$mod": [{"$numberDouble": "NaN"}, 2]}}`, merr.BadValue, "malformed mod, divisor value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type"},
		{`{"a": {"$eq": {"$undefined": true}}}`, merr.BadValue, "cannot compare to undefined"},
		{`{"a": {"$elemMatch": {"b": {"$bad": 1}}}}`, merr.BadValue, "unknown operator: $bad"},
		{`{"a": {"$elemMatch": {"$expr": {"$eq": ["$b", 1]}}}}`, merr.BadValue, "$expr can only be applied to the top-level document"},
		{`{"$expr": {"$eq": ["$$nope", 1]}}`, 17276, "Use of undefined variable: nope"},
		{`{"$expr": {"$foo": 1}}`, 168, "Unrecognized expression '$foo'"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := Compile(ej(t, tt.give))
			var me *merr.Error
			require.True(t, errors.As(err, &me), "want *merr.Error, got %v", err)
			require.Equal(t, tt.wantCode, me.Code)
			if tt.wantMsg != "" {
				require.Equal(t, tt.wantMsg, me.Msg)
			}
		})
	}
}

func TestEqualities(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"plain equalities", `{"a": 1, "b.c": "x"}`, `{"a": 1, "b.c": "x"}`},
		{"eq operator", `{"a": {"$eq": 1, "$gt": 0}}`, `{"a": 1}`},
		{"inside and", `{"$and": [{"a": 1}, {"$and": [{"b": 2}]}]}`, `{"a": 1, "b": 2}`},
		{"skips or, operators and regexes", `{"$or": [{"a": 1}, {"a": 2}], "b": {"$gt": 1}, "c": {"$regularExpression": {"pattern": "x", "options": ""}}}`, `{}`},
		{"a one-clause or collapses", `{"$or": [{"a": 1, "$or": [{"b": 2}]}]}`, `{"a": 1, "b": 2}`},
		{"a one-value in is an equality", `{"a": {"$in": [1, 1.0]}, "b": {"$in": [1, 2]}, "c": {"$in": [{"$regularExpression": {"pattern": "x", "options": ""}}]}}`, `{"a": 1}`},
		{"skips nor", `{"$nor": [{"a": 1}]}`, `{}`},
		{"document value is an equality", `{"a": {"x": 1}}`, `{"a": {"x": 1}}`},
		{"a path matched twice is kept twice", `{"a": 1, "$and": [{"a": 2}]}`, `{"a": 1, "a": 2}`},
		{"a one-value all is an equality, more values are one each", `{"a": {"$all": [1]}, "b": {"$all": [1, 2]}}`, `{"a": 1, "b": 1, "b": 2}`},
		{"all skips regexes and elemMatch", `{"a": {"$all": [{"$regularExpression": {"pattern": "x", "options": ""}}]}, "b": {"$all": [{"$elemMatch": {"x": 1}}]}}`, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(ej(t, tt.give))
			require.NoError(t, err)
			require.Equal(t, ej(t, tt.want), f.Equalities())
		})
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		give      string
		want      bson.A
		wantFound bool
	}{
		{"top-level field", `{"a": 1}`, "a", bson.A{int32(1)}, true},
		{"missing field", `{"a": 1}`, "b", nil, false},
		{"leaf array is whole", `{"a": [1, 2]}`, "a", bson.A{bson.A{int32(1), int32(2)}}, true},
		{"through array of documents", `{"a": [{"b": 1}, {"c": 0}, {"b": 2}]}`, "a.b", bson.A{int32(1), int32(2)}, true},
		{"numeric component", `{"a": [{"b": 1}, {"b": 2}]}`, "a.1.b", bson.A{int32(2)}, true},
		{"array index", `{"a": [7, 8]}`, "a.1", bson.A{int32(8)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := Lookup(ej(t, tt.doc), tt.give)
			require.Equal(t, tt.wantFound, found)
			require.Equal(t, []any(tt.want), got)
		})
	}
}

func TestProjection(t *testing.T) {
	doc := `{"_id": 1, "a": 1, "b": {"c": 2, "d": 3}, "e": [{"f": 1, "g": 2}, 5, {"g": 3}], "h": [1, 2, 3, 4, 5]}`
	tests := []struct {
		name string
		give string
		want string
	}{
		{"empty projection keeps everything", `{}`, doc},
		{"inclusion keeps _id", `{"a": 1}`, `{"_id": 1, "a": 1}`},
		{"inclusion follows document order", `{"b": 1, "a": true}`, `{"_id": 1, "a": 1, "b": {"c": 2, "d": 3}}`},
		{"inclusion without _id", `{"a": 1, "_id": 0}`, `{"a": 1}`},
		{"only _id", `{"_id": 1}`, `{"_id": 1}`},
		{"exclude only _id", `{"_id": 0}`, `{"a": 1, "b": {"c": 2, "d": 3}, "e": [{"f": 1, "g": 2}, 5, {"g": 3}], "h": [1, 2, 3, 4, 5]}`},
		{"exclusion", `{"b": 0, "e": 0, "h": false}`, `{"_id": 1, "a": 1}`},
		{"dotted inclusion", `{"b.c": 1}`, `{"_id": 1, "b": {"c": 2}}`},
		{"nested inclusion", `{"b": {"c": 1}}`, `{"_id": 1, "b": {"c": 2}}`},
		{"dotted exclusion", `{"b.c": 0}`, `{"_id": 1, "a": 1, "b": {"d": 3}, "e": [{"f": 1, "g": 2}, 5, {"g": 3}], "h": [1, 2, 3, 4, 5]}`},
		{"dotted inclusion through array drops scalars", `{"e.g": 1, "_id": 0}`, `{"e": [{"g": 2}, {"g": 3}]}`},
		{"dotted exclusion through array keeps scalars", `{"e.g": 0, "_id": 0, "a": 0, "b": 0, "h": 0}`, `{"e": [{"f": 1}, 5, {}]}`},
		{"missing included field is absent", `{"zz": 1}`, `{"_id": 1}`},
		{"slice alone keeps other fields", `{"h": {"$slice": 2}, "_id": 0, "a": 0, "b": 0, "e": 0}`, `{"h": [1, 2]}`},
		{"negative slice", `{"h": {"$slice": -2}, "_id": 0, "a": 0, "b": 0, "e": 0}`, `{"h": [4, 5]}`},
		{"skip limit slice with inclusion", `{"h": {"$slice": [1, 2]}, "a": 1}`, `{"_id": 1, "a": 1, "h": [2, 3]}`},
		{"elemMatch projection", `{"e": {"$elemMatch": {"g": 3}}}`, `{"_id": 1, "e": [{"g": 3}]}`},
		{"elemMatch projection without match", `{"e": {"$elemMatch": {"g": 9}}, "a": 1}`, `{"_id": 1, "a": 1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompileProjection(ej(t, tt.give))
			require.NoError(t, err)
			in := ej(t, doc)
			got := p.Apply(in)
			require.Equal(t, ej(t, tt.want), got)
			require.Equal(t, ej(t, doc), in, "Apply must not mutate its input")
		})
	}
}

func TestProjectionErrors(t *testing.T) {
	tests := []struct {
		give     string
		wantCode int32
		wantMsg  string
	}{
		{`{"a": 1, "b": 0}`, 31254, "Cannot do exclusion on field b in inclusion projection"},
		{`{"a": 0, "b": 1}`, 31253, "Cannot do inclusion on field b in exclusion projection"},
		{`{"a": 1, "a.b": 1}`, 31250, "Path collision at a.b remaining portion b"},
		{`{"a.b": 1, "a": 1}`, 31250, "Path collision at a"},
		{`{"a.b": {"$elemMatch": {"c": 1}}}`, 31275, "Cannot use $elemMatch projection on a nested field."},
		{`{"a": {"$slice": "x"}}`, 28667, "$slice only supports numbers and [skip, limit] arrays"},
		{`{"a": {"$meta": "textScore"}}`, merr.BadValue, ""},
		{`{"a": "literal"}`, merr.BadValue, ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := CompileProjection(ej(t, tt.give))
			var me *merr.Error
			require.True(t, errors.As(err, &me), "want *merr.Error, got %v", err)
			require.Equal(t, tt.wantCode, me.Code)
			if tt.wantMsg != "" {
				require.Equal(t, tt.wantMsg, me.Msg)
			}
		})
	}
}

func TestSort(t *testing.T) {
	tests := []struct {
		name string
		give string
		a, b string
		want int
	}{
		{"ascending numbers", `{"x": 1}`, `{"x": 1}`, `{"x": 2.5}`, -1},
		{"descending numbers", `{"x": -1}`, `{"x": 1}`, `{"x": 2.5}`, 1},
		{"direction as double", `{"x": -1.0}`, `{"x": 1}`, `{"x": 2}`, 1},
		{"missing sorts as null", `{"x": 1}`, `{}`, `{"x": null}`, 0},
		{"null before numbers", `{"x": 1}`, `{}`, `{"x": 0}`, -1},
		{"numbers before strings", `{"x": 1}`, `{"x": "a"}`, `{"x": 100}`, 1},
		{"ascending uses smallest element", `{"x": 1}`, `{"x": [5, 1]}`, `{"x": 2}`, -1},
		{"descending uses largest element", `{"x": -1}`, `{"x": [5, 1]}`, `{"x": 4}`, -1},
		{"second key breaks ties", `{"x": 1, "y": -1}`, `{"x": 1, "y": 1}`, `{"x": 1, "y": 2}`, 1},
		{"dotted path through array", `{"x.y": 1}`, `{"x": [{"y": 3}, {"y": 0}]}`, `{"x": {"y": 1}}`, -1},
		{"equal documents tie", `{"x": 1}`, `{"x": 1}`, `{"x": 1.0}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := CompileSort(ej(t, tt.give))
			require.NoError(t, err)
			got := s.Compare(ej(t, tt.a), ej(t, tt.b))
			require.Equal(t, tt.want, sign(got))
			require.Equal(t, -tt.want, sign(s.Compare(ej(t, tt.b), ej(t, tt.a))))
		})
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestSortErrors(t *testing.T) {
	tests := []struct {
		give     string
		wantCode int32
	}{
		{`{"x": 2}`, 15975},
		{`{"x": 0}`, 15975},
		{`{"x": "asc"}`, 15974},
		{`{"x": {"$meta": "textScore"}}`, merr.BadValue},
		{`{"": 1}`, merr.Location40352},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := CompileSort(ej(t, tt.give))
			var me *merr.Error
			require.True(t, errors.As(err, &me), "want *merr.Error, got %v", err)
			require.Equal(t, tt.wantCode, me.Code)
		})
	}
}

func FuzzMatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, filterBytes, docBytes []byte) {
		var filter, doc bson.D
		if bson.Unmarshal(filterBytes, &filter) != nil || bson.Unmarshal(docBytes, &doc) != nil {
			t.Skip()
		}
		q, err := Compile(filter)
		if err != nil {
			var me *merr.Error
			if !errors.As(err, &me) {
				t.Fatalf("Compile returned a non-merr error: %v", err)
			}
			return
		}
		q.Match(doc)
		_ = q.Equalities()
		if s, err := CompileSort(filter); err == nil {
			s.Compare(doc, doc)
		}
		if p, err := CompileProjection(filter); err == nil {
			p.Apply(doc)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	f, err := Compile(ej(b, `{"a.b": {"$gt": 5}, "c": {"$in": ["x", "y", "z"]}, "d": null}`))
	require.NoError(b, err)
	doc := ej(b, `{"_id": 1, "a": [{"b": 1}, {"b": 7}], "c": "y", "e": "padding"}`)
	b.ReportAllocs()
	for b.Loop() {
		if !f.Match(doc) {
			b.Fatal("want match")
		}
	}
}

func TestElemMatchKey(t *testing.T) {
	tests := []struct {
		name, filter, doc, want string
	}{
		{"an element of a leaf array", `{"a": 2}`, `{"a": [1, 2, 2]}`, "1"},
		{"the first matching element", `{"a": {"$gt": 1}}`, `{"a": [1, 5, 9]}`, "1"},
		{"no array, no key", `{"a": 2}`, `{"a": 2}`, ""},
		{"the whole array is no element", `{"a": [1, 2]}`, `{"a": [1, 2]}`, ""},
		{"a document in an array", `{"a.b": 2}`, `{"a": [{"b": 1}, {"b": 2}]}`, "1"},
		{"the outermost array wins", `{"a.b": 3}`, `{"a": [{"b": [1]}, {"b": [2, 3]}]}`, "1"},
		{"an explicit offset is no traversal", `{"a.1": 2}`, `{"a": [1, 2]}`, ""},
		{"under an explicit offset the inner array counts", `{"a.0.b": 2}`, `{"a": [{"b": [1, 2]}]}`, "1"},
		{"elemMatch gives the element it matched", `{"a": {"$elemMatch": {"b": 2, "c": 1}}}`, `{"a": [{"b": 2}, {"b": 2, "c": 1}]}`, "1"},
		{"elemMatch on values", `{"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}`, `{"a": [1, 2]}`, "1"},
		{"an $or of several paths records nothing", `{"$or": [{"a": 2}, {"b": 5}]}`, `{"a": [1, 2]}`, ""},
		{"an $or of equalities on one path is a $in", `{"$or": [{"a": 5}, {"a": 2}, {"a": 1}]}`, `{"a": [0, 2, 1]}`, "1"},
		{"an $or on one path with another operator records nothing", `{"$or": [{"a": 2}, {"a": {"$gt": 5}}]}`, `{"a": [1, 2]}`, ""},
		{"a one-value $in is an equality", `{"a": {"$in": [1]}, "b": 1}`, `{"a": [0, 1], "b": [0, 0, 1]}`, "2"},
		{"a one-regex $in is a regex", `{"a": {"$in": [{"$regularExpression": {"pattern": "x", "options": ""}}]}, "b": {"$exists": true}}`, `{"a": ["p", "x"], "b": [5, 6]}`, "0"},
		{"a one-clause $or is its clause", `{"$or": [{"a": 2}]}`, `{"a": [1, 2]}`, "1"},
		{"a negation records nothing", `{"a": {"$ne": 5}}`, `{"a": [1, 2]}`, ""},
		{"$exists matches the first element", `{"a": {"$exists": true}}`, `{"a": [7, 8]}`, "0"},
		{"the last conjunct in canonical order wins", `{"b": 1, "a": 1}`, `{"a": [0, 1], "b": [0, 0, 1]}`, "2"},
		{"operators before paths", `{"a": {"$gt": 0}, "b": 1}`, `{"a": [0, 1], "b": [0, 0, 1]}`, "1"},
		{"a conjunct through no array keeps the key", `{"a": 1, "z": 1}`, `{"a": [0, 1], "z": 1}`, "1"},
		{"no match, no key", `{"a": 5}`, `{"a": [1, 2]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(ej(t, tt.filter))
			require.NoError(t, err)
			key, err := f.ElemMatchKey(ej(t, tt.doc))
			require.NoError(t, err)
			require.Equal(t, tt.want, key)
		})
	}
	for _, filter := range []string{
		`{"a": {"$all": [{"$elemMatch": {"y": 1}}, {"$elemMatch": {"x": 1}}]}}`,
		`{"$or": [{"a": null}, {"a": 2}]}`,
		`{"$or": [{"a": {"$in": [1, 2]}}, {"a": 3}]}`,
	} {
		t.Run("refused: "+filter, func(t *testing.T) {
			f, err := Compile(ej(t, filter))
			require.NoError(t, err)
			_, err = f.ElemMatchKey(ej(t, `{"a": [{"x": 1}, {"y": 1}, 2, 3]}`))
			require.ErrorContains(t, err, "positional operator $")
		})
	}
}
