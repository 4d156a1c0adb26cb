package mongotest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// $jsonSchema's enum and uniqueItems compare objects as JSON Schema does,
// without regard to field order (src/mongo/db/matcher/schema/
// json_schema_parser.cpp parseEnum and expression_internal_schema_unique_items.h
// use an UnorderedFieldsBSONElementComparator, woCompare with
// kIgnoreFieldOrder, nested documents included), and an enum holding two
// equal values is refused when parsed (FailedToParse, "$jsonSchema keyword
// 'enum' array cannot contain duplicate values"). mongotest compared in
// field order.
func TestJSONSchemaCompareObjectsIgnoringFieldOrder(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	requireOK(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"create":"w","validator":{"$jsonSchema":{"properties":{"e":{"enum":[{"a":1,"b":{"c":1,"d":[{"x":1,"y":2}]}}]},"u":{"uniqueItems":true}}}}}`)))
	r := runWithoutLsid(t, s, "db", fromJSON(t, `{"insert":"w","documents":[{"_id":1,"e":{"b":{"d":[{"y":2,"x":1}],"c":1},"a":1}}]}`))
	requireOK(t, r)
	assert.Nil(t, replyField(r, "writeErrors"), "the enum value matches: %v", r)
	r = runWithoutLsid(t, s, "db", fromJSON(t, `{"insert":"w","documents":[{"_id":2,"u":[{"a":1,"b":2},{"b":2,"a":1}]}]}`))
	assert.NotNil(t, replyField(r, "writeErrors"), "the items are not unique: %v", r)
	r = runWithoutLsid(t, s, "db", fromJSON(t, `{"insert":"w","documents":[{"_id":3,"u":[{"a":1,"b":2},{"b":2,"a":2}]},{"_id":4,"e":{"a":1,"b":{"c":1,"d":[{"x":1}]}}}]}`))
	writeErrors, _ := replyField(r, "writeErrors").(bson.A)
	assert.Len(t, writeErrors, 1, "only _id 4 fails: %v", r)
	requireCode(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"create":"w2","validator":{"$jsonSchema":{"properties":{"e":{"enum":[1,1.0]}}}}}`)), 9, "FailedToParse")
	requireCode(t, runWithoutLsid(t, s, "db", fromJSON(t, `{"create":"w3","validator":{"$jsonSchema":{"properties":{"e":{"enum":[{"a":1,"b":2},{"b":2,"a":1}]}}}}}`)), 9, "FailedToParse")
}
