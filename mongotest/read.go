package mongotest

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// read runs fn against the transaction's snapshot or, outside one, the
// snapshot the command's read concern asks for.
func (o *op) read(fn func(t *engine.Txn)) error {
	if o.txn != nil {
		fn(o.txn)
		return nil
	}
	t, err := o.beginSnapshot(true)
	if err != nil {
		return err
	}
	defer t.Abort()
	fn(t)
	return nil
}

// checkAfterClusterTime refuses a readConcern afterClusterTime later than
// the server's cluster time, as MongoDB's waitForReadConcern does: such a
// time was not handed out by this cluster, and waiting for it would hang.
func checkAfterClusterTime(o *op) error {
	rc, _ := field(o.cmd, "readConcern").(bson.D)
	v, has := bsonkit.Get(rc, "afterClusterTime")
	if !has {
		return nil
	}
	ts, ok := v.(bson.Timestamp)
	if !ok {
		return typeErr("readConcern.afterClusterTime", v, "timestamp")
	}
	now := o.s.clusterTime()
	if ts.T > now.T || (ts.T == now.T && ts.I > now.I) {
		return merr.New(merr.InvalidOptions, "readConcern afterClusterTime value must not be greater than the current clusterTime. Requested clusterTime: { ts: Timestamp(%d, %d) }; current clusterTime: { ts: Timestamp(%d, %d) }", ts.T, ts.I, now.T, now.I)
	}
	return nil
}

// readErr is read for a fn that can fail.
func (o *op) readErr(fn func(t *engine.Txn) error) error {
	var ferr error
	if err := o.read(func(t *engine.Txn) { ferr = fn(t) }); err != nil {
		return err
	}
	return ferr
}

// beginSnapshot starts the engine transaction a read concern asks for:
// the latest data, or for level "snapshot" the data at atClusterTime (or
// now). A snapshot read outside a transaction (pin) records that time for
// its reply and keeps its snapshot readable for the session's later
// snapshot reads, for the history window.
func (o *op) beginSnapshot(pin bool) (*engine.Txn, error) {
	e := o.s.core.engine
	rc, err := docField(o.cmd, "readConcern")
	if err != nil {
		return nil, err
	}
	if level, _ := bsonkit.Get(rc, "level"); level != "snapshot" {
		return e.Begin(), nil
	}
	var t *engine.Txn
	var at bson.Timestamp
	if v, ok := bsonkit.Get(rc, "atClusterTime"); ok {
		ct, ok := v.(bson.Timestamp)
		if !ok {
			return nil, typeErr("readConcern.atClusterTime", v, "timestamp")
		}
		var err error
		if t, err = e.BeginAtClusterTime(ct, o.s.clusterTime()); err != nil {
			return nil, err
		}
		at = ct
	} else {
		t = e.Begin()
		at = e.ClusterTimeOf(t.Snapshot())
	}
	if !pin {
		// A transaction's statements do not report the time: MongoDB's
		// find, aggregate, getMore and distinct add atClusterTime only
		// outside a multi-document transaction.
		return t, nil
	}
	if o.sess != nil {
		o.sess.s.pin(t)
	}
	o.atClusterTime = &at
	return t, nil
}

