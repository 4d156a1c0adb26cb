package query

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

func ext(t *testing.T, s string) bson.D {
	t.Helper()
	var d bson.D
	require.NoError(t, bson.UnmarshalExtJSON([]byte(s), false, &d))
	return d
}

func TestSchema(t *testing.T) {
	const person = `{"bsonType": "object", "required": ["name", "age"], "additionalProperties": false,
		"properties": {"_id": {}, "name": {"bsonType": "string", "minLength": 2, "pattern": "^[A-Z]"},
		"age": {"bsonType": ["int", "long"], "minimum": 0, "maximum": 150, "exclusiveMaximum": true},
		"tags": {"bsonType": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true, "maxItems": 2},
		"kind": {"anyOf": [{"bsonType": "string"}, {"bsonType": "null"}]}}}`
	tests := []struct {
		name     string
		doc      string
		wantRule string // the first rule not satisfied; "" when valid
	}{
		{name: "a valid document", doc: `{"_id": 1, "name": "Ann", "age": 30, "tags": ["a", "b"], "kind": null}`},
		{name: "a missing required field", doc: `{"_id": 1, "name": "Ann"}`, wantRule: "required"},
		{name: "a wrong type", doc: `{"_id": 1, "name": "Ann", "age": "x"}`, wantRule: "properties"},
		{name: "a double is not an int", doc: `{"_id": 1, "name": "Ann", "age": 3.0}`, wantRule: "properties"},
		{name: "an exclusive maximum", doc: `{"_id": 1, "name": "Ann", "age": 150}`, wantRule: "properties"},
		{name: "a short string", doc: `{"_id": 1, "name": "A", "age": 1}`, wantRule: "properties"},
		{name: "a pattern", doc: `{"_id": 1, "name": "ann", "age": 1}`, wantRule: "properties"},
		{name: "an enum in items", doc: `{"_id": 1, "name": "Ann", "age": 1, "tags": ["c"]}`, wantRule: "properties"},
		{name: "duplicate items", doc: `{"_id": 1, "name": "Ann", "age": 1, "tags": ["a", "a"]}`, wantRule: "properties"},
		{name: "an additional property", doc: `{"_id": 1, "name": "Ann", "age": 1, "x": 1}`, wantRule: "additionalProperties"},
		{name: "anyOf", doc: `{"_id": 1, "name": "Ann", "age": 1, "kind": 5}`, wantRule: "properties"},
	}
	s, err := CompileSchema(ext(t, person))
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Explain(ext(t, tt.doc))
			if tt.wantRule == "" {
				require.Empty(t, got)
				return
			}
			require.NotEmpty(t, got)
			require.Equal(t, tt.wantRule, get1(got[0].(bson.D), "operatorName"))
		})
	}
	t.Run("required reports the missing properties", func(t *testing.T) {
		got := s.Explain(ext(t, `{"_id": 1}`))
		require.Equal(t, bson.A{"name", "age"}, get1(got[0].(bson.D), "missingProperties"))
	})
}

func TestSchemaCompileErrors(t *testing.T) {
	tests := []struct {
		give     string
		wantCode int32
	}{
		{`{"foo": 1}`, merr.FailedToParse},
		{`{"$ref": "#/x"}`, merr.FailedToParse},
		{`{"type": "string", "bsonType": "string"}`, merr.FailedToParse},
		{`{"bsonType": "nope"}`, merr.BadValue},
		{`{"type": "integer"}`, merr.FailedToParse},
		{`{"required": []}`, merr.FailedToParse},
		{`{"minimum": "x"}`, merr.TypeMismatch},
		{`{"properties": {"a": 1}}`, merr.TypeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := CompileSchema(ext(t, tt.give))
			requireCode(t, err, tt.wantCode)
		})
	}
}

func TestJSONSchemaFilter(t *testing.T) {
	f, err := Compile(ext(t, `{"$jsonSchema": {"required": ["a"]}, "b": 1}`))
	require.NoError(t, err)
	require.True(t, f.Match(ext(t, `{"a": 0, "b": 1}`)))
	require.False(t, f.Match(ext(t, `{"b": 1}`)))
}

func requireCode(t *testing.T, err error, code int32) {
	t.Helper()
	me, ok := err.(*merr.Error)
	require.True(t, ok, "want *merr.Error, got %v", err)
	require.Equal(t, code, me.Code, me.Msg)
}
