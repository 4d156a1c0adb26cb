package aggregate

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

type mapSource map[string][]bson.D

func (m mapSource) Documents(coll string) ([]bson.D, error) { return m[coll], nil }

func TestJoins(t *testing.T) {
	src := mapSource{
		"orders": docs(`[{"_id": 1, "item": "a", "qty": 2}, {"_id": 2, "item": "b", "qty": 9}, {"_id": 3, "item": "a", "qty": 5}, {"_id": 4}]`),
		"more":   docs(`[{"_id": 10}, {"_id": 11}]`),
	}
	items := `[{"_id": "a", "min": 3}, {"_id": "b", "min": 1}, {"_id": "c"}]`
	tests := []struct {
		name     string
		give     string
		pipeline string
		want     string
		wantCode int32
	}{
		{name: "lookup by equality", give: items,
			pipeline: `[{"$lookup": {"from": "orders", "localField": "_id", "foreignField": "item", "as": "o"}}, {"$project": {"o.qty": 1}}]`,
			want:     `[{"_id": "a", "o": [{"qty": 2}, {"qty": 5}]}, {"_id": "b", "o": [{"qty": 9}]}, {"_id": "c", "o": []}]`},
		{name: "lookup of a missing local field matches missing foreign fields", give: `[{"_id": 1}]`,
			pipeline: `[{"$lookup": {"from": "orders", "localField": "x", "foreignField": "item", "as": "o"}}]`,
			want:     `[{"_id": 1, "o": [{"_id": 4}]}]`},
		{name: "lookup with let and pipeline", give: items,
			pipeline: `[{"$lookup": {"from": "orders", "let": {"it": "$_id", "m": "$min"}, "pipeline": [{"$match": {"$expr": {"$and": [{"$eq": ["$item", "$$it"]}, {"$gte": ["$qty", "$$m"]}]}}}, {"$project": {"_id": 1}}], "as": "o"}}]`,
			want:     `[{"_id": "a", "min": 3, "o": [{"_id": 3}]}, {"_id": "b", "min": 1, "o": [{"_id": 2}]}, {"_id": "c", "o": []}]`},
		{name: "lookup pipeline with an undefined variable fails", give: items,
			pipeline: `[{"$lookup": {"from": "orders", "pipeline": [{"$match": {"$expr": "$$nope"}}], "as": "o"}}]`,
			wantCode: 17276},
		{name: "unionWith a collection", give: `[{"_id": 1}]`, pipeline: `[{"$unionWith": "more"}]`, want: `[{"_id": 1}, {"_id": 10}, {"_id": 11}]`},
		{name: "unionWith a pipeline", give: `[{"_id": 1}]`, pipeline: `[{"$unionWith": {"coll": "more", "pipeline": [{"$match": {"_id": 11}}]}}]`, want: `[{"_id": 1}, {"_id": 11}]`},
		{name: "unionWith needs a collection", give: `[]`, pipeline: `[{"$unionWith": {"pipeline": []}}]`, wantCode: codeMissingFieldStage},
		{name: "match with let variables", give: items, pipeline: `[{"$match": {"$expr": {"$eq": ["$_id", "$$want"]}}}]`, want: `[{"_id": "b", "min": 1}]`},
		{name: "expr that fails while running fails the pipeline", give: items, pipeline: `[{"$match": {"$expr": {"$divide": [1, 0]}}}]`, wantCode: 16608},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompileWith(pipeline(tt.pipeline), Options{Source: src, Vars: map[string]any{"want": "b"}})
			if err == nil {
				var got []bson.D
				got, err = p.Run(docs(tt.give))
				if tt.wantCode == 0 {
					require.NoError(t, err)
					require.Equal(t, docs(tt.want), got)
					return
				}
			}
			requireCode(t, err, tt.wantCode, "")
		})
	}
}

func TestLookupNeedsASource(t *testing.T) {
	_, err := Compile(pipeline(`[{"$lookup": {"from": "x", "localField": "a", "foreignField": "b", "as": "c"}}]`))
	requireCode(t, err, merr.IllegalOperation, "")
}

func TestOutput(t *testing.T) {
	p, err := Compile(pipeline(`[{"$match": {}}, {"$merge": {"into": {"db": "d", "coll": "c"}, "on": ["k"], "whenMatched": "replace", "whenNotMatched": "discard"}}]`))
	require.NoError(t, err)
	require.Equal(t, &Output{Merge: true, DB: "d", Coll: "c", On: []string{"k"}, WhenMatched: "replace", WhenNotMatched: "discard"}, p.Output())
	p, err = Compile(pipeline(`[{"$out": "c"}]`))
	require.NoError(t, err)
	require.Equal(t, &Output{Coll: "c"}, p.Output())
	_, err = Compile(pipeline(`[{"$merge": {"into": "c", "whenMatched": "bogus"}}]`))
	requireCode(t, err, merr.BadValue, "")
}