// matching returns the documents of ns that f matches, in natural order;
// the _ids a filter names are looked up directly (idLookup), into dst's
// array if it has room (nil: a new one). It counts the index keys and
// documents it examines in st. The error is one a $expr raised.
func matching(t *engine.Txn, st *scanStats, ns engine.Namespace, filter bson.D, f *query.Filter, limit int, dst []bson.D) ([]bson.D, error) {
	// The indexes hold binary keys; a collation may equate others, so a
	// collated filter scans.
	if !f.Collated() {
		if docs, ok := idLookup(t, st, ns, filter, dst); ok {
			return filterDocs(docs, f, limit)
		}
		if eq := plainEqualities(filter); len(eq) > 0 {
			if docs, used := t.ScanEqual(ns, eq); used {
				st.add(len(docs), len(docs))
				return filterDocs(docs, f, limit)
			}
		}
	}
	var out []bson.D
	var err error
	examined := 0
	t.Scan(ns, func(d bson.D) bool {
		examined++
		var ok bool
		if ok, err = f.Eval(d); err != nil {
			return false
		}
		if ok {
			out = append(out, d)
		}
		return limit <= 0 || len(out) < limit
	})
	st.add(0, examined)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// idLookup returns the documents of ns whose _id filter names, by a
// top-level equality (idEquality) or $in (idIn), in natural order, each
// once: the only candidates for filter's matches, on which the caller
// evaluates the whole filter (MongoDB's IXSCAN on _id_ plus FETCH). It
// counts one index key and one document per document found, and uses
// dst's array for a single document. It reports false when filter names
// no _id that way; the caller then scans. Binary comparison only: the
// caller scans under a collation.
func idLookup(t *engine.Txn, st *scanStats, ns engine.Namespace, filter bson.D, dst []bson.D) ([]bson.D, bool) {
	if id, ok := idEquality(filter); ok {
		d := t.FindID(ns, id)
		if d == nil {
			return nil, true
		}
		st.add(1, 1)
		return append(dst[:0], d), true
	}
	if ids, ok := idIn(filter); ok {
		docs := t.FindIDs(ns, ids)
		st.add(len(docs), len(docs))
		return docs, true
	}
	return nil, false
}

// filterDocs keeps the documents f matches, up to limit (0: all), in
// docs' array.
func filterDocs(docs []bson.D, f *query.Filter, limit int) ([]bson.D, error) {
	out := docs[:0]
	for _, d := range docs {
		ok, err := f.Eval(d)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// plainEqualities returns the filter's top-level `field: value` pairs
// whose value an index lookup can serve: not an operator document, array,
// regex or null (null also matches missing fields).
func plainEqualities(filter bson.D) bson.D {
	var eq bson.D
	for _, e := range filter {
		if len(e.Key) > 0 && e.Key[0] == '$' {
			continue
		}
		switch v := e.Value.(type) {
		case nil, bson.A, bson.Regex, bson.Undefined:
			continue
		case bson.D:
			if len(v) > 0 && len(v[0].Key) > 0 && v[0].Key[0] == '$' {
				continue
			}
		}
		eq = append(eq, e)
	}
	return eq
}

// idEquality finds a top-level `_id: <plain value>` in filter, beside
// any other fields: the one document with that _id is the only candidate.
func idEquality(filter bson.D) (any, bool) {
	for _, e := range filter {
		if e.Key == "_id" && idLookupValue(e.Value) {
			return e.Value, true
		}
	}
	return nil, false
}

// idIn finds a top-level `_id: {$in: [<plain value>, …]}` in filter,
// beside any other fields or operators: the documents with those _ids are
// the only candidates. Not when a value is one idLookupValue refuses.
func idIn(filter bson.D) ([]any, bool) {
	for _, e := range filter {
		ops, isDoc := e.Value.(bson.D)
		if e.Key != "_id" || !isDoc || !isOperators(ops) {
			continue
		}
		for _, op := range ops {
			if op.Key != "$in" {
				continue
			}
			if values, ok := op.Value.(bson.A); ok && !slices.ContainsFunc(values, func(v any) bool { return !idLookupValue(v) }) {
				return values, true
			}
		}
	}
	return nil, false
}

// idLookupValue reports whether the documents an _id condition on v
// matches are exactly those whose _id key equals v's: not an operator
// document, array (an array matches its elements too) or regex (which
// matches strings), nor undefined (keyed apart from null).
func idLookupValue(v any) bool {
	switch x := v.(type) {
	case bson.D:
		return !isOperators(x)
	case bson.A, bson.Regex, bson.Undefined:
		return false
	}
	return true
}

// isOperators reports whether d is an operator document ({$in: …}) rather
// than a value to compare with.
func isOperators(d bson.D) bool {
	return len(d) > 0 && len(d[0].Key) > 0 && d[0].Key[0] == '$'
}
