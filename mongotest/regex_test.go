package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// MongoDB's $regex is PCRE (src/mongo/util/pcre_util.cpp flagsToOptions:
// UTF, without DOLLAR_ENDONLY): "$" matches at the end of the subject and
// also before a newline that ends it, so /ab$/ matches "ab\n"; \Z is the
// same anchor in any mode, \z only the very end; the u option is accepted
// and redundant. Go's RE2 "$" (without m) matches only at the very end.
func TestRegexDollarMatchesBeforeAFinalNewline(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("r")
	insertJSON(t, ctx, coll, `[{"_id":1,"s":"ab"},{"_id":2,"s":"ab\n"},{"_id":3,"s":"ab\nc"},{"_id":4,"s":"ab\n\n"},{"_id":5,"s":"x$\n"}]`)
	ids := func(filter string) []int32 {
		t.Helper()
		cur, err := coll.Find(ctx, fromJSON(t, filter))
		require.NoError(t, err)
		var got []struct {
			ID int32 `bson:"_id"`
		}
		require.NoError(t, cur.All(ctx, &got))
		out := []int32{}
		for _, d := range got {
			out = append(out, d.ID)
		}
		return out
	}
	tests := []struct {
		give string
		want []int32
	}{
		{give: `{"s":{"$regex":"ab$"}}`, want: []int32{1, 2}},
		{give: `{"s":{"$regex":"^ab$"}}`, want: []int32{1, 2}},
		{give: `{"s":{"$regularExpression":{"pattern":"ab$","options":""}}}`, want: []int32{1, 2}},
		{give: `{"s":{"$in":[{"$regularExpression":{"pattern":"ab$","options":""}}]}}`, want: []int32{1, 2}},
		{give: `{"s":{"$regex":"ab$","$options":"m"}}`, want: []int32{1, 2, 3, 4}},
		{give: `{"s":{"$regex":"ab\\Z"}}`, want: []int32{1, 2}},
		{give: `{"s":{"$regex":"ab\\Z","$options":"m"}}`, want: []int32{1, 2}},
		{give: `{"s":{"$regex":"ab\\z"}}`, want: []int32{1}},
		{give: `{"s":{"$regex":"ab\\n$"}}`, want: []int32{2, 4}},
		{give: `{"s":{"$regex":"[$]\\n"}}`, want: []int32{5}},
		{give: `{"s":{"$regex":"\\Q$\\E$"}}`, want: []int32{5}},
		{give: `{"s":{"$regex":"ab$","$options":"u"}}`, want: []int32{1, 2}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ids(tt.give), "%s", tt.give)
	}
	// A $ that input may follow matches in PCRE only before a final
	// newline the rest consumes (/ab$\n/ matches "ab\n"); mongotest
	// refuses it rather than answer without those documents.
	for _, pattern := range []string{`ab$\n`, `(ab$|x)\n`, `(?:ab$)+`, `ab\Z.`} {
		_, err := coll.Find(ctx, bson.D{{Key: "s", Value: bson.D{{Key: "$regex", Value: pattern}}}})
		requireCommandError(t, err, 238, "NotImplemented")
	}
	// A $jsonSchema pattern is the same PCRE.
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "$jsonSchema", Value: fromJSON(t, `{"properties":{"s":{"pattern":"ab$"}}}`)}})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
}
