package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// apiV1Commands are the commands of Stable API Version 1 that mongotest
// implements (manual: reference/stable-api-changelog). With apiStrict any
// other is refused, as a client pinned to the strict Stable API must learn
// on its tests, not in production.
var apiV1Commands = map[string]bool{
	"abortTransaction": true, "aggregate": true, "collMod": true, "commitTransaction": true,
	"count": true, "create": true, "createIndexes": true, "delete": true, "drop": true,
	"dropDatabase": true, "dropIndexes": true, "endSessions": true, "find": true,
	"findAndModify": true, "findandmodify": true, "getMore": true, "hello": true, "insert": true,
	"killCursors": true, "listCollections": true, "listDatabases": true, "listIndexes": true,
	"ping": true, "refreshSessions": true, "update": true,
}

// apiStrictStages are the aggregation stages mongotest implements that are
// not in API Version 1 (diagnostic stages).
var apiStrictStages = map[string]bool{
	"$collStats": true, "$currentOp": true, "$indexStats": true, "$listLocalSessions": true,
	"$listSessions": true, "$planCacheStats": true,
}

// checkAPIParameters checks the Stable API fields as MongoDB does before a
// command runs (src/mongo/db/api_parameters.cpp, enforced in
// service_entry_point_common.cpp): apiStrict and apiDeprecationErrors need
// an apiVersion, the only version is "1", and with apiStrict a command or
// aggregation stage outside Version 1 is an APIStrictError.
func checkAPIParameters(name string, cmd bson.D) error {
	versionV, hasVersion := bsonkit.Get(cmd, "apiVersion")
	strict := false
	for _, key := range []string{"apiStrict", "apiDeprecationErrors"} {
		v, has := bsonkit.Get(cmd, key)
		if !has {
			continue
		}
		b, ok := v.(bool)
		if !ok {
			return typeErr(key, v, "bool")
		}
		if !hasVersion {
			return merr.New(4886600, "Provided %s without passing apiVersion", key)
		}
		if key == "apiStrict" {
			strict = b
		}
	}
	if !hasVersion {
		return nil
	}
	version, ok := versionV.(string)
	if !ok {
		return typeErr("apiVersion", versionV, "string")
	}
	if version != "1" {
		return merr.New(merr.APIVersionError, "API version must be \"1\"")
	}
	if !strict {
		return nil
	}
	if !apiV1Commands[name] {
		return merr.New(merr.APIStrictError, "Provided apiStrict:true, but the command %s is not in API Version 1", name)
	}
	if name == "aggregate" {
		pipeline, _ := field(cmd, "pipeline").(bson.A)
		for _, st := range pipeline {
			if d, ok := st.(bson.D); ok && len(d) > 0 && apiStrictStages[d[0].Key] {
				return merr.New(merr.APIStrictError, "%s is not allowed with 'apiStrict: true' in API Version 1", d[0].Key)
			}
		}
	}
	return nil
}
