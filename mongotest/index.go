package mongotest

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/collation"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// indexName is MongoDB's default name: key_1_other_-1.
func indexName(keys bson.D) string {
	parts := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		parts = append(parts, k.Key, fmt.Sprint(k.Value))
	}
	return strings.Join(parts, "_")
}

func parseIndexSpec(v any) (engine.IndexSpec, error) {
	d, ok := v.(bson.D)
	if !ok {
		return engine.IndexSpec{}, typeErr("indexes", v, "object")
	}
	if err := indexSpecFields.check("createIndexes.indexes", d, false); err != nil {
		return engine.IndexSpec{}, err
	}
	keys, err := docField(d, "key")
	if err != nil {
		return engine.IndexSpec{}, err
	}
	if len(keys) == 0 {
		return engine.IndexSpec{}, merr.New(merr.CannotCreateIndex, "Index keys cannot be empty.")
	}
	for _, k := range keys {
		if k.Key == "" {
			return engine.IndexSpec{}, merr.New(merr.CannotCreateIndex, "Index key cannot be an empty field")
		}
		parts := strings.Split(k.Key, ".")
		if parts[len(parts)-1] == "$**" && !slices.ContainsFunc(parts[:len(parts)-1], func(p string) bool { return strings.HasPrefix(p, "$") }) {
			// A wildcard index, valid on MongoDB (a "$**" last component,
			// index_key_validate.cpp): keys of every field below the
			// prefix, which mongotest does not build.
			return engine.IndexSpec{}, merr.New(merr.NotImplemented, "mongotest does not implement wildcard indexes (createIndexes.indexes.key %s)", bsonkit.FormatValue(keys))
		}
		for _, part := range parts {
			if strings.HasPrefix(part, "$") {
				return engine.IndexSpec{}, merr.New(merr.CannotCreateIndex, "Index key contains an illegal field name: field name starts with '$'.")
			}
		}
		switch v := k.Value.(type) {
		case string:
			switch v {
			case "hashed":
			case "text", "2dsphere", "2d":
				// MongoDB keys these by tokens or cells and queries them
				// with $text and geo operators, none of which mongotest has.
				return engine.IndexSpec{}, merr.New(merr.NotImplemented, "mongotest does not implement '%s' indexes (createIndexes.indexes.key %s)", v, bsonkit.FormatValue(keys))
			default:
				return engine.IndexSpec{}, merr.New(merr.CannotCreateIndex, "Unknown index plugin '%s'", v)
			}
		default:
			if f, ok := bsonkit.ToFloat(v); !ok || f == 0 {
				return engine.IndexSpec{}, merr.New(merr.CannotCreateIndex, "Values in the index key pattern can only be numbers or strings, got %v", v)
			}
		}
	}
	if v, has := bsonkit.Get(d, "v"); has {
		// validateIndexSpec (src/mongo/db/index/index_key_validate.cpp):
		// index versions 1 and 2 exist.
		f, isNum := bsonkit.ToFloat(v)
		switch {
		case !isNum:
			return engine.IndexSpec{}, merr.New(merr.TypeMismatch, "The field 'v' must be a number, but got %s", bsonkit.TypeAlias(v))
		case f != math.Trunc(f):
			return engine.IndexSpec{}, merr.New(merr.BadValue, "Invalid value for index version 'v': %v", f)
		case f != 1 && f != 2:
			return engine.IndexSpec{}, merr.New(merr.CannotCreateIndex, "Invalid index specification %s; cannot create an index with v=%v", bsonkit.FormatValue(d), f)
		}
	}
	spec := engine.IndexSpec{Keys: keys}
	name, has := bsonkit.Get(d, "name")
	if has {
		s, ok := name.(string)
		if !ok || s == "" {
			return engine.IndexSpec{}, merr.New(merr.CannotCreateIndex, "The index name must be a non-empty string")
		}
		spec.Name = s
	} else {
		spec.Name = indexName(keys)
	}
	if spec.Unique, err = boolField(d, "unique", false); err != nil {
		return spec, err
	}
	if spec.Sparse, err = boolField(d, "sparse", false); err != nil {
		return spec, err
	}
	if spec.PrepareUnique, err = boolField(d, "prepareUnique", false); err != nil {
		return spec, err
	}
	if spec.Unique && isHashed(keys) {
		return spec, merr.New(16764, "Currently hashed indexes cannot guarantee uniqueness. Use a regular index.")
	}
	if spec.Unique && spec.PrepareUnique {
		return spec, merr.New(merr.CannotCreateIndex, "Index key pattern %s cannot be both unique and prepareUnique", bsonkit.FormatValue(keys))
	}
	if hidden, err := boolField(d, "hidden", false); err != nil {
		return spec, err
	} else if hidden && spec.Name == "_id_" {
		return spec, merr.New(merr.BadValue, "can't hide _id index")
	}
	partial, err := docField(d, "partialFilterExpression")
	if err != nil {
		return spec, err
	}
	if partial != nil {
		if spec.Sparse {
			return spec, merr.New(merr.CannotCreateIndex, `cannot mix "partialFilterExpression" and "sparse" options`)
		}
		if err := checkPartialFilter(partial); err != nil {
			return spec, err
		}
		f, err := query.Compile(partial)
		if err != nil {
			return spec, err
		}
		spec.Partial = f.Match
	}
	if v, has := bsonkit.Get(d, "expireAfterSeconds"); has {
		secs, ok := bsonkit.ToFloat(v)
		switch {
		case !ok || secs < 0 || secs > 2147483647:
			return spec, merr.New(merr.CannotCreateIndex, "TTL index 'expireAfterSeconds' option must be within an acceptable range, try a lower number")
		case len(keys) != 1:
			return spec, merr.New(merr.CannotCreateIndex, "TTL indexes are single-field indexes, compound indexes do not support TTL")
		case keys[0].Key == "_id":
			return spec, merr.New(merr.CannotCreateIndex, "The field 'expireAfterSeconds' is not valid for an _id index specification")
		}
	}
	coll, err := collation.Parse(field(d, "collation"))
	if err != nil {
		return spec, err
	}
	if coll != nil {
		spec.StringKey = coll.Key
	}
	if spec.Name == "_id_" && !(len(keys) == 1 && keys[0].Key == "_id") {
		return spec, merr.New(merr.BadValue, "The index name '_id_' is reserved for the _id index")
	}
	out := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: keys}, {Key: "name", Value: spec.Name}}
	for _, e := range d {
		switch e.Key {
		case "key", "name", "v", "ns", "background":
			continue
		case "collation":
			// Stored as MongoDB stores it: every default filled in; the
			// simple collation is no collation.
			if coll != nil {
				out = append(out, bson.E{Key: e.Key, Value: coll.Full()})
			}
			continue
		}
		out = append(out, e)
	}
	spec.Spec = out
	return spec, nil
}

