package aggregate

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/expr"
)

// exprDoc is the document every expression test evaluates against.
const exprDoc = `{"_id": 1, "i": 7, "j": 2, "big": 2147483647, "l": {"$numberLong": "9223372036854775807"}, "f": 1.5, "s": "Ab",
	"n": null, "t": true, "arr": [1, 2, 3], "docs": [{"v": 1}, {"v": 2}, {"w": 3}], "d": {"$date": 1000}, "sub": {"x": {"y": 5}}}`

func TestExpressions(t *testing.T) {
	tests := []struct {
		name     string
		give     string // the expression, as extended JSON
		want     string // the result, as {"r": value}; "{}" for missing
		wantCode int32
		wantMsg  string
	}{
		{name: "field path", give: `"$i"`, want: `{"r": 7}`},
		{name: "nested field path", give: `"$sub.x.y"`, want: `{"r": 5}`},
		{name: "field path across an array", give: `"$docs.v"`, want: `{"r": [1, 2]}`},
		{name: "missing field", give: `"$nope"`, want: `{}`},
		{name: "ROOT variable path", give: `"$$ROOT.s"`, want: `{"r": "Ab"}`},
		{name: "undefined variable", give: `"$$foo"`, wantCode: expr.CodeUndefinedVariable, wantMsg: "Use of undefined variable: foo"},
		{name: "literal", give: `{"$literal": "$i"}`, want: `{"r": "$i"}`},
		{name: "object expression", give: `{"a": "$i", "b": "$nope"}`, want: `{"r": {"a": 7}}`},
		{name: "array expression nulls missing", give: `["$i", "$nope"]`, want: `{"r": [7, null]}`},

		{name: "add", give: `{"$add": ["$i", "$j", 0.5]}`, want: `{"r": 9.5}`},
		{name: "add promotes int32 overflow", give: `{"$add": ["$big", 1]}`, want: `{"r": {"$numberLong": "2147483648"}}`},
		{name: "add overflowing int64 becomes double", give: `{"$add": ["$l", {"$numberLong": "1"}]}`, want: `{"r": 9.223372036854775808e18}`},
		{name: "add to a date", give: `{"$add": ["$d", 500]}`, want: `{"r": {"$date": 1500}}`},
		{name: "add with null", give: `{"$add": ["$i", null]}`, want: `{"r": null}`},
		{name: "add of a string fails", give: `{"$add": ["$i", "$s"]}`, wantCode: 16554, wantMsg: "$add only supports numeric or date types, not string"},
		{name: "subtract", give: `{"$subtract": ["$i", "$j"]}`, want: `{"r": 5}`},
		{name: "subtract dates", give: `{"$subtract": ["$d", "$d"]}`, want: `{"r": {"$numberLong": "0"}}`},
		{name: "subtract needs two arguments", give: `{"$subtract": ["$i"]}`, wantCode: expr.CodeArity, wantMsg: "Expression $subtract takes exactly 2 arguments. 1 were passed in."},
		{name: "multiply", give: `{"$multiply": ["$i", "$j", "$f"]}`, want: `{"r": 21.0}`},
		{name: "multiply a string fails", give: `{"$multiply": ["$s"]}`, wantCode: 16555},
		{name: "divide", give: `{"$divide": ["$i", "$j"]}`, want: `{"r": 3.5}`},
		{name: "divide by zero fails", give: `{"$divide": ["$i", 0]}`, wantCode: 16608, wantMsg: "can't $divide by zero"},
		{name: "mod", give: `{"$mod": ["$i", "$j"]}`, want: `{"r": 1}`},
		{name: "mod of doubles", give: `{"$mod": [7.5, 2]}`, want: `{"r": 1.5}`},
		{name: "mod by zero fails", give: `{"$mod": ["$i", 0]}`, wantCode: 16610},
		{name: "abs", give: `{"$abs": -3}`, want: `{"r": 3}`},
		{name: "abs of null", give: `{"$abs": "$n"}`, want: `{"r": null}`},
		{name: "abs of a string fails", give: `{"$abs": "$s"}`, wantCode: 28765},

		{name: "concat", give: `{"$concat": ["$s", "-", "x"]}`, want: `{"r": "Ab-x"}`},
		{name: "concat with missing is null", give: `{"$concat": ["$s", "$nope"]}`, want: `{"r": null}`},
		{name: "concat of a number fails", give: `{"$concat": ["$s", "$i"]}`, wantCode: 16702, wantMsg: "$concat only supports strings, not int"},
		{name: "toLower", give: `{"$toLower": "$s"}`, want: `{"r": "ab"}`},
		{name: "toUpper of null is empty", give: `{"$toUpper": ["$n"]}`, want: `{"r": ""}`},
		{name: "toUpper of a number", give: `{"$toUpper": "$i"}`, want: `{"r": "7"}`},
		{name: "toLower of an array fails", give: `{"$toLower": ["$arr"]}`, wantCode: 16007},

		{name: "cond array form", give: `{"$cond": [{"$gt": ["$i", 5]}, "big", "small"]}`, want: `{"r": "big"}`},
		{name: "cond object form", give: `{"$cond": {"if": "$n", "then": 1, "else": 2}}`, want: `{"r": 2}`},
		{name: "cond without else fails", give: `{"$cond": {"if": true, "then": 1}}`, wantCode: 17082, wantMsg: "Missing 'else' parameter to $cond"},
		{name: "ifNull of missing", give: `{"$ifNull": ["$nope", "$n", "dflt"]}`, want: `{"r": "dflt"}`},
		{name: "ifNull of a value", give: `{"$ifNull": ["$i", "dflt"]}`, want: `{"r": 7}`},

		{name: "eq across numeric types", give: `{"$eq": ["$i", 7.0]}`, want: `{"r": true}`},
		{name: "eq of missing and null is false", give: `{"$eq": ["$nope", null]}`, want: `{"r": false}`},
		{name: "ne", give: `{"$ne": ["$i", 7]}`, want: `{"r": false}`},
		{name: "gt across types", give: `{"$gt": ["$s", "$i"]}`, want: `{"r": true}`},
		{name: "gte", give: `{"$gte": ["$i", 7]}`, want: `{"r": true}`},
		{name: "lt", give: `{"$lt": ["$i", 7]}`, want: `{"r": false}`},
		{name: "lte", give: `{"$lte": ["$j", "$i"]}`, want: `{"r": true}`},
		{name: "and", give: `{"$and": ["$t", 1, "$s"]}`, want: `{"r": true}`},
		{name: "and with zero", give: `{"$and": ["$t", 0]}`, want: `{"r": false}`},
		{name: "or", give: `{"$or": ["$n", "$nope", "$t"]}`, want: `{"r": true}`},
		{name: "not", give: `{"$not": ["$n"]}`, want: `{"r": true}`},
		{name: "in", give: `{"$in": [2, "$arr"]}`, want: `{"r": true}`},
		{name: "in needs an array", give: `{"$in": [2, "$s"]}`, wantCode: 40081, wantMsg: "$in requires an array as a second argument, found: string"},

		{name: "size", give: `{"$size": "$arr"}`, want: `{"r": 3}`},
		{name: "size of a non-array fails", give: `{"$size": "$s"}`, wantCode: 17124, wantMsg: "The argument to $size must be an array. Type of the argument was: string"},
		{name: "arrayElemAt", give: `{"$arrayElemAt": ["$arr", 1]}`, want: `{"r": 2}`},
		{name: "arrayElemAt from the end", give: `{"$arrayElemAt": ["$arr", -1]}`, want: `{"r": 3}`},
		{name: "arrayElemAt out of range is missing", give: `{"$arrayElemAt": ["$arr", 5]}`, want: `{}`},
		{name: "arrayElemAt of a non-array fails", give: `{"$arrayElemAt": ["$s", 0]}`, wantCode: 28689},
		{name: "max of arguments", give: `{"$max": ["$i", "$j", null]}`, want: `{"r": 7}`},
		{name: "max of an array field", give: `{"$max": "$arr"}`, want: `{"r": 3}`},
		{name: "min of an array field", give: `{"$min": ["$arr"]}`, want: `{"r": 1}`},
		{name: "min of nulls", give: `{"$min": ["$n", "$nope"]}`, want: `{"r": null}`},
		{name: "sum of an array ignores non-numbers", give: `{"$sum": [1, "x", 2.5]}`, want: `{"r": 3.5}`},
		{name: "sum of an array field", give: `{"$sum": "$arr"}`, want: `{"r": 6}`},
		{name: "avg of an array field", give: `{"$avg": "$arr"}`, want: `{"r": 2.0}`},

		{name: "an unknown operator fails", give: `{"$foo": 1}`, wantCode: expr.CodeInvalidPipelineOperator, wantMsg: "Unrecognized expression '$foo'"},
		{name: "an operator document with two fields fails", give: `{"$add": [1], "$sum": [1]}`, wantCode: expr.CodeExprOneField},
		{name: "a dollar field in an object fails", give: `{"a": 1, "$b": 1}`, wantCode: expr.CodeFieldPathDollar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec bson.D
			require.NoError(t, bson.UnmarshalExtJSON([]byte(`{"r": `+tt.give+`}`), false, &spec))
			p, err := Compile(bson.A{
				bson.D{{Key: "$project", Value: bson.D{{Key: "_id", Value: int32(0)}, {Key: "r", Value: spec[0].Value}}}},
			})
			if err == nil {
				var got []bson.D
				got, err = p.Run(docs(`[` + exprDoc + `]`))
				if tt.wantCode == 0 {
					require.NoError(t, err)
					require.Equal(t, docs(`[`+tt.want+`]`), got)
					return
				}
			}
			requireCode(t, err, tt.wantCode, tt.wantMsg)
		})
	}
}
