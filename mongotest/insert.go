package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

func cmdInsert(o *op) (bson.D, error) {
	ns, err := o.collectionNS()
	if err != nil {
		return nil, err
	}
	n := int32(0)
	werrs, err := o.writeBatch("documents", func(_ int, v any) (any, error) {
		doc, err := prepareInsert(v)
		if err != nil {
			return nil, err
		}
		return true, o.atomic(func(t *engine.Txn) error {
			if err := o.validate(t, ns, nil, doc); err != nil {
				return err
			}
			return t.Insert(ns, doc)
		})
	}, func(any) { n++ })
	if err != nil {
		return nil, err
	}
	return withWriteErrors(bson.D{{Key: "n", Value: n}}, werrs), nil
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
		case bson.D:
			if k := dollarKey(id); k != "" {
				return nil, merr.New(merr.DollarPrefixedFieldName, "_id fields may not contain '$'-prefixed fields: %s is not valid for storage.", k)
			}
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
	return doc, nil
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