func cmdCreateIndexes(o *op) (bson.D, error) {
	ns, err := o.writeNS()
	if err != nil {
		return nil, err
	}
	arr, ok, err := arrayField(o.cmd, "indexes")
	if err != nil {
		return nil, err
	}
	if !ok || len(arr) == 0 {
		return nil, merr.New(merr.BadValue, "Must specify at least one index to create")
	}
	if q, ok := bsonkit.Get(o.cmd, "commitQuorum"); ok {
		if err := checkCommitQuorum(q); err != nil {
			return nil, err
		}
	}
	if o.txn != nil && o.s.core.engine.HasCollection(ns) {
		return nil, merr.New(merr.OperationNotSupportedInTransaction, "Cannot create new indexes on existing collection %s in a multi-document transaction.", ns.String())
	}
	specs := make([]engine.IndexSpec, 0, len(arr))
	for _, v := range arr {
		s, err := parseIndexSpec(v)
		if err != nil {
			return nil, err
		}
		if s.Name == "_id_" {
			continue
		}
		specs = append(specs, s)
	}
	var before, after int
	var created bool
	err = o.atomic(func(t *engine.Txn) (err error) {
		before, after, created, err = t.CreateIndexes(ns, specs)
		return err
	})
	if err != nil {
		return nil, err
	}
	reply := bson.D{{Key: "numIndexesBefore", Value: int32(before)}, {Key: "numIndexesAfter", Value: int32(after)}}
	if before == after {
		reply = append(reply, bson.E{Key: "note", Value: "all indexes already exist"})
	}
	reply = append(reply, bson.E{Key: "createdCollectionAutomatically", Value: created})
	return append(reply, bson.E{Key: "ok", Value: 1.0}), nil
}

// maxVotingMembers is a replica set's most voting members
// (ReplSetConfig::kMaxVotingMembers).
const maxVotingMembers = 7

