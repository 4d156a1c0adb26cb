package mongotest

import (
	"math"
	"slices"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/collation"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// findSpec is a parsed find: filter, sort, projection, skip, limit.
type findSpec struct {
	filter     bson.D
	f          *query.Filter
	sort       *query.Sort
	reverse    bool // sort {$natural: -1}
	projection *query.Projection
	skip       int64
	limit      int64
	vars       expr.Vars
	coll       *collation.Collation
	// one holds run's result when it is one document found by _id.
	one [1]bson.D
	// fStorage holds f when it is {field: literal}.
	fStorage query.Storage
}

func parseFind(cmd bson.D, filterKey string, vars expr.Vars) (*findSpec, error) {
	fs := findSpec{vars: vars}
	var err error
	if fs.coll, err = collation.Parse(field(cmd, "collation")); err != nil {
		return nil, err
	}
	if fs.filter, err = docField(cmd, filterKey); err != nil {
		return nil, err
	}
	if fs.f, err = fs.fStorage.CompileWith(fs.filter, query.Options{Vars: vars, Collation: fs.coll.StringCompare()}); err != nil {
		return nil, err
	}
	sortSpec, err := docField(cmd, "sort")
	if err != nil {
		return nil, err
	}
	if len(sortSpec) == 1 && sortSpec[0].Key == "$natural" {
		// Natural order is insertion order, the order documents are
		// scanned in; -1 is its reverse.
		dir, _ := bsonkit.ToFloat(sortSpec[0].Value)
		if dir != 1 && dir != -1 {
			return nil, merr.New(merr.BadValue, "$natural sort must be 1 or -1, not %s", bsonkit.FormatValue(sortSpec[0].Value))
		}
		fs.reverse = dir == -1
	} else if len(sortSpec) > 0 {
		if fs.sort, err = query.CompileSortCollated(sortSpec, fs.coll.StringCompare()); err != nil {
			return nil, err
		}
	}
	proj, err := docField(cmd, "projection")
	if err != nil {
		return nil, err
	}
	if proj == nil {
		if proj, err = docField(cmd, "fields"); err != nil {
			return nil, err
		}
	}
	if len(proj) > 0 {
		if fs.projection, err = query.CompileProjection(proj); err != nil {
			return nil, err
		}
	}
	if fs.skip, _, err = intField(cmd, "skip"); err != nil {
		return nil, err
	}
	if fs.skip < 0 {
		return nil, merr.New(merr.BadValue, "Skip value must be non-negative, but received: %d", fs.skip)
	}
	if fs.limit, _, err = intField(cmd, "limit"); err != nil {
		return nil, err
	}
	if fs.limit < 0 && filterKey == "query" {
		// count takes a negative limit's absolute value (countParseLimit,
		// src/mongo/db/query/count_request.cpp).
		if fs.limit == math.MinInt64 {
			return nil, merr.New(merr.BadValue, "limit value for count cannot be min long")
		}
		fs.limit = -fs.limit
	}
	if fs.limit < 0 {
		// A driver sends a negative limit as limit and singleBatch.
		return nil, merr.New(merr.BadValue, "Limit value must be non-negative, but received: %d", fs.limit)
	}
	return &fs, nil
}

// run evaluates the find against t: on ns's documents, or on what its
// pipeline makes of them when ns is a view. st counts what it examines.
func (fs *findSpec) run(t *engine.Txn, ns engine.Namespace, st *scanStats) ([]bson.D, error) {
	limit := 0
	if fs.sort == nil && !fs.reverse && fs.limit != 0 {
		limit = int(fs.skip + abs64(fs.limit))
	}
	_, isView, err := resolveView(t, ns)
	if err != nil {
		return nil, err
	}
	var docs []bson.D
	if isView {
		all, err := reader{t: t, db: ns.DB, vars: fs.vars, scans: st}.Documents(ns.Coll)
		if err != nil {
			return nil, err
		}
		docs, err = filterDocs(all, fs.f, limit)
		if err != nil {
			return nil, err
		}
	} else if docs, err = matching(t, st, ns, fs.filter, fs.f, limit, fs.one[:0:1]); err != nil {
		return nil, err
	}
	if fs.sort != nil {
		sort.SliceStable(docs, func(i, j int) bool { return fs.sort.Compare(docs[i], docs[j]) < 0 })
	}
	if fs.reverse {
		slices.Reverse(docs)
	}
	if fs.skip > 0 {
		if int(fs.skip) >= len(docs) {
			docs = nil
		} else {
			docs = docs[fs.skip:]
		}
	}
	if l := int(abs64(fs.limit)); l > 0 && l < len(docs) {
		docs = docs[:l]
	}
	if fs.projection != nil {
		out := make([]bson.D, len(docs))
		for i, d := range docs {
			out[i] = fs.projection.Apply(d)
		}
		docs = out
	}
	return docs, nil
}

// liveIn returns the re-read a transaction's cursor applies: the document's
// current version in t, if it still matches, projected. It takes over the
// projection, which run then leaves out.
func (fs *findSpec) liveIn(t *engine.Txn, ns engine.Namespace) func(bson.D) (bson.D, bool, error) {
	proj := fs.projection
	fs.projection = nil
	return func(d bson.D) (bson.D, bool, error) {
		id, _ := bsonkit.Get(d, "_id")
		cur := t.FindID(ns, id)
		if cur == nil {
			return nil, false, nil
		}
		ok, err := fs.f.Eval(cur)
		if err != nil || !ok {
			return nil, false, err
		}
		if proj != nil {
			cur = proj.Apply(cur)
		}
		return cur, true, nil
	}
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func cmdFind(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	var vars expr.Vars
	// Most finds name no variable: no need to make them. A view's
	// pipeline may name some, so a find on a view always has them.
	if _, hasLet := bsonkit.Get(o.cmd, "let"); hasLet || namesVariable(o.cmd) || o.isView(ns) {
		if vars, err = o.vars(); err != nil {
			return nil, err
		}
	}
	fs, err := parseFind(o.cmd, "filter", vars)
	if err != nil {
		return nil, err
	}
	if err := checkHint(o.s.core.engine, ns, field(o.cmd, "hint")); err != nil {
		return nil, err
	}
	if o.isView(ns) {
		if err := checkFindAsAggregation(o.cmd, fs.limit); err != nil {
			return nil, err
		}
	}
	if err := checkTailable(o.cmd, ns); err != nil {
		return nil, err
	}
	if o.noCursorTimeout, err = boolField(o.cmd, "noCursorTimeout", false); err != nil {
		return nil, err
	}
	bs, hasBS, err := intField(o.cmd, "batchSize")
	if err != nil {
		return nil, err
	}
	if bs < 0 {
		return nil, merr.New(merr.BadValue, "BatchSize value must be non-negative, but received: %d", bs)
	}
	if !hasBS {
		bs = defaultBatchSize
	}
	single, err := boolField(o.cmd, "singleBatch", false)
	if err != nil {
		return nil, err
	}
	if fs.limit < 0 || fs.limit > 0 && bs > 0 && bs >= fs.limit {
		single = true
	}
	// In a transaction an unsorted find's cursor sees the transaction's
	// own later writes, as a WiredTiger cursor does: each document is read
	// again, filtered and projected when a batch returns it. (A sort
	// buffers every document first, on MongoDB too.)
	//
	// Outside a transaction, an unsorted find's getMore reads the latest
	// committed version of each remaining document, as MongoDB's does:
	// its cursor gives up its storage snapshot between batches and
	// resumes on current data ("Cursor Isolation" in the manual: "the
	// cursor is not isolated during its lifetime"). Documents deleted or
	// no longer matching are skipped; documents inserted (or newly
	// matching) after it opened are not returned, which MongoDB may do.
	// A snapshot read stays at its point in time.
	var live, later func(bson.D) (bson.D, bool, error)
	var proj *query.Projection
	switch {
	case fs.sort != nil || o.isView(ns):
	case o.txn != nil:
		live = fs.liveIn(o.txn, ns)
		later = live
	default:
		proj, fs.projection = fs.projection, nil
	}
	var docs []bson.D
	if err := o.readErr(func(t *engine.Txn) (err error) { docs, err = fs.run(t, ns, &o.s.core.scans); return err }); err != nil {
		return nil, err
	}
	if o.txn == nil && fs.sort == nil && !o.isView(ns) {
		switch {
		case o.atClusterTime != nil:
			docs = project(docs, proj)
		default:
			if proj != nil {
				live = func(d bson.D) (bson.D, bool, error) { return proj.Apply(d), true, nil }
			}
			if !single && len(docs) > int(bs) { // a cursor stays open
				later = fs.liveLatest(o.s.core.engine, ns, proj)
			}
		}
	}
	reply, _, err := o.s.core.cursors.openLive(o, ns.String(), docs, int(bs), single, live, later)
	return reply, err
}

// checkFindAsAggregation refuses the options of a find on a view that the
// aggregation it runs as has no counterpart for, in MongoDB's order and
// words (query_request_helper::asAggregationCommand): tailable,
// noCursorTimeout, allowPartialResults, a $natural sort, singleBatch
// unless limit is 1, readOnce. (min, max, returnKey and showRecordId,
// which it refuses first, mongotest refuses everywhere as NotImplemented.)
func checkFindAsAggregation(cmd bson.D, limit int64) error {
	refused := func(name string) error {
		return merr.New(merr.InvalidPipelineOperator, "Option %s not supported in aggregation.", name)
	}
	for _, name := range []string{"tailable", "noCursorTimeout", "allowPartialResults"} {
		on, err := boolField(cmd, name, false)
		if err != nil {
			return err
		}
		if on && name == "tailable" {
			return merr.New(merr.InvalidPipelineOperator, "Tailable cursors are not supported in aggregation.")
		}
		if on {
			return refused(name)
		}
	}
	if sortSpec, _ := docField(cmd, "sort"); slices.ContainsFunc(sortSpec, func(e bson.E) bool { return e.Key == "$natural" }) {
		return merr.New(merr.InvalidPipelineOperator, "Sort option $natural not supported in aggregation.")
	}
	single, err := boolField(cmd, "singleBatch", false)
	if err != nil {
		return err
	}
	if single && limit != 1 {
		return refused("singleBatch")
	}
	once, err := boolField(cmd, "readOnce", false)
	if err != nil {
		return err
	}
	if once {
		return refused("readOnce")
	}
	return nil
}

// project applies proj (nil: none) to docs.
func project(docs []bson.D, proj *query.Projection) []bson.D {
	if proj == nil {
		return docs
	}
	out := make([]bson.D, len(docs))
	for i, d := range docs {
		out[i] = proj.Apply(d)
	}
	return out
}

// liveLatest returns the re-read of a plain cursor's getMore: the
// document's latest committed version, if it still matches, projected.
func (fs *findSpec) liveLatest(e *engine.Engine, ns engine.Namespace, proj *query.Projection) func(bson.D) (bson.D, bool, error) {
	return func(d bson.D) (bson.D, bool, error) {
		t := e.Begin()
		defer t.Abort()
		id, _ := bsonkit.Get(d, "_id")
		cur := t.FindID(ns, id)
		if cur == nil {
			return nil, false, nil
		}
		ok, err := fs.f.Eval(cur)
		if err != nil || !ok {
			return nil, false, err
		}
		return project([]bson.D{cur}, proj)[0], true, nil
	}
}

func cmdCount(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	vars, err := o.vars()
	if err != nil {
		return nil, err
	}
	fs, err := parseFind(o.cmd, "query", vars)
	if err != nil {
		return nil, err
	}
	if err := checkHint(o.s.core.engine, ns, field(o.cmd, "hint")); err != nil {
		return nil, err
	}
	fs.sort, fs.projection = nil, nil
	var docs []bson.D
	if err := o.readErr(func(t *engine.Txn) (err error) { docs, err = fs.run(t, ns, &o.s.core.scans); return err }); err != nil {
		return nil, err
	}
	return ok1(bson.E{Key: "n", Value: int32(len(docs))}), nil
}

func cmdDistinct(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	key, ok := field(o.cmd, "key").(string)
	if !ok {
		return nil, typeErr("key", field(o.cmd, "key"), "string")
	}
	vars, err := o.vars()
	if err != nil {
		return nil, err
	}
	fs, err := parseFind(o.cmd, "query", vars)
	if err != nil {
		return nil, err
	}
	var docs []bson.D
	if err := o.readErr(func(t *engine.Txn) (err error) { docs, err = fs.run(t, ns, &o.s.core.scans); return err }); err != nil {
		return nil, err
	}
	values := []any{}
	for _, d := range docs {
		vals, _ := query.Lookup(d, key)
		for _, v := range vals {
			if a, ok := v.(bson.A); ok {
				for _, x := range a {
					values = appendDistinct(values, x, fs.coll)
				}
				continue
			}
			values = appendDistinct(values, v, fs.coll)
		}
	}
	str := fs.coll.StringCompare()
	sort.SliceStable(values, func(i, j int) bool { return bsonkit.CompareWith(values[i], values[j], str) < 0 })
	reply := ok1(bson.E{Key: "values", Value: bson.A(values)})
	if o.atClusterTime != nil {
		reply = append(reply, bson.E{Key: "atClusterTime", Value: *o.atClusterTime})
	}
	return reply, nil
}

// appendDistinct adds v to values unless an equal value (under coll) is
// there.
func appendDistinct(values []any, v any, coll *collation.Collation) []any {
	str := coll.StringCompare()
	for _, x := range values {
		if bsonkit.CompareWith(x, v, str) == 0 && bsonkit.TypeRank(x) == bsonkit.TypeRank(v) {
			return values
		}
	}
	return append(values, v)
}
