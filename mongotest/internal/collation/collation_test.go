package collation

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

func spec(kv ...any) bson.D {
	d := bson.D{}
	for i := 0; i < len(kv); i += 2 {
		d = append(d, bson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return d
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name string
		give bson.D
		a, b string
		want int
	}{
		{name: "tertiary distinguishes case", give: spec("locale", "en"), a: "a", b: "A", want: -1},
		{name: "secondary ignores case", give: spec("locale", "en", "strength", int32(2)), a: "a", b: "A", want: 0},
		{name: "secondary keeps diacritics", give: spec("locale", "en", "strength", int32(2)), a: "a", b: "ä", want: -1},
		{name: "primary ignores diacritics", give: spec("locale", "en", "strength", int32(1)), a: "a", b: "Ä", want: 0},
		{name: "caseLevel at primary keeps case", give: spec("locale", "en", "strength", int32(1), "caseLevel", true), a: "ä", b: "A", want: -1},
		{name: "caseLevel at primary ignores diacritics", give: spec("locale", "en", "strength", int32(1), "caseLevel", true), a: "a", b: "ä", want: 0},
		{name: "numeric ordering", give: spec("locale", "en", "numericOrdering", true), a: "9", b: "10", want: -1},
		{name: "ICU locale ids", give: spec("locale", "fr_CA", "strength", int32(1)), a: "cote", b: "côte", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.give)
			require.NoError(t, err)
			require.Equal(t, tt.want, c.Compare(tt.a, tt.b))
			require.Equal(t, tt.want == 0, c.Key(tt.a) == c.Key(tt.b), "keys agree with Compare")
		})
	}
}

func TestParse(t *testing.T) {
	c, err := Parse(spec("locale", "simple"))
	require.NoError(t, err)
	require.Nil(t, c)
	require.Equal(t, -1, c.Compare("A", "a"), "simple is binary")

	tests := []struct {
		give bson.D
		want int32
	}{
		{spec("strength", int32(1)), 40414},
		{spec("locale", "xx"), merr.BadValue},
		{spec("locale", "en", "strength", int32(0)), merr.BadValue},
		{spec("locale", "en", "alternate", "shifted"), merr.BadValue},
		{spec("locale", "en", "caseFirst", "upper"), merr.BadValue},
		{spec("locale", "en", "bogus", 1), 40415},
		{spec("locale", "simple", "strength", int32(1)), merr.BadValue},
		{spec("locale", 1), merr.TypeMismatch},
	}
	for _, tt := range tests {
		_, err := Parse(tt.give)
		me, ok := err.(*merr.Error)
		require.True(t, ok, "%v: %v", tt.give, err)
		require.Equal(t, tt.want, me.Code, "%v: %v", tt.give, err)
	}
}
