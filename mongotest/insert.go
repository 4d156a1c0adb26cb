package mongotest

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

func cmdInsert(o *op) (bson.D, error) {
	ns, err := o.writeNS()
	if err != nil {
		return nil, err
	}
	fill, err := o.emptyTimestampFiller()
	if err != nil {
		return nil, err
	}
	n := int32(0)
	werrs, err := o.writeBatch("documents", parseInsert, func(_ int, v any) (any, error) {
		doc, err := prepareInsert(v)
		if err != nil {
			return nil, err
		}
		doc = fill.fill(doc)
		return recordInsert(doc), o.atomic(func(t *engine.Txn) error {
			if err := o.validate(t, ns, nil, doc); err != nil {
				return err
			}
			return t.Insert(ns, doc)
		})
	}, func(_ int, rec any) (any, error) {
		// makeWriteResultForInsertOrDeleteRetry: n: 1, whatever it was.
		return rec, nil
	}, func(any) { n++ })
	if err != nil {
		return nil, err
	}
	reply := append(o.replies.insert(), bson.E{Key: "n", Value: n})
	return withWriteErrors(reply, werrs), nil
}

// parseInsert checks that an inserted document is a document, which
// MongoDB parses with the command.
func parseInsert(v any) error {
	if _, ok := v.(bson.D); !ok {
		return typeErr("documents", v, "object")
	}
	return nil
}

// prepareInsert validates doc and gives it an _id (first) when missing.
func prepareInsert(v any) (bson.D, error) {
	doc, ok := v.(bson.D)
	if !ok {
		return nil, typeErr("documents", v, "object")
	}
	id, has := bsonkit.Get(doc, "_id")
	if !has {
		doc = append(bson.D{{Key: "_id", Value: bson.NewObjectID()}}, doc...)
	} else {
		switch id := id.(type) {
		case bson.A:
			return nil, merr.New(merr.InvalidIdField, "The '_id' value cannot be of type array")
		case bson.Regex:
			return nil, merr.New(merr.InvalidIdField, "can't use a regex for _id")
		case bson.Undefined:
			return nil, merr.New(merr.BadValue, "can't use a undefined for _id")
		case bson.D:
			if k := dollarKey(id); k != "" {
				return nil, merr.New(merr.DollarPrefixedFieldName, "_id fields may not contain '$'-prefixed fields: %s is not valid for storage.", k)
			}
		}
		if idFields(doc) > 1 {
			return nil, merr.New(merr.BadValue, "can't have multiple _id fields in one document")
		}
		if doc[0].Key != "_id" {
			out := make(bson.D, 0, len(doc))
			out = append(out, bson.E{Key: "_id", Value: id})
			doc = append(out, bsonkit.Delete(bsonkit.CloneDoc(doc), "_id")...)
		}
	}
	if err := checkSize(doc); err != nil {
		return nil, err
	}
	if err := checkDepth(doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// maxUserDepth is how deep a stored document may nest: maxBSONDepth (200)
// less 20 (BSONDepth::getMaxDepthForUserStorage).
const maxUserDepth = 180

// checkDepth refuses a document nested deeper than maxUserDepth, counting
// the document itself and not counting empty subdocuments or arrays, as
// MongoDB's validateDepth (insert.cpp) and storage validation do.
func checkDepth(doc bson.D) error {
	if depth(doc, maxUserDepth+1) > maxUserDepth {
		return merr.New(merr.Overflow, "Document exceeds maximum nesting depth of %d", maxUserDepth)
	}
	return nil
}

// depth returns how many non-empty documents and arrays nest in v, v
// included, stopping once it passes limit.
func depth(v any, limit int) int {
	if limit <= 0 {
		return 0
	}
	deepest := -1
	switch x := v.(type) {
	case bson.D:
		for _, e := range x {
			deepest = max(deepest, depth(e.Value, limit-1))
		}
	case bson.A:
		for _, e := range x {
			deepest = max(deepest, depth(e, limit-1))
		}
	}
	return deepest + 1
}

// idFields counts the top-level _id fields of doc.
func idFields(doc bson.D) int {
	n := 0
	for _, e := range doc {
		if e.Key == "_id" {
			n++
		}
	}
	return n
}

func checkSize(doc bson.D) error {
	n, err := bsonkit.Size(doc)
	if err != nil {
		return merr.New(merr.BadValue, "%v", err)
	}
	if n > maxDocSize {
		return merr.New(merr.BSONObjectTooLarge, "object to insert too large. size in bytes: %d, max size: %d", n, maxDocSize)
	}
	return nil
}

// dollarKey returns a '$'-prefixed field name inside d, at any depth, other
// than a DBRef's $ref, $id and $db; "" when there is none.
func dollarKey(d bson.D) string {
	for _, e := range d {
		if len(e.Key) > 0 && e.Key[0] == '$' && e.Key != "$ref" && e.Key != "$id" && e.Key != "$db" {
			return e.Key
		}
		if sub, ok := e.Value.(bson.D); ok {
			if k := dollarKey(sub); k != "" {
				return k
			}
		}
	}
	return ""
}

// emptyTimestampFiller returns what MongoDB does to an inserted or
// replacement document: each top-level field but _id holding the empty
// timestamp, Timestamp(0, 0), gets the current cluster time
// (fixDocumentForInsert, ObjectReplaceExecutor). With the command's
// bypassEmptyTsReplacement the document stays as it is.
func (o *op) emptyTimestampFiller() (timestampFiller, error) {
	bypass, err := boolField(o.cmd, "bypassEmptyTsReplacement", false)
	if err != nil || bypass {
		return timestampFiller{}, err
	}
	return timestampFiller{clock: &o.s.clock}, nil
}

// timestampFiller fills a document's empty timestamps from clock; with no
// clock it leaves documents as they are. (A value, not a closure: a
// closure over the op would cost every insert an allocation.)
type timestampFiller struct{ clock *clock }

// fill returns d, or a copy of d with its empty timestamps filled.
func (f timestampFiller) fill(d bson.D) bson.D {
	if f.clock == nil {
		return d
	}
	var out bson.D
	for i, e := range d {
		if ts, ok := e.Value.(bson.Timestamp); !ok || ts != (bson.Timestamp{}) || e.Key == "_id" {
			continue
		}
		if out == nil {
			out = bsonkit.CloneDoc(d)
		}
		out[i].Value = f.clock.tick()
	}
	if out == nil {
		return d
	}
	return out
}

// fillReplacement applies fill to an update that is a replacement
// document; operator updates and pipelines are returned as they are.
func fillReplacement(spec any, fill timestampFiller) any {
	d, ok := spec.(bson.D)
	if !ok || len(d) == 0 || strings.HasPrefix(d[0].Key, "$") {
		return spec
	}
	return fill.fill(d)
}

// insertRecord is the recorded result of an inserted document, for a
// retry of its statement: its _id field. (A pointer, not the id, so that
// boxing it allocates nothing. While the command runs, it points at the
// inserted document's own field; the session's retry record keeps it as
// a copy of its own, not a pointer into the command's allocation: see
// [retryRecord.record].)
type insertRecord struct{ idField *bson.E }

func (r insertRecord) id() any { return r.idField.Value }

// recordInsert returns the record of inserting doc, which has an _id.
func recordInsert(doc bson.D) insertRecord {
	for i := range doc {
		if doc[i].Key == "_id" {
			return insertRecord{idField: &doc[i]}
		}
	}
	return insertRecord{idField: &bson.E{Key: "_id"}}
}
