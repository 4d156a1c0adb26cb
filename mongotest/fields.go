package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// fieldRule is how mongotest treats one field of a command (or of a
// statement or spec inside one). The rule is never "accept and ignore"
// unless ignoring it is what MongoDB itself does on a one-member replica
// set: a field mongotest does not implement fails the command, naming the
// field, so that no caller ever gets a silently wrong answer.
type fieldRule int8

const (
	// implemented: the command honours the field as MongoDB does.
	implemented fieldRule = iota
	// noEffect: accepted; on a single in-memory node MongoDB's behaviour
	// with the field is the same as without it (comment, allowDiskUse,
	// allowPartialResults off mongos).
	noEffect
	// notImplemented: MongoDB knows the field but mongotest does not
	// implement it; the command fails with NotImplemented.
	notImplemented
)

// fields lists the fields a command, statement or spec may have, besides
// the generic ones (genericFields). A field in none of them is refused as
// MongoDB 7.0's parser refuses it: "BSON field 'find.foo' is an unknown
// field." (code 40415).
type fields map[string]fieldRule

// genericFields are the generic command arguments every command takes
// (MongoDB's generic_argument.idl); the session and wire layers handle them.
var genericFields = fields{
	"$db": implemented, "lsid": implemented, "txnNumber": implemented, "autocommit": implemented,
	"startTransaction": implemented, "readConcern": implemented, "writeConcern": implemented,
	"maxTimeMS": implemented, "$clusterTime": implemented, "$readPreference": noEffect,
	"comment": noEffect, "apiVersion": implemented, "apiStrict": implemented, "apiDeprecationErrors": implemented,
	"stmtId": noEffect, "$queryOptions": noEffect, "$audit": noEffect, "$client": noEffect,
}

// Fields of commands and of the documents inside them. An entry switches
// from notImplemented to implemented together with the code that honours
// the field.
var (
	insertFields = fields{"documents": implemented, "ordered": implemented, "bypassDocumentValidation": implemented,
		"bypassEmptyTsReplacement": implemented}
	updateFields = fields{"updates": implemented, "ordered": implemented, "bypassDocumentValidation": implemented,
		"let": implemented, "bypassEmptyTsReplacement": implemented}
	updateStmtFields = fields{"q": implemented, "u": implemented, "upsert": implemented, "multi": implemented,
		"arrayFilters": implemented, "hint": implemented, "collation": implemented, "c": implemented,
		"upsertSupplied": noEffect}
	deleteFields     = fields{"deletes": implemented, "ordered": implemented, "let": implemented}
	deleteStmtFields = fields{"q": implemented, "limit": implemented, "hint": implemented, "collation": implemented}
	findFields       = fields{"filter": implemented, "sort": implemented, "projection": implemented,
		"hint": implemented, "skip": implemented, "limit": implemented, "batchSize": implemented,
		"singleBatch": implemented, "noCursorTimeout": implemented, "tailable": implemented,
		"awaitData": implemented, "allowDiskUse": noEffect, "allowPartialResults": noEffect,
		"oplogReplay": noEffect, "readOnce": noEffect, "collation": implemented, "let": implemented,
		"max": notImplemented, "min": notImplemented, "returnKey": notImplemented, "showRecordId": notImplemented}
	getMoreFields = fields{"collection": implemented, "batchSize": implemented, "term": noEffect,
		"lastKnownCommittedOpTime": noEffect}
	killCursorsFields   = fields{"cursors": implemented}
	findAndModifyFields = fields{"query": implemented, "sort": implemented, "remove": implemented,
		"update": implemented, "new": implemented, "fields": implemented, "upsert": implemented,
		"arrayFilters": implemented, "hint": implemented, "bypassDocumentValidation": implemented,
		"collation": implemented, "let": implemented, "bypassEmptyTsReplacement": implemented}
	countFields = fields{"query": implemented, "limit": implemented, "skip": implemented, "hint": implemented,
		"fields": noEffect, "collation": implemented}
	distinctFields  = fields{"key": implemented, "query": implemented, "collation": implemented}
	aggregateFields = fields{"pipeline": implemented, "cursor": implemented, "hint": implemented,
		"allowDiskUse": noEffect, "bypassDocumentValidation": implemented, "explain": notImplemented,
		"collation": implemented, "let": implemented}
	cursorFields = fields{"batchSize": implemented}
	createFields = fields{"idIndex": noEffect, "storageEngine": noEffect, "indexOptionDefaults": noEffect,
		"autoIndexId": noEffect, "changeStreamPreAndPostImages": noEffect, "capped": notImplemented,
		"size": notImplemented, "max": notImplemented, "validator": implemented,
		"validationLevel": implemented, "validationAction": implemented, "viewOn": implemented,
		"pipeline": implemented, "collation": implemented, "timeseries": notImplemented,
		"expireAfterSeconds": notImplemented, "clusteredIndex": notImplemented, "encryptedFields": notImplemented}
	createIndexesFields = fields{"indexes": implemented, "commitQuorum": implemented}
	indexSpecFields     = fields{"key": implemented, "name": implemented, "unique": implemented,
		"sparse": implemented, "partialFilterExpression": implemented, "expireAfterSeconds": implemented,
		"v": noEffect, "ns": noEffect, "background": noEffect, "storageEngine": noEffect, "hidden": implemented,
		"collation": implemented, "weights": notImplemented, "default_language": notImplemented,
		"language_override": notImplemented, "textIndexVersion": notImplemented,
		"2dsphereIndexVersion": notImplemented, "bits": notImplemented, "min": notImplemented,
		"max": notImplemented, "wildcardProjection": notImplemented, "clustered": notImplemented,
		"prepareUnique": implemented}
	listIndexesFields     = fields{"cursor": implemented}
	dropIndexesFields     = fields{"index": implemented}
	listCollectionsFields = fields{"filter": implemented, "nameOnly": implemented, "cursor": implemented,
		"authorizedCollections": noEffect}
	listDatabasesFields = fields{"filter": implemented, "nameOnly": implemented, "authorizedDatabases": noEffect}
	txnEndFields        = fields{"recoveryToken": noEffect}
	noFields            = fields{}
)

// codeDuplicateField is the code MongoDB's command parsers give a field
// given twice (IDLParserContext::throwDuplicateField, Location40413).
const codeDuplicateField int32 = 40413

// check refuses d's fields (from the first on, or after the command name
// when command is true) that fs does not implement, and a field given twice. path names d in
// messages: "find", "update.updates".
func (fs fields) check(path string, d bson.D, command bool) error {
	if fs == nil {
		return nil
	}
	from := 0
	if command {
		from = 1
	}
	seen := make(map[string]bool, len(d))
	for _, e := range d[from:] {
		if seen[e.Key] {
			return merr.New(codeDuplicateField, "BSON field '%s.%s' is a duplicate field", path, e.Key)
		}
		seen[e.Key] = true
		rule, ok := fs[e.Key]
		if !ok && command {
			rule, ok = genericFields[e.Key]
		}
		switch {
		case !ok:
			return merr.New(merr.Location40415, "BSON field '%s.%s' is an unknown field.", path, e.Key)
		case rule == notImplemented:
			return merr.New(merr.NotImplemented, "mongotest does not implement the '%s' option of %s", e.Key, path)
		}
	}
	return nil
}
