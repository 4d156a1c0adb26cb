package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// apiStrictStages are the aggregation stages mongotest implements that are
// not in Stable API Version 1 (the diagnostic ones).
var apiStrictStages = map[string]bool{
	"$collStats": true, "$currentOp": true, "$indexStats": true, "$listLocalSessions": true,
	"$listSessions": true, "$planCacheStats": true,
}

// checkAPIStrictStages refuses, under apiStrict, an aggregate whose
// pipeline has a stage outside API Version 1, as MongoDB's
// LiteParsedDocumentSource::assertPermittedInAPIVersion does.
func checkAPIStrictStages(name string, cmd bson.D) error {
	if name != "aggregate" {
		return nil
	}
	pipeline, _ := field(cmd, "pipeline").(bson.A)
	for _, st := range pipeline {
		if d, ok := st.(bson.D); ok && len(d) > 0 && apiStrictStages[d[0].Key] {
			return merr.New(merr.APIStrictError, "%s is not allowed with 'apiStrict: true' in API Version 1", d[0].Key)
		}
	}
	return nil
}
