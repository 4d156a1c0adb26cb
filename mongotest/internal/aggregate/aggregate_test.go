package aggregate

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// docs parses a relaxed extended JSON array of documents: 1 is int32, 1.0 a
// double and {"$numberLong": "1"} an int64.
func docs(s string) []bson.D {
	var w struct {
		V []bson.D `bson:"v"`
	}
	if err := bson.UnmarshalExtJSON([]byte(`{"v": `+s+`}`), false, &w); err != nil {
		panic(err)
	}
	if w.V == nil {
		return []bson.D{}
	}
	return w.V
}

func pipeline(s string) bson.A {
	var w bson.D
	if err := bson.UnmarshalExtJSON([]byte(`{"v": `+s+`}`), false, &w); err != nil {
		panic(err)
	}
	return w[0].Value.(bson.A)
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

const people = `[
	{"_id": 1, "name": "Ann", "dept": "eng", "age": 30, "tags": ["a", "b"]},
	{"_id": 2, "name": "Bob", "dept": "ops", "age": 25, "tags": []},
	{"_id": 3, "name": "Cid", "dept": "eng", "age": 41.5},
	{"_id": 4, "name": "Dee", "dept": null, "age": "unknown", "tags": null}
]`

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		pipeline string
		want     string
		wantCode int32
		wantMsg  string
	}{
		{name: "an empty pipeline returns the input", give: people, pipeline: `[]`, want: people},

		// $match, $sort, $skip, $limit, $count
		{name: "match filters", give: people, pipeline: `[{"$match": {"dept": "eng"}}, {"$project": {"_id": 1}}]`, want: `[{"_id": 1}, {"_id": 3}]`},
		{name: "sort orders stably", give: people, pipeline: `[{"$sort": {"dept": -1}}, {"$project": {"_id": 1}}]`, want: `[{"_id": 2}, {"_id": 1}, {"_id": 3}, {"_id": 4}]`},
		{name: "skip and limit", give: people, pipeline: `[{"$skip": 1}, {"$limit": 2}, {"$project": {"_id": 1}}]`, want: `[{"_id": 2}, {"_id": 3}]`},
		{name: "skip past the end", give: people, pipeline: `[{"$skip": 10}]`, want: `[]`},
		{name: "count", give: people, pipeline: `[{"$match": {"dept": "eng"}}, {"$count": "n"}]`, want: `[{"n": 2}]`},
		{name: "count of nothing is no document", give: people, pipeline: `[{"$match": {"dept": "x"}}, {"$count": "n"}]`, want: `[]`},
		{name: "limit zero fails", give: people, pipeline: `[{"$limit": 0}]`, wantCode: codeLimitNotPositive, wantMsg: "the limit must be positive"},
		{name: "negative skip fails", give: people, pipeline: `[{"$skip": -1}]`, wantCode: codeSkipBad},
		{name: "count with a dollar fails", give: people, pipeline: `[{"$count": "$n"}]`, wantCode: codeCountDollar},
		{name: "match needs an object", give: people, pipeline: `[{"$match": 1}]`, wantCode: codeMatchNotObject},

		// $project
		{name: "project includes in document order with _id", give: people, pipeline: `[{"$limit": 1}, {"$project": {"age": 1, "name": true}}]`,
			want: `[{"_id": 1, "name": "Ann", "age": 30}]`},
		{name: "project excludes _id", give: people, pipeline: `[{"$limit": 1}, {"$project": {"_id": 0, "name": 1}}]`, want: `[{"name": "Ann"}]`},
		{name: "project excludes fields", give: people, pipeline: `[{"$limit": 1}, {"$project": {"tags": 0, "age": 0}}]`, want: `[{"_id": 1, "name": "Ann", "dept": "eng"}]`},
		{name: "project computes fields after inclusions", give: people, pipeline: `[{"$limit": 1}, {"$project": {"n": {"$toUpper": "$name"}, "dept": 1, "lit": "x"}}]`,
			want: `[{"_id": 1, "dept": "eng", "n": "ANN", "lit": "x"}]`},
		{name: "project leaves out missing computed fields", give: `[{"_id": 1}]`, pipeline: `[{"$project": {"x": "$nope"}}]`, want: `[{"_id": 1}]`},
		{name: "project reaches into subdocuments and arrays", give: `[{"_id": 1, "a": {"b": 1, "c": 2}, "l": [{"b": 1, "c": 2}, 5]}]`,
			pipeline: `[{"$project": {"a.b": 1, "l": {"b": 1}}}]`, want: `[{"_id": 1, "a": {"b": 1}, "l": [{"b": 1}]}]`},
		{name: "project exclusion reaches into arrays", give: `[{"_id": 1, "l": [{"b": 1, "c": 2}, 5]}]`,
			pipeline: `[{"$project": {"l.b": 0}}]`, want: `[{"_id": 1, "l": [{"c": 2}, 5]}]`},
		{name: "project literal", give: `[{"_id": 1}]`, pipeline: `[{"$project": {"x": {"$literal": 1}, "_id": 0}}]`, want: `[{"x": 1}]`},
		{name: "project mixing exclusion into inclusion fails", give: people, pipeline: `[{"$project": {"a": 1, "b": 0}}]`, wantCode: codeExclusionInInclude,
			wantMsg: "Invalid $project :: caused by :: Cannot do exclusion on field b in inclusion projection"},
		{name: "project mixing inclusion into exclusion fails", give: people, pipeline: `[{"$project": {"b": 0, "a": 1}}]`, wantCode: codeInclusionInExclude},
		{name: "empty project fails", give: people, pipeline: `[{"$project": {}}]`, wantCode: codeProjectEmpty},

		// $addFields, $set, $unset
		{name: "addFields appends and replaces in place", give: `[{"_id": 1, "a": 1, "b": 2}]`, pipeline: `[{"$addFields": {"c": {"$add": ["$a", "$b"]}, "a": "x"}}]`,
			want: `[{"_id": 1, "a": "x", "b": 2, "c": 3}]`},
		{name: "set merges into subdocuments", give: `[{"_id": 1, "a": {"x": 1}}]`, pipeline: `[{"$set": {"a.y": 2, "b": {"c": true}}}]`,
			want: `[{"_id": 1, "a": {"x": 1, "y": 2}, "b": {"c": true}}]`},
		{name: "addFields removes a field set to $$REMOVE", give: `[{"_id": 1, "a": 1}]`, pipeline: `[{"$addFields": {"a": "$$REMOVE"}}]`, want: `[{"_id": 1}]`},
		{name: "addFields of $$ROOT", give: `[{"_id": 1}]`, pipeline: `[{"$addFields": {"r": "$$ROOT"}}]`, want: `[{"_id": 1, "r": {"_id": 1}}]`},
		{name: "unset removes fields", give: `[{"_id": 1, "a": {"b": 1, "c": 1}, "d": 1}]`, pipeline: `[{"$unset": ["a.b", "d"]}]`, want: `[{"_id": 1, "a": {"c": 1}}]`},
		{name: "unset of a string", give: `[{"_id": 1, "d": 1}]`, pipeline: `[{"$unset": "d"}]`, want: `[{"_id": 1}]`},
		{name: "unset of a number fails", give: people, pipeline: `[{"$unset": 1}]`, wantCode: codeUnsetBadSpec},

		// $group
		{name: "group by a field", give: people, pipeline: `[{"$group": {"_id": "$dept", "n": {"$sum": 1}, "ages": {"$sum": "$age"}, "avg": {"$avg": "$age"}, "names": {"$push": "$name"}}}]`,
			want: `[
				{"_id": "eng", "n": 2, "ages": 71.5, "avg": 35.75, "names": ["Ann", "Cid"]},
				{"_id": "ops", "n": 1, "ages": 25, "avg": 25.0, "names": ["Bob"]},
				{"_id": null, "n": 1, "ages": 0, "avg": null, "names": ["Dee"]}
			]`},
		{name: "group everything under null", give: people, pipeline: `[{"$group": {"_id": null, "min": {"$min": "$age"}, "max": {"$max": "$age"}, "first": {"$first": "$name"}, "last": {"$last": "$name"}}}]`,
			want: `[{"_id": null, "min": 25, "max": "unknown", "first": "Ann", "last": "Dee"}]`},
		{name: "group by a document", give: `[{"a": 1, "b": 2}, {"a": 1.0, "b": 2}, {"a": 2}]`, pipeline: `[{"$group": {"_id": {"a": "$a", "b": "$b"}, "c": {"$count": {}}}}]`,
			want: `[{"_id": {"a": 1, "b": 2}, "c": 2}, {"_id": {"a": 2}, "c": 1}]`},
		{name: "group addToSet dedupes", give: `[{"v": 1}, {"v": 1}, {"v": 2}, {}]`, pipeline: `[{"$group": {"_id": null, "s": {"$addToSet": "$v"}}}]`, want: `[{"_id": null, "s": [1, 2]}]`},
		{name: "group sum promotes int32 overflow", give: `[{"v": 2147483647}, {"v": 1}]`, pipeline: `[{"$group": {"_id": null, "s": {"$sum": "$v"}}}]`,
			want: `[{"_id": null, "s": {"$numberLong": "2147483648"}}]`},
		{name: "group needs an _id", give: people, pipeline: `[{"$group": {"n": {"$sum": 1}}}]`, wantCode: codeGroupNoID, wantMsg: "a group specification must include an _id"},
		{name: "group rejects an unknown accumulator", give: people, pipeline: `[{"$group": {"_id": null, "n": {"$foo": 1}}}]`, wantCode: codeGroupUnknownAcc, wantMsg: "Unknown group operator '$foo'"},
		{name: "group rejects a non-accumulator", give: people, pipeline: `[{"$group": {"_id": null, "n": 1}}]`, wantCode: codeGroupNotAccumulator},
		{name: "group rejects a dotted field", give: people, pipeline: `[{"$group": {"_id": null, "a.b": {"$sum": 1}}}]`, wantCode: codeGroupDottedField},

		// $unwind
		{name: "unwind a string path", give: people, pipeline: `[{"$unwind": "$tags"}, {"$project": {"tags": 1}}]`, want: `[{"_id": 1, "tags": "a"}, {"_id": 1, "tags": "b"}]`},
		{name: "unwind preserving with an index", give: people,
			pipeline: `[{"$unwind": {"path": "$tags", "includeArrayIndex": "i", "preserveNullAndEmptyArrays": true}}, {"$project": {"tags": 1, "i": 1}}]`,
			want: `[
				{"_id": 1, "tags": "a", "i": {"$numberLong": "0"}},
				{"_id": 1, "tags": "b", "i": {"$numberLong": "1"}},
				{"_id": 2, "i": null},
				{"_id": 3, "i": null},
				{"_id": 4, "tags": null, "i": null}
			]`},
		{name: "unwind a scalar keeps it", give: `[{"_id": 1, "a": {"b": 5}}]`, pipeline: `[{"$unwind": "$a.b"}]`, want: `[{"_id": 1, "a": {"b": 5}}]`},
		{name: "unwind a nested array", give: `[{"_id": 1, "a": {"b": [1, 2]}}]`, pipeline: `[{"$unwind": "$a.b"}]`, want: `[{"_id": 1, "a": {"b": 1}}, {"_id": 1, "a": {"b": 2}}]`},
		{name: "unwind needs a dollar path", give: people, pipeline: `[{"$unwind": "tags"}]`, wantCode: codeUnwindPathDollar,
			wantMsg: "path option to $unwind stage should be prefixed with a '$': tags"},
		{name: "unwind rejects an unknown option", give: people, pipeline: `[{"$unwind": {"path": "$a", "x": 1}}]`, wantCode: codeUnwindUnknownOpt},
		{name: "unwind needs a path", give: people, pipeline: `[{"$unwind": {}}]`, wantCode: codeUnwindNoPath},

		// Pipeline shape
		{name: "an unknown stage fails", give: people, pipeline: `[{"$foo": {}}]`, wantCode: codeUnknownStage, wantMsg: "Unrecognized pipeline stage name: '$foo'"},
		{name: "graphLookup is not supported", give: people, pipeline: `[{"$graphLookup": {}}]`, wantCode: merr.IllegalOperation, wantMsg: "$graphLookup is not supported by mongotest"},
		{name: "lookup needs as", give: people, pipeline: `[{"$lookup": {"from": "x", "localField": "a", "foreignField": "b"}}]`, wantCode: merr.FailedToParse, wantMsg: "must specify 'as' field for a $lookup"},
		{name: "out must be the last stage", give: people, pipeline: `[{"$out": "x"}, {"$match": {}}]`, wantCode: codeOutNotLast, wantMsg: "$out can only be the final stage in the pipeline"},
		{name: "merge inside facet fails", give: people, pipeline: `[{"$facet": {"a": [{"$merge": "x"}]}}]`, wantCode: codeOutNested, wantMsg: "$merge is not allowed to be used within a $facet stage"},
		{name: "documents must be first", give: people, pipeline: `[{"$match": {}}, {"$documents": []}]`, wantCode: codeFirstStageOnly},
		{name: "replaceWith", give: people, pipeline: `[{"$match": {"_id": 1}}, {"$replaceWith": {"n": "$name"}}]`, want: `[{"n": "Ann"}]`},
		{name: "replaceRoot of a non-document fails", give: people, pipeline: `[{"$replaceRoot": {"newRoot": "$name"}}]`, wantCode: codeReplaceRootNotObject},
		{name: "facet runs each pipeline on the input", give: people,
			pipeline: `[{"$facet": {"n": [{"$count": "c"}], "eng": [{"$match": {"dept": "eng"}}, {"$project": {"_id": 1}}]}}]`,
			want:     `[{"n": [{"c": 4}], "eng": [{"_id": 1}, {"_id": 3}]}]`},
		{name: "documents replaces the input", give: people, pipeline: `[{"$documents": [{"x": 1}, {"x": {"$add": [1, 1]}}]}]`, want: `[{"x": 1}, {"x": 2}]`},
		{name: "map filter and let", give: `[{"_id": 1, "a": [1, 2, 3]}]`,
			pipeline: `[{"$project": {"m": {"$map": {"input": "$a", "as": "x", "in": {"$multiply": ["$$x", 10]}}}, "f": {"$filter": {"input": "$a", "cond": {"$gt": ["$$this", 1]}}}, "l": {"$let": {"vars": {"y": 5}, "in": {"$add": ["$$y", 1]}}}}}]`,
			want:     `[{"_id": 1, "m": [10, 20, 30], "f": [2, 3], "l": 6}]`},
		{name: "sum of longs overflowing only in between is a long", give: `[{"v": {"$numberLong": "9223372036854775807"}}, {"v": {"$numberLong": "1"}}, {"v": {"$numberLong": "-1"}}]`,
			pipeline: `[{"$group": {"_id": null, "s": {"$sum": "$v"}}}]`,
			want:     `[{"_id": null, "s": {"$numberLong": "9223372036854775807"}}]`},
		{name: "add of longs overflowing only in between is a long", give: `[{"_id": 1}]`,
			pipeline: `[{"$project": {"s": {"$add": [{"$numberLong": "9223372036854775807"}, {"$numberLong": "1"}, {"$numberLong": "-1"}]}}}]`,
			want:     `[{"_id": 1, "s": {"$numberLong": "9223372036854775807"}}]`},
		{name: "a stage needs one field", give: people, pipeline: `[{"$match": {}, "$limit": 1}]`, wantCode: codeStageOneField},
		{name: "a stage must be a document", give: people, pipeline: `[1]`, wantCode: merr.TypeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			give := docs(tt.give)
			before := docs(tt.give)
			p, err := Compile(pipeline(tt.pipeline))
			if err == nil {
				var got []bson.D
				got, err = p.Run(give)
				if tt.wantCode == 0 {
					require.NoError(t, err)
					require.Equal(t, docs(tt.want), got)
				}
			}
			require.Equal(t, before, give, "Run must not modify its input")
			if tt.wantCode != 0 {
				requireCode(t, err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestRunDoesNotAliasInput(t *testing.T) {
	give := docs(`[{"_id": 1, "a": {"b": 1}}]`)
	p, err := Compile(pipeline(`[{"$match": {}}]`))
	require.NoError(t, err)
	got, err := p.Run(give)
	require.NoError(t, err)
	got[0][1].Value.(bson.D)[0].Value = int32(9)
	require.Equal(t, docs(`[{"_id": 1, "a": {"b": 1}}]`), give)
}
