package update

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// doc parses relaxed extended JSON: 1 is int32, 1.0 a double and
// {"$numberLong": "1"} an int64.
func doc(s string) bson.D {
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
		panic(err)
	}
	return d
}

func requireCode(t *testing.T, err error, code int32, msg string) {
	t.Helper()
	var me *merr.Error
	require.True(t, errors.As(err, &me), "want *merr.Error, got %v", err)
	require.Equal(t, code, me.Code, me.Msg)
	if msg != "" {
		require.Equal(t, msg, me.Msg)
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		update      string
		opts        Options
		want        string
		wantChanged bool
		wantCode    int32
		wantMsg     string
	}{
		// $set
		{name: "set appends a new field", give: `{"_id": 1, "a": 1}`, update: `{"$set": {"b": 2}}`, want: `{"_id": 1, "a": 1, "b": 2}`, wantChanged: true},
		{name: "set keeps an existing field's position", give: `{"_id": 1, "a": 1, "b": 2}`, update: `{"$set": {"a": "x"}}`, want: `{"_id": 1, "a": "x", "b": 2}`, wantChanged: true},
		{name: "set to the same value is no modification", give: `{"_id": 1, "a": 1}`, update: `{"$set": {"a": 1}}`, want: `{"_id": 1, "a": 1}`},
		{name: "set to an equal value of another type is a modification", give: `{"_id": 1, "a": 1}`, update: `{"$set": {"a": 1.0}}`, want: `{"_id": 1, "a": 1.0}`, wantChanged: true},
		{name: "set creates intermediate documents", give: `{"_id": 1}`, update: `{"$set": {"a.b.c": 1}}`, want: `{"_id": 1, "a": {"b": {"c": 1}}}`, wantChanged: true},
		{name: "set into an existing subdocument", give: `{"_id": 1, "a": {"x": 1}}`, update: `{"$set": {"a.y": 2}}`, want: `{"_id": 1, "a": {"x": 1, "y": 2}}`, wantChanged: true},
		{name: "set pads a short array with nulls", give: `{"_id": 1, "a": [1]}`, update: `{"$set": {"a.3": 5}}`, want: `{"_id": 1, "a": [1, null, null, 5]}`, wantChanged: true},
		{name: "set indexes an array", give: `{"_id": 1, "a": [1, {"b": 1}]}`, update: `{"$set": {"a.0": 9, "a.1.b": 2}}`, want: `{"_id": 1, "a": [9, {"b": 2}]}`, wantChanged: true},
		{name: "set applies fields in lexicographic order", give: `{"_id": 1}`, update: `{"$set": {"b": 1, "a": 1}}`, want: `{"_id": 1, "a": 1, "b": 1}`, wantChanged: true},
		{name: "set orders numeric fields numerically", give: `{"_id": 1, "a": {}}`, update: `{"$set": {"a.10": 1, "a.9": 1}}`, want: `{"_id": 1, "a": {"9": 1, "10": 1}}`, wantChanged: true},
		{name: "set creates a numeric field in a document", give: `{"_id": 1}`, update: `{"$set": {"a.0": 1}}`, want: `{"_id": 1, "a": {"0": 1}}`, wantChanged: true},
		{name: "set through a scalar is not viable", give: `{"_id": 1, "a": 1}`, update: `{"$set": {"a.b": 1}}`, wantCode: merr.PathNotViable, wantMsg: "Cannot create field 'b' in element {a: 1}"},
		{name: "set through null is not viable", give: `{"_id": 1, "a": null}`, update: `{"$set": {"a.b": 1}}`, wantCode: merr.PathNotViable, wantMsg: "Cannot create field 'b' in element {a: null}"},
		{name: "set of a named field in an array is not viable", give: `{"_id": 1, "a": [1, 2]}`, update: `{"$set": {"a.b": 1}}`, wantCode: merr.PathNotViable, wantMsg: "Cannot create field 'b' in element {a: [ 1, 2 ]}"},
		{name: "empty set is allowed", give: `{"_id": 1}`, update: `{"$set": {}}`, want: `{"_id": 1}`},
		{name: "set of an empty path fails", give: `{"_id": 1}`, update: `{"$set": {"a..b": 1}}`, wantCode: emptyFieldName},

		// $unset
		{name: "unset removes a field", give: `{"_id": 1, "a": 1, "b": 2}`, update: `{"$unset": {"a": ""}}`, want: `{"_id": 1, "b": 2}`, wantChanged: true},
		{name: "unset of a missing field is no modification", give: `{"_id": 1}`, update: `{"$unset": {"a.b": ""}}`, want: `{"_id": 1}`},
		{name: "unset nulls an array element", give: `{"_id": 1, "a": [1, 2]}`, update: `{"$unset": {"a.0": ""}}`, want: `{"_id": 1, "a": [null, 2]}`, wantChanged: true},
		{name: "unset through a scalar is a no-op", give: `{"_id": 1, "a": 1}`, update: `{"$unset": {"a.b": ""}}`, want: `{"_id": 1, "a": 1}`},
		{name: "unset of a nested field keeps its parent", give: `{"_id": 1, "a": {"b": 1}}`, update: `{"$unset": {"a.b": 1}}`, want: `{"_id": 1, "a": {}}`, wantChanged: true},

		// $inc and $mul
		{name: "inc adds", give: `{"_id": 1, "n": 1}`, update: `{"$inc": {"n": 2}}`, want: `{"_id": 1, "n": 3}`, wantChanged: true},
		{name: "inc creates a missing field", give: `{"_id": 1}`, update: `{"$inc": {"a.n": 2.5}}`, want: `{"_id": 1, "a": {"n": 2.5}}`, wantChanged: true},
		{name: "inc promotes int32 overflow to int64", give: `{"_id": 1, "n": 2147483647}`, update: `{"$inc": {"n": 1}}`, want: `{"_id": 1, "n": {"$numberLong": "2147483648"}}`, wantChanged: true},
		{name: "inc by a double makes a double", give: `{"_id": 1, "n": 1}`, update: `{"$inc": {"n": 0.5}}`, want: `{"_id": 1, "n": 1.5}`, wantChanged: true},
		{name: "inc by zero is no modification", give: `{"_id": 1, "n": 1}`, update: `{"$inc": {"n": 0}}`, want: `{"_id": 1, "n": 1}`},
		{name: "inc of a string fails", give: `{"_id": 1, "x": "a"}`, update: `{"$inc": {"x": 1}}`, wantCode: merr.TypeMismatch,
			wantMsg: "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'x' of non-numeric type string"},
		{name: "inc with a string argument fails", give: `{"_id": 1}`, update: `{"$inc": {"x": "a"}}`, wantCode: merr.TypeMismatch, wantMsg: `Cannot increment with non-numeric argument: {x: "a"}`},
		{name: "inc overflowing int64 fails", give: `{"_id": 1, "n": {"$numberLong": "9223372036854775807"}}`, update: `{"$inc": {"n": 1}}`, wantCode: merr.BadValue,
			wantMsg: "Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for document {_id: 1}"},
		{name: "mul multiplies", give: `{"_id": 1, "n": 3}`, update: `{"$mul": {"n": 2}}`, want: `{"_id": 1, "n": 6}`, wantChanged: true},
		{name: "mul creates zero of the argument's type", give: `{"_id": 1}`, update: `{"$mul": {"n": {"$numberLong": "5"}}}`, want: `{"_id": 1, "n": {"$numberLong": "0"}}`, wantChanged: true},
		{name: "mul of a string fails", give: `{"_id": 1, "x": "a"}`, update: `{"$mul": {"x": 2}}`, wantCode: merr.TypeMismatch,
			wantMsg: "Cannot apply $mul to a value of non-numeric type. {_id: 1} has the field 'x' of non-numeric type string"},
		{name: "mul with a string argument fails", give: `{"_id": 1}`, update: `{"$mul": {"x": "a"}}`, wantCode: merr.TypeMismatch, wantMsg: `Cannot multiply with non-numeric argument: {x: "a"}`},

		// $min and $max
		{name: "min lowers", give: `{"_id": 1, "n": 5}`, update: `{"$min": {"n": 3}}`, want: `{"_id": 1, "n": 3}`, wantChanged: true},
		{name: "min keeps a smaller value", give: `{"_id": 1, "n": 1}`, update: `{"$min": {"n": 3}}`, want: `{"_id": 1, "n": 1}`},
		{name: "max raises", give: `{"_id": 1, "n": 5}`, update: `{"$max": {"n": 7.5}}`, want: `{"_id": 1, "n": 7.5}`, wantChanged: true},
		{name: "max creates a missing field", give: `{"_id": 1}`, update: `{"$max": {"n": 1}}`, want: `{"_id": 1, "n": 1}`, wantChanged: true},
		{name: "max compares across types", give: `{"_id": 1, "n": 5}`, update: `{"$max": {"n": "a"}}`, want: `{"_id": 1, "n": "a"}`, wantChanged: true},

		// $rename
		{name: "rename moves a field to the end", give: `{"_id": 1, "a": 1, "b": 2}`, update: `{"$rename": {"a": "c"}}`, want: `{"_id": 1, "b": 2, "c": 1}`, wantChanged: true},
		{name: "rename of a missing field is a no-op", give: `{"_id": 1}`, update: `{"$rename": {"a": "c"}}`, want: `{"_id": 1}`},
		{name: "rename overwrites its target", give: `{"_id": 1, "a": 1, "c": 2}`, update: `{"$rename": {"a": "c"}}`, want: `{"_id": 1, "c": 1}`, wantChanged: true},
		{name: "rename into a nested path", give: `{"_id": 1, "a": {"b": 1}}`, update: `{"$rename": {"a.b": "x.y"}}`, want: `{"_id": 1, "a": {}, "x": {"y": 1}}`, wantChanged: true},
		{name: "rename from an array element fails", give: `{"_id": 1, "a": [1]}`, update: `{"$rename": {"a.0": "b"}}`, wantCode: merr.BadValue,
			wantMsg: "The source field cannot be an array element, 'a.0' in doc with _id: 1 has an array field called 'a'"},
		{name: "rename into an array element fails", give: `{"_id": 1, "a": 1, "b": [1]}`, update: `{"$rename": {"a": "b.0"}}`, wantCode: merr.BadValue,
			wantMsg: "The destination field cannot be an array element, 'b.0' in doc with _id: 1 has an array field called 'b'"},
		{name: "rename to itself fails", give: `{"_id": 1}`, update: `{"$rename": {"a": "a"}}`, wantCode: merr.BadValue},
		{name: "rename to a non-string fails", give: `{"_id": 1}`, update: `{"$rename": {"a": 1}}`, wantCode: merr.BadValue, wantMsg: "The 'to' field for $rename must be a string: a: 1"},

		// $push
		{name: "push appends", give: `{"_id": 1, "a": [1]}`, update: `{"$push": {"a": 2}}`, want: `{"_id": 1, "a": [1, 2]}`, wantChanged: true},
		{name: "push creates an array", give: `{"_id": 1}`, update: `{"$push": {"a": [1]}}`, want: `{"_id": 1, "a": [[1]]}`, wantChanged: true},
		{name: "push to a non-array fails", give: `{"_id": 1, "x": 1}`, update: `{"$push": {"x": 2}}`, wantCode: merr.BadValue,
			wantMsg: "The field 'x' must be an array but is of type int in document {_id: 1}"},
		{name: "push each at a position", give: `{"_id": 1, "a": [1, 4]}`, update: `{"$push": {"a": {"$each": [2, 3], "$position": 1}}}`, want: `{"_id": 1, "a": [1, 2, 3, 4]}`, wantChanged: true},
		{name: "push each at a negative position", give: `{"_id": 1, "a": [1, 4]}`, update: `{"$push": {"a": {"$each": [2], "$position": -1}}}`, want: `{"_id": 1, "a": [1, 2, 4]}`, wantChanged: true},
		{name: "push each sorted and sliced", give: `{"_id": 1, "a": [5, 1]}`, update: `{"$push": {"a": {"$each": [3, 4], "$sort": -1, "$slice": 3}}}`, want: `{"_id": 1, "a": [5, 4, 3]}`, wantChanged: true},
		{name: "push slices from the end", give: `{"_id": 1, "a": [1, 2]}`, update: `{"$push": {"a": {"$each": [3], "$slice": -2}}}`, want: `{"_id": 1, "a": [2, 3]}`, wantChanged: true},
		{name: "push sorts by a field", give: `{"_id": 1, "a": [{"s": 3}, {"s": 1}]}`, update: `{"$push": {"a": {"$each": [{"s": 2}], "$sort": {"s": 1}}}}`, want: `{"_id": 1, "a": [{"s": 1}, {"s": 2}, {"s": 3}]}`, wantChanged: true},
		{name: "push with an empty each creates an empty array", give: `{"_id": 1}`, update: `{"$push": {"a": {"$each": []}}}`, want: `{"_id": 1, "a": []}`, wantChanged: true},
		{name: "push with a bad clause fails", give: `{"_id": 1}`, update: `{"$push": {"a": {"$each": [1], "$foo": 1}}}`, wantCode: merr.BadValue, wantMsg: "Unrecognized clause in $push: $foo"},
		{name: "push with a bad sort fails", give: `{"_id": 1}`, update: `{"$push": {"a": {"$each": [1], "$sort": 2}}}`, wantCode: merr.BadValue},
		{name: "push with a non-array each fails", give: `{"_id": 1}`, update: `{"$push": {"a": {"$each": 1}}}`, wantCode: merr.BadValue},

		// $addToSet
		{name: "addToSet adds a new value", give: `{"_id": 1, "a": [1]}`, update: `{"$addToSet": {"a": 2}}`, want: `{"_id": 1, "a": [1, 2]}`, wantChanged: true},
		{name: "addToSet skips an equal value", give: `{"_id": 1, "a": [1]}`, update: `{"$addToSet": {"a": 1.0}}`, want: `{"_id": 1, "a": [1]}`},
		{name: "addToSet each dedupes", give: `{"_id": 1, "a": [1]}`, update: `{"$addToSet": {"a": {"$each": [1, 2, 2, 3]}}}`, want: `{"_id": 1, "a": [1, 2, 3]}`, wantChanged: true},
		{name: "addToSet creates an array", give: `{"_id": 1}`, update: `{"$addToSet": {"a": {"b": 1}}}`, want: `{"_id": 1, "a": [{"b": 1}]}`, wantChanged: true},
		{name: "addToSet to a non-array fails", give: `{"_id": 1, "a": 1}`, update: `{"$addToSet": {"a": 1}}`, wantCode: merr.BadValue,
			wantMsg: "Cannot apply $addToSet to non-array field. Field named 'a' has non-array type int"},

		// $pull and $pullAll
		{name: "pull removes equal values", give: `{"_id": 1, "a": [1, 2, 1, 3]}`, update: `{"$pull": {"a": 1}}`, want: `{"_id": 1, "a": [2, 3]}`, wantChanged: true},
		{name: "pull by condition", give: `{"_id": 1, "a": [1, 5, 7, 2]}`, update: `{"$pull": {"a": {"$gte": 5}}}`, want: `{"_id": 1, "a": [1, 2]}`, wantChanged: true},
		{name: "pull documents by query", give: `{"_id": 1, "a": [{"x": 1, "y": 1}, {"x": 2}, 3]}`, update: `{"$pull": {"a": {"x": 1}}}`, want: `{"_id": 1, "a": [{"x": 2}, 3]}`, wantChanged: true},
		{name: "pull with no match is no modification", give: `{"_id": 1, "a": [1]}`, update: `{"$pull": {"a": 9}}`, want: `{"_id": 1, "a": [1]}`},
		{name: "pull of a missing field is a no-op", give: `{"_id": 1}`, update: `{"$pull": {"a": 1}}`, want: `{"_id": 1}`},
		{name: "pull from a non-array fails", give: `{"_id": 1, "a": 1}`, update: `{"$pull": {"a": 1}}`, wantCode: merr.BadValue, wantMsg: "Cannot apply $pull to a non-array value"},
		{name: "pullAll removes listed values", give: `{"_id": 1, "a": [1, 2, 3, 1]}`, update: `{"$pullAll": {"a": [1, 3]}}`, want: `{"_id": 1, "a": [2]}`, wantChanged: true},
		{name: "pullAll needs an array", give: `{"_id": 1}`, update: `{"$pullAll": {"a": 1}}`, wantCode: merr.BadValue, wantMsg: "$pullAll requires an array argument but was given a int"},

		// $pop
		{name: "pop removes the last element", give: `{"_id": 1, "a": [1, 2, 3]}`, update: `{"$pop": {"a": 1}}`, want: `{"_id": 1, "a": [1, 2]}`, wantChanged: true},
		{name: "pop removes the first element", give: `{"_id": 1, "a": [1, 2, 3]}`, update: `{"$pop": {"a": -1}}`, want: `{"_id": 1, "a": [2, 3]}`, wantChanged: true},
		{name: "pop of an empty array is no modification", give: `{"_id": 1, "a": []}`, update: `{"$pop": {"a": 1}}`, want: `{"_id": 1, "a": []}`},
		{name: "pop needs 1 or -1", give: `{"_id": 1}`, update: `{"$pop": {"a": 2}}`, wantCode: merr.FailedToParse, wantMsg: "$pop expects 1 or -1, found: 2"},
		{name: "pop of a non-array fails", give: `{"_id": 1, "a": 1}`, update: `{"$pop": {"a": 1}}`, wantCode: merr.TypeMismatch, wantMsg: "Path 'a' contains an element of non-array type 'int'"},

		// $currentDate and $setOnInsert
		{name: "currentDate sets a date", give: `{"_id": 1}`, update: `{"$currentDate": {"d": true}}`, opts: Options{Now: 1000}, want: `{"_id": 1, "d": {"$date": 1000}}`, wantChanged: true},
		{name: "currentDate sets a timestamp", give: `{"_id": 1}`, update: `{"$currentDate": {"t": {"$type": "timestamp"}}}`, opts: Options{Timestamp: bson.Timestamp{T: 5, I: 2}},
			want: `{"_id": 1, "t": {"$timestamp": {"t": 5, "i": 2}}}`, wantChanged: true},
		{name: "currentDate rejects a bad type", give: `{"_id": 1}`, update: `{"$currentDate": {"t": {"$type": "x"}}}`, wantCode: merr.BadValue},
		{name: "currentDate rejects a number", give: `{"_id": 1}`, update: `{"$currentDate": {"t": 1}}`, wantCode: merr.BadValue},
		{name: "setOnInsert is ignored on update", give: `{"_id": 1}`, update: `{"$setOnInsert": {"a": 1}}`, want: `{"_id": 1}`},
		{name: "setOnInsert applies on insert", give: `{"_id": 1}`, update: `{"$setOnInsert": {"a": 1}}`, opts: Options{Insert: true}, want: `{"_id": 1, "a": 1}`, wantChanged: true},

		// $bit
		{name: "bit and/or", give: `{"_id": 1, "n": 13}`, update: `{"$bit": {"n": {"and": 10, "or": 1}}}`, want: `{"_id": 1, "n": 9}`, wantChanged: true},

		// Conflicts and parse errors
		{name: "two operators on one path conflict", give: `{"_id": 1}`, update: `{"$set": {"a": 1}, "$inc": {"a": 1}}`, wantCode: merr.ConflictingUpdateOperators,
			wantMsg: "Updating the path 'a' would create a conflict at 'a'"},
		{name: "a nested path under a set path conflicts", give: `{"_id": 1}`, update: `{"$set": {"a": 1, "a.b": 1}}`, wantCode: merr.ConflictingUpdateOperators,
			wantMsg: "Updating the path 'a.b' would create a conflict at 'a'"},
		{name: "a parent path over a set path conflicts", give: `{"_id": 1}`, update: `{"$set": {"a.b": 1}, "$unset": {"a": 1}}`, wantCode: merr.ConflictingUpdateOperators,
			wantMsg: "Updating the path 'a' would create a conflict at 'a'"},
		{name: "rename conflicts with set of its target", give: `{"_id": 1}`, update: `{"$rename": {"a": "b"}, "$set": {"b": 1}}`, wantCode: merr.ConflictingUpdateOperators},
		{name: "an unknown operator fails", give: `{"_id": 1}`, update: `{"$foo": {"a": 1}}`, wantCode: merr.FailedToParse,
			wantMsg: "Unknown modifier: $foo. Expected a valid update modifier or pipeline-style update specified as an array"},
		{name: "a field after operators fails", give: `{"_id": 1}`, update: `{"$set": {"a": 1}, "b": 1}`, wantCode: merr.FailedToParse},
		{name: "an operator after fields fails", give: `{"_id": 1}`, update: `{"a": 1, "$set": {"b": 1}}`, wantCode: merr.DollarPrefixedFieldName},
		{name: "a non-document operator argument fails", give: `{"_id": 1}`, update: `{"$set": 1}`, wantCode: merr.FailedToParse,
			wantMsg: "Modifiers operate on fields but we found type int instead. For example: {$mod: {<field>: ...}} not {$set: 1}"},
		{name: "the positional operator without a matched element fails", give: `{"_id": 1, "a": [1]}`, update: `{"$set": {"a.$": 1}}`, wantCode: merr.BadValue,
			wantMsg: "The positional operator did not find the match needed from the query."},
		{name: "the positional operator updates the matched element", give: `{"_id": 1, "a": [1, 2, 3]}`, update: `{"$set": {"a.$": 9}}`, opts: Options{MatchedField: "1"},
			want: `{"_id": 1, "a": [1, 9, 3]}`, wantChanged: true},
		{name: "the positional operator reaches into the matched document", give: `{"_id": 1, "a": [{"b": 1}, {"b": 2}]}`, update: `{"$inc": {"a.$.b": 5}, "$set": {"a.$.c": 0}}`,
			opts: Options{MatchedField: "1"}, want: `{"_id": 1, "a": [{"b": 1}, {"b": 7, "c": 0}]}`, wantChanged: true},
		{name: "the positional operator merges with the matched offset", give: `{"_id": 1, "a": [{"b": 1}, {"b": 2}]}`, update: `{"$set": {"a.$.c": 0, "a.1.d": 0}}`,
			opts: Options{MatchedField: "1"}, want: `{"_id": 1, "a": [{"b": 1}, {"b": 2, "c": 0, "d": 0}]}`, wantChanged: true},
		{name: "the positional operator conflicts with the same path", give: `{"_id": 1, "a": [1, 2]}`, update: `{"$set": {"a.$": 0, "a.1": 0}}`,
			opts: Options{MatchedField: "1"}, wantCode: merr.ConflictingUpdateOperators, wantMsg: "Update created a conflict at 'a.1'"},
		{name: "the positional operator past the end pads", give: `{"_id": 1, "a": [1]}`, update: `{"$set": {"a.$": 0}}`,
			opts: Options{MatchedField: "2"}, want: `{"_id": 1, "a": [1, null, 0]}`, wantChanged: true},
		{name: "two positional operators in a path fail", give: `{"_id": 1}`, update: `{"$set": {"a.$.b.$": 0}}`, wantCode: merr.BadValue,
			wantMsg: "Too many positional (i.e. '$') elements found in path 'a.$.b.$'"},
		{name: "a positional operator first fails", give: `{"_id": 1}`, update: `{"$set": {"$.a": 0}}`, wantCode: merr.BadValue,
			wantMsg: "Cannot have positional (i.e. '$') element in the first position in path '$.a'"},

		// _id
		{name: "set of _id to another value fails", give: `{"_id": 1}`, update: `{"$set": {"_id": 2}}`, wantCode: merr.ImmutableField,
			wantMsg: "Performing an update on the path '_id' would modify the immutable field '_id'"},
		{name: "set of _id to its value succeeds", give: `{"_id": 1, "a": 1}`, update: `{"$set": {"_id": 1, "a": 2}}`, want: `{"_id": 1, "a": 2}`, wantChanged: true},
		{name: "unset of _id fails", give: `{"_id": 1}`, update: `{"$unset": {"_id": 1}}`, wantCode: merr.ImmutableField},
		{name: "set of a field inside _id fails", give: `{"_id": {"a": 1}}`, update: `{"$set": {"_id.a": 2}}`, wantCode: merr.ImmutableField},
		{name: "upsert may set _id when the query did not", give: `{"a": 1}`, update: `{"$set": {"_id": 5}}`, opts: Options{Insert: true}, want: `{"_id": 5, "a": 1}`, wantChanged: true},
		{name: "upsert may not change a seeded _id", give: `{"_id": 1}`, update: `{"$set": {"_id": 2}}`, opts: Options{Insert: true}, wantCode: merr.ImmutableField,
			wantMsg: "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 2"},
		{name: "an array _id fails", give: `{"a": 1}`, update: `{"$set": {"_id": [1]}}`, opts: Options{Insert: true}, wantCode: merr.InvalidIdField},

		// Replacement
		{name: "replacement keeps the original _id first", give: `{"_id": 1, "a": 1}`, update: `{"b": 2}`, want: `{"_id": 1, "b": 2}`, wantChanged: true},
		{name: "replacement with the same _id", give: `{"_id": 1, "a": 1}`, update: `{"b": 2, "_id": 1}`, want: `{"_id": 1, "b": 2}`, wantChanged: true},
		{name: "identical replacement is no modification", give: `{"_id": 1, "a": 1}`, update: `{"a": 1}`, want: `{"_id": 1, "a": 1}`},
		{name: "empty replacement keeps only _id", give: `{"_id": 1, "a": 1}`, update: `{}`, want: `{"_id": 1}`, wantChanged: true},
		{name: "replacement with another _id fails", give: `{"_id": 1}`, update: `{"_id": 2}`, wantCode: merr.ImmutableField,
			wantMsg: "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 2"},
		{name: "replacement on insert puts _id first", give: `{}`, update: `{"a": 1, "_id": 3}`, opts: Options{Insert: true}, want: `{"_id": 3, "a": 1}`, wantChanged: true},

		// Array updates
		{name: "all-positional updates every element", give: `{"_id": 1, "a": [1, 2]}`, update: `{"$inc": {"a.$[]": 10}}`, want: `{"_id": 1, "a": [11, 12]}`, wantChanged: true},
		{name: "all-positional reaches into documents", give: `{"_id": 1, "a": [{"b": 1}, {"b": 2}]}`, update: `{"$set": {"a.$[].c": 0}}`, want: `{"_id": 1, "a": [{"b": 1, "c": 0}, {"b": 2, "c": 0}]}`, wantChanged: true},
		{name: "array filters select elements", give: `{"_id": 1, "a": [1, 5, 9]}`, update: `{"$set": {"a.$[x]": 0}}`,
			opts: Options{ArrayFilters: []bson.D{doc(`{"x": {"$gte": 5}}`)}}, want: `{"_id": 1, "a": [1, 0, 0]}`, wantChanged: true},
		{name: "array filters on embedded fields", give: `{"_id": 1, "a": [{"g": 1}, {"g": 7}]}`, update: `{"$set": {"a.$[e].ok": true}}`,
			opts: Options{ArrayFilters: []bson.D{doc(`{"e.g": {"$gt": 5}}`)}}, want: `{"_id": 1, "a": [{"g": 1}, {"g": 7, "ok": true}]}`, wantChanged: true},
		{name: "a missing array filter fails", give: `{"_id": 1, "a": [1]}`, update: `{"$set": {"a.$[x]": 0}}`, wantCode: merr.BadValue,
			wantMsg: "No array filter found for identifier 'x' in path 'a.$[x]'"},
		{name: "an unused array filter fails", give: `{"_id": 1}`, update: `{"$set": {"a": 0}}`, opts: Options{ArrayFilters: []bson.D{doc(`{"x": 1}`)}}, wantCode: merr.FailedToParse},
		{name: "array updates need an array", give: `{"_id": 1, "a": 1}`, update: `{"$set": {"a.$[]": 0}}`, wantCode: merr.BadValue,
			wantMsg: "Cannot apply array updates to non-array element a: 1"},
		{name: "array updates need the field", give: `{"_id": 1}`, update: `{"$set": {"a.$[]": 0}}`, wantCode: merr.BadValue,
			wantMsg: "The path 'a' must exist in the document in order to apply array updates."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			give := doc(tt.give)
			before := doc(tt.give)
			u, err := Compile(doc(tt.update))
			if err == nil {
				var got bson.D
				var changed bool
				got, changed, err = u.Apply(give, tt.opts)
				if tt.wantCode == 0 {
					require.NoError(t, err)
					require.Equal(t, doc(tt.want), got)
					require.Equal(t, tt.wantChanged, changed)
				}
			}
			require.Equal(t, before, give, "Apply must not modify its input")
			if tt.wantCode != 0 {
				requireCode(t, err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestApplyDoesNotAliasInput(t *testing.T) {
	give := doc(`{"_id": 1, "a": {"b": [1]}, "c": [1]}`)
	u, err := Compile(doc(`{"$push": {"c": 2}}`))
	require.NoError(t, err)
	got, _, err := u.Apply(give, Options{})
	require.NoError(t, err)
	got[1].Value.(bson.D)[0].Value.(bson.A)[0] = int32(9)
	require.Equal(t, doc(`{"_id": 1, "a": {"b": [1]}, "c": [1]}`), give)
}

func TestCompile(t *testing.T) {
	t.Run("a pipeline may not match", func(t *testing.T) {
		_, err := Compile(bson.A{bson.D{{Key: "$match", Value: bson.D{}}}})
		requireCode(t, err, merr.InvalidOptions, "$match is not allowed to be used within an update")
	})
	t.Run("a replacement reports itself", func(t *testing.T) {
		u, err := Compile(doc(`{"a": 1}`))
		require.NoError(t, err)
		require.True(t, u.IsReplacement())
		u, err = Compile(doc(`{"$set": {"a": 1}}`))
		require.NoError(t, err)
		require.False(t, u.IsReplacement())
	})
}

func TestSeed(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		want     string
		wantCode int32
	}{
		{name: "fields are copied", give: `{"a": 1, "b": "x"}`, want: `{"a": 1, "b": "x"}`},
		{name: "_id comes first", give: `{"a": 1, "_id": 7}`, want: `{"_id": 7, "a": 1}`},
		{name: "dotted paths nest", give: `{"a.b": 1, "a.c": 2, "d.e.f": 3}`, want: `{"a": {"b": 1, "c": 2}, "d": {"e": {"f": 3}}}`},
		{name: "a repeated path fails", give: `{"a": 1, "a": 2}`, wantCode: merr.NotSingleValueField},
		{name: "a nested path under an equality fails", give: `{"a": {"b": 1}, "a.b": 1}`, wantCode: merr.NotSingleValueField},
		{name: "nothing seeds an empty document", give: `{}`, want: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Seed(doc(tt.give))
			if tt.wantCode != 0 {
				requireCode(t, err, tt.wantCode, "")
				return
			}
			require.NoError(t, err)
			require.Equal(t, doc(tt.want), got)
		})
	}
}

func TestUpsertFlow(t *testing.T) {
	seed, err := Seed(doc(`{"_id": 1, "k.x": "v"}`))
	require.NoError(t, err)
	u, err := Compile(doc(`{"$set": {"n": 1}, "$setOnInsert": {"created": true}, "$inc": {"count": 1}}`))
	require.NoError(t, err)
	got, changed, err := u.Apply(seed, Options{Insert: true})
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, doc(`{"_id": 1, "k": {"x": "v"}, "count": 1, "created": true, "n": 1}`), got)
}

func TestHostileUpdatesFailCleanly(t *testing.T) {
	tests := []struct {
		name   string
		update string
		want   string
	}{
		{
			name:   "setting an element far past the end does not pad the array",
			update: `{"$set": {"a.99999999999": 1}}`,
		},
		{
			name:   "$slice of the smallest int64 keeps the array",
			update: `{"$push": {"a": {"$each": [3], "$slice": {"$numberLong": "-9223372036854775808"}}}}`,
			want:   `{"_id": 1, "a": [1, 2, 3]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Compile(doc(tt.update))
			require.NoError(t, err)
			got, _, err := u.Apply(doc(`{"_id": 1, "a": [1, 2]}`), Options{})
			if tt.want == "" {
				requireCode(t, err, merr.BadValue, "can't backfill array to larger than 1500000 elements")
				return
			}
			require.NoError(t, err)
			require.Equal(t, doc(tt.want), got)
		})
	}
}

func TestApplyPipeline(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		pipeline    string
		opts        Options
		want        string
		wantChanged bool
		wantCode    int32
	}{
		{name: "set computes from other fields", give: `{"_id": 1, "a": 2, "b": 3}`, pipeline: `[{"$set": {"c": {"$add": ["$a", "$b"]}}}]`, want: `{"_id": 1, "a": 2, "b": 3, "c": 5}`, wantChanged: true},
		{name: "stages run in order", give: `{"_id": 1, "a": 2}`, pipeline: `[{"$set": {"b": "$a"}}, {"$unset": "a"}]`, want: `{"_id": 1, "b": 2}`, wantChanged: true},
		{name: "a no-op is not a modification", give: `{"_id": 1, "a": 2}`, pipeline: `[{"$set": {"a": 2}}]`, want: `{"_id": 1, "a": 2}`},
		{name: "replaceWith keeps the _id", give: `{"_id": 1, "a": {"x": 1}}`, pipeline: `[{"$replaceWith": "$a"}]`, want: `{"_id": 1, "x": 1}`, wantChanged: true},
		{name: "changing the _id fails", give: `{"_id": 1}`, pipeline: `[{"$set": {"_id": 2}}]`, wantCode: merr.ImmutableField},
		{name: "arrayFilters are refused", give: `{"_id": 1}`, pipeline: `[{"$set": {"a": 1}}]`, opts: Options{ArrayFilters: []bson.D{{{Key: "x", Value: 1}}}}, wantCode: merr.FailedToParse},
		{name: "an expression error fails", give: `{"_id": 1, "a": "x"}`, pipeline: `[{"$set": {"b": {"$add": ["$a", 1]}}}]`, wantCode: 16554},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w bson.D
			require.NoError(t, bson.UnmarshalExtJSON([]byte(`{"p": `+tt.pipeline+`}`), false, &w))
			u, err := Compile(w[0].Value)
			require.NoError(t, err)
			require.True(t, u.IsPipeline())
			got, changed, err := u.Apply(doc(tt.give), tt.opts)
			if tt.wantCode != 0 {
				requireCode(t, err, tt.wantCode, "")
				return
			}
			require.NoError(t, err)
			require.Equal(t, doc(tt.want), got)
			require.Equal(t, tt.wantChanged, changed)
		})
	}
}