// checkCommitQuorum refuses a commitQuorum MongoDB refuses on this
// one-member set: CommitQuorumOptions::parse's FailedToParse for anything
// but a number in 0..7 or a non-empty string; UnsatisfiableCommitQuorum for
// more voting members than the set has; for a name other than "majority"
// and "votingMembers", ReplSetConfig::findCustomWriteMode's
// UnknownReplWriteConcern, as the set defines no write concern modes.
func checkCommitQuorum(q any) error {
	if bsonkit.IsNumber(q) {
		f, _ := bsonkit.ToFloat(q)
		n := int64(f) // safeNumberLong: NaN is 0
		if math.IsNaN(f) {
			n = 0
		}
		if n < 0 || n > maxVotingMembers {
			return merr.New(merr.FailedToParse, "commitQuorum has to be a non-negative number and not greater than %d", maxVotingMembers)
		}
		if n > 1 {
			return merr.New(merr.UnsatisfiableCommitQuorum, "Not enough data-bearing voting nodes to satisfy commit quorum")
		}
		return nil
	}
	mode, ok := q.(string)
	switch {
	case !ok:
		return merr.New(merr.FailedToParse, "commitQuorum has to be a number or a string")
	case mode == "":
		return merr.New(merr.FailedToParse, "commitQuorum can't be an empty string")
	case mode == "majority", mode == "votingMembers":
		return nil
	}
	return merr.New(merr.UnknownReplWriteConcern, "No write concern mode named '%s' found in replica set configuration", mode)
}

func cmdListIndexes(o *op) (bson.D, error) {
	ns, err := o.collectionNS()
	if err != nil {
		return nil, err
	}
	specs, err := o.s.core.engine.ListIndexes(ns)
	if err != nil {
		return nil, err
	}
	bs, err := cursorBatchSize(o.cmd)
	if err != nil {
		return nil, err
	}
	reply, _ := o.s.core.cursors.open(o, ns.String(), specs, bs, false)
	return reply, nil
}

func cmdDropIndexes(o *op) (bson.D, error) {
	ns, err := o.collectionNS()
	if err != nil {
		return nil, err
	}
	var names []string
	var keys bson.D
	switch v := field(o.cmd, "index").(type) {
	case string:
		names = []string{v}
	case bson.A:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, typeErr("index", x, "string")
			}
			names = append(names, s)
		}
	case bson.D:
		keys = v
	default:
		return nil, typeErr("index", v, "string")
	}
	var before int
	err = o.waitFor(func() (err error) {
		before, err = o.s.core.engine.DropIndexes(ns, names, keys)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ok1(bson.E{Key: "nIndexesWas", Value: int32(before)}), nil
}

func isHashed(keys bson.D) bool {
	for _, k := range keys {
		if k.Value == "hashed" {
			return true
		}
	}
	return false
}

// checkPartialFilter refuses a partialFilterExpression with an expression
// a partial index does not support: only equality, $exists: true,
// $gt/$gte/$lt/$lte, $type, $in, $and and $or are (the manual's "Partial
// Indexes"; CannotCreateIndex "Expression not supported in partial index").
func checkPartialFilter(filter bson.D) error {
	unsupported := func(what string) error {
		return merr.New(merr.CannotCreateIndex, "Expression not supported in partial index: %s", what)
	}
	for _, e := range filter {
		if e.Key == "$and" || e.Key == "$or" {
			clauses, ok := e.Value.(bson.A)
			if !ok {
				return nil // query.Compile refuses it with MongoDB's error
			}
			for _, c := range clauses {
				if d, ok := c.(bson.D); ok {
					if err := checkPartialFilter(d); err != nil {
						return err
					}
				}
			}
			continue
		}
		if strings.HasPrefix(e.Key, "$") {
			return unsupported(e.Key)
		}
		if _, ok := e.Value.(bson.Regex); ok {
			return unsupported("$regex")
		}
		ops, ok := e.Value.(bson.D)
		if !ok || len(ops) == 0 || !strings.HasPrefix(ops[0].Key, "$") {
			continue // equality
		}
		for _, op := range ops {
			switch op.Key {
			case "$eq", "$gt", "$gte", "$lt", "$lte", "$type", "$in":
			case "$exists":
				if b, err := boolField(bson.D{op}, "$exists", false); err != nil || !b {
					return unsupported("$not " + e.Key + " $exists")
				}
			default:
				return unsupported(op.Key)
			}
		}
	}
	return nil
}
