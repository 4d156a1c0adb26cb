package mongotest

import (
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// maxReplicaSetMembers is the largest w a write concern may name
// (repl::ReplSetConfig::kMaxMembers).
const maxReplicaSetMembers = 50

// checkGenericArgs parses the arguments any command may carry before the
// command runs, as MongoDB parses them before it runs anything: a command
// with a malformed one is refused and changes nothing.
func checkGenericArgs(cmd bson.D) error {
	if _, err := maxTimeMS(cmd); err != nil {
		return err
	}
	if err := checkReadConcernLevel(cmd); err != nil {
		return err
	}
	if err := checkWriteConcernW(cmd); err != nil {
		return err
	}
	// A safeBool in write_ops.idl and aggregate.idl.
	_, err := boolField(cmd, "bypassDocumentValidation", false)
	return err
}

// apiVersion1 are the commands of Stable API version 1 (MongoDB 7.0's
// manual, "Stable API Reference").
var apiVersion1 = map[string]bool{
	"abortTransaction": true, "aggregate": true, "authenticate": true, "collMod": true,
	"commitTransaction": true, "count": true, "create": true, "createIndexes": true, "delete": true,
	"drop": true, "dropDatabase": true, "dropIndexes": true, "endSessions": true, "explain": true,
	"find": true, "findAndModify": true, "getMore": true, "hello": true, "insert": true,
	"killCursors": true, "listCollections": true, "listDatabases": true, "listIndexes": true,
	"ping": true, "refreshSessions": true, "update": true,
}

// checkAPIParams applies the Stable API parameters as MongoDB does before
// a command runs (src/mongo/db/api_parameters.cpp): apiVersion is "1"
// (APIVersionError), apiStrict and apiDeprecationErrors need it, and with
// apiStrict a command outside version 1 is refused (APIStrictError).
// Aggregation stages and operators outside version 1 are not checked.
func checkAPIParams(name string, cmd bson.D) error {
	v, has := bsonkit.Get(cmd, "apiVersion")
	if !has {
		for _, k := range []string{"apiStrict", "apiDeprecationErrors"} {
			if _, ok := bsonkit.Get(cmd, k); ok {
				return merr.New(codeAPIWithoutVersion, "Provided %s without passing apiVersion", k)
			}
		}
		return nil
	}
	version, ok := v.(string)
	if !ok {
		return typeErr("apiVersion", v, "string")
	}
	if version != "1" {
		return merr.New(merr.APIVersionError, "API version must be \"1\"")
	}
	strict := false
	for _, k := range []string{"apiStrict", "apiDeprecationErrors"} {
		if b, ok := bsonkit.Get(cmd, k); ok {
			bv, isBool := b.(bool)
			if !isBool {
				return typeErr(k, b, "boolean")
			}
			strict = strict || (k == "apiStrict" && bv)
		}
	}
	if strict && !apiVersion1[commandName(name)] {
		return merr.New(merr.APIStrictError, "Provided apiStrict:true, but the command %s is not in API Version 1. Information on supported commands and migrations in API Version 1 can be found at https://dochub.mongodb.org/core/manual-versioning", name)
	}
	if strict {
		return checkAPIStrictStages(name, cmd)
	}
	return nil
}

// codeAPIWithoutVersion is MongoDB's location code for apiStrict or
// apiDeprecationErrors without apiVersion.
const codeAPIWithoutVersion = 4886600

// maxTimeMS returns the command's time limit in milliseconds, 0 for none,
// refusing what parseMaxTimeMS (src/mongo/db/query/max_time_ms_parser.cpp)
// refuses: a non-number, a value out of [0, INT_MAX], a fractional double.
func maxTimeMS(cmd bson.D) (int64, error) {
	v, ok := bsonkit.Get(cmd, "maxTimeMS")
	if !ok {
		return 0, nil
	}
	f, isNum := bsonkit.ToFloat(v)
	if !isNum {
		return 0, merr.New(merr.BadValue, "maxTimeMS must be a number")
	}
	if math.IsNaN(f) || f < 0 || math.Trunc(f) > math.MaxInt32 {
		return 0, merr.New(merr.BadValue, "maxTimeMS is out of range")
	}
	if _, isDouble := v.(float64); isDouble && f != math.Trunc(f) {
		return 0, merr.New(merr.BadValue, "maxTimeMS has non-integral value")
	}
	return int64(f), nil
}

// checkReadConcernLevel refuses a readConcern level outside the
// ReadConcernLevel enumeration (src/mongo/db/repl/read_concern_args.idl).
func checkReadConcernLevel(cmd bson.D) error {
	rc, err := docField(cmd, "readConcern")
	if err != nil || rc == nil {
		return err
	}
	level := ""
	if v, ok := bsonkit.Get(rc, "level"); ok {
		if level, ok = v.(string); !ok {
			return typeErr("readConcern.level", v, "string")
		}
		switch level {
		case "local", "majority", "linearizable", "available", "snapshot":
		default:
			return merr.New(merr.BadValue, "Enumeration value '%s' for field 'readConcern.level' is not a valid value.", level)
		}
	}
	return checkReadConcernTimes(rc, level)
}

// checkReadConcernTimes refuses what ReadConcernArgs::parse
// (src/mongo/db/repl/read_concern_args.cpp) refuses with InvalidOptions:
// an unknown field, afterClusterTime with atClusterTime, a null one,
// afterClusterTime with a level other than majority/local/snapshot,
// atClusterTime with a level other than snapshot.
func checkReadConcernTimes(rc bson.D, level string) error {
	var after, at *bson.Timestamp
	for _, e := range rc {
		switch e.Key {
		case "level", "afterOpTime", "provenance":
		case "afterClusterTime", "atClusterTime":
			ts, ok := e.Value.(bson.Timestamp)
			if !ok {
				return typeErr("readConcern."+e.Key, e.Value, "timestamp")
			}
			if e.Key == "afterClusterTime" {
				after = &ts
			} else {
				at = &ts
			}
		default:
			return merr.New(merr.InvalidOptions, "Unrecognized option in readConcern: %s", e.Key)
		}
	}
	switch {
	case after != nil && at != nil:
		return merr.New(merr.InvalidOptions, "Can not specify both afterClusterTime and atClusterTime")
	case after != nil && after.IsZero():
		return merr.New(merr.InvalidOptions, "afterClusterTime cannot be a null timestamp")
	case after != nil && level != "" && level != "majority" && level != "local" && level != "snapshot":
		return merr.New(merr.InvalidOptions, "afterClusterTime field can be set only if level is equal to majority, local, or snapshot")
	case at != nil && at.IsZero():
		return merr.New(merr.InvalidOptions, "atClusterTime cannot be a null timestamp")
	case at != nil && level != "snapshot":
		return merr.New(merr.InvalidOptions, "atClusterTime field can be set only if level is equal to snapshot")
	}
	return nil
}

// checkWriteConcernW refuses a w that deserializeWriteConcernW
// (src/mongo/db/write_concern_options.cpp) refuses: a number outside
// [0, 50], or a value that is neither number, string, object nor null.
func checkWriteConcernW(cmd bson.D) error {
	wc, err := docField(cmd, "writeConcern")
	if err != nil || wc == nil {
		return err
	}
	v, ok := bsonkit.Get(wc, "w")
	if !ok {
		return nil
	}
	switch v.(type) {
	case nil, bson.Undefined, string, bson.D:
		return nil
	}
	f, isNum := bsonkit.ToFloat(v)
	if !isNum {
		return merr.New(merr.FailedToParse, "w has to be a number, string, or object")
	}
	if n := math.Trunc(f); math.IsNaN(f) || n < 0 || n > maxReplicaSetMembers {
		return merr.New(merr.FailedToParse, "w has to be a non-negative number and not greater than %d; found: %v", maxReplicaSetMembers, n)
	}
	return nil
}
