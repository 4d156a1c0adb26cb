package mongotest

import (
	"errors"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
	"github.com/txkit/txkit/mongotest/internal/update"
)

const maxDocSize = 16 * 1024 * 1024

// codeMissingField is the code MongoDB 7.0's command parser gives a missing
// required field (codeName Location40414).
const codeMissingField int32 = 40414

// runPlain runs a command outside a multi-document transaction.
func (c *core) runPlain(o *op, h handler) (bson.D, error) { return h.run(o) }

func writeConflict() *merr.Error {
	return merr.New(merr.WriteConflict, "Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.")
}

// atomic runs fn as one unit. Inside a transaction it uses the
// transaction and turns a conflict into WriteConflict. Outside, it commits
// fn's writes at once, and on a conflict waits for the other transaction to
// end and runs fn again on fresh data, as MongoDB retries a plain write.
func (o *op) atomic(fn func(t *engine.Txn) error) error {
	if o.txn != nil {
		err := fn(o.txn)
		var c *engine.Conflict
		if errors.As(err, &c) {
			return writeConflict()
		}
		return err
	}
	for {
		t := o.s.core.engine.Begin()
		err := o.runOrAbort(t, fn)
		var c *engine.Conflict
		if errors.As(err, &c) {
			t.Abort()
			if werr := c.Wait(o.ctx); werr != nil {
				return merr.New(merr.MaxTimeMSExpired, "operation exceeded time limit")
			}
			continue
		}
		if err != nil {
			t.Abort()
			return err
		}
		if err := o.txnWriteFailPoint(); err != nil {
			t.Abort()
			return err
		}
		t.Commit()
		return nil
	}
}

// txnWriteFailPoint applies onPrimaryTransactionalWrite to a retryable
// write statement about to commit: the connection closes without a reply
// and, with failBeforeCommitExceptionCode, the statement fails unapplied.
func (o *op) txnWriteFailPoint() error {
	if o.retry == nil {
		return nil
	}
	fp := o.s.core.failpoints.matchTxnWrite()
	if fp == nil {
		return nil
	}
	if fp.closeConn {
		o.dropReply = true
	}
	if fp.hasErrorCode {
		return merr.New(fp.errorCode, "Failing write for %d due to failpoint. The write must not be reflected.", o.retry.txnNumber)
	}
	return nil
}

// runOrAbort runs fn on t, aborting t if fn panics (the panic goes on to
// the wire layer, which answers InternalError): a half-done plain write
// must not keep its documents owned, nor its snapshot pinned, for ever.
func (o *op) runOrAbort(t *engine.Txn, fn func(t *engine.Txn) error) error {
	done := false
	defer func() {
		if !done {
			t.Abort()
		}
	}()
	err := fn(t)
	done = true
	return err
}

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

// beginSnapshot starts the engine transaction a read concern asks for:
// the latest data, or for level "snapshot" the data at atClusterTime (or
// now), recorded for the reply. A snapshot read outside a transaction
// (pin) keeps its snapshot readable for the session's later snapshot
// reads, for the history window.
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
	if pin && o.sess != nil && o.sess.unpin == nil {
		o.sess.unpin = t.Pin()
		o.sess.pinnedAt = time.Now()
	}
	o.atClusterTime = &at
	return t, nil
}

// matching returns the documents of ns that f matches, in natural order;
// an _id equality is looked up directly.
func matching(t *engine.Txn, ns engine.Namespace, filter bson.D, f *query.Filter, limit int) []bson.D {
	if id, ok := idEquality(filter); ok {
		if d := t.FindID(ns, id); d != nil && f.Match(d) {
			return []bson.D{d}
		}
		return nil
	}
	if eq := plainEqualities(filter); len(eq) > 0 {
		if docs, used := t.ScanEqual(ns, eq); used {
			out := docs[:0]
			for _, d := range docs {
				if f.Match(d) {
					out = append(out, d)
					if limit > 0 && len(out) == limit {
						break
					}
				}
			}
			return out
		}
	}
	var out []bson.D
	t.Scan(ns, func(d bson.D) bool {
		if f.Match(d) {
			out = append(out, d)
		}
		return limit <= 0 || len(out) < limit
	})
	return out
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

// idEquality recognises {_id: <plain value>}.
func idEquality(filter bson.D) (any, bool) {
	if len(filter) != 1 || filter[0].Key != "_id" {
		return nil, false
	}
	switch v := filter[0].Value.(type) {
	case bson.D:
		if len(v) > 0 && len(v[0].Key) > 0 && v[0].Key[0] == '$' {
			return nil, false
		}
	case bson.A, bson.Regex:
		return nil, false
	}
	return filter[0].Value, true
}

func writeErrorDoc(i int, err error) bson.D {
	var me *merr.Error
	if !errors.As(err, &me) {
		me = merr.New(merr.InternalError, "%v", err)
	}
	d := bson.D{{Key: "index", Value: int32(i)}, {Key: "code", Value: me.Code}}
	d = append(d, me.Extra...)
	d = append(d, bson.E{Key: "errmsg", Value: me.Msg})
	return d
}

// commandLevel reports errors that fail the whole command rather than
// one statement: a write conflict inside a transaction, a timeout.
func (o *op) commandLevel(err error) bool {
	var me *merr.Error
	if !errors.As(err, &me) {
		return false
	}
	return (o.txn != nil && me.Code == merr.WriteConflict) || me.Code == merr.MaxTimeMSExpired
}

// writeBatch runs the statements of an insert, update or delete command:
// each statement once (a retried statement reports its first result),
// stopping at the first error when ordered. Errors that fail the whole
// command end it; the others become writeErrors.
func (o *op) writeBatch(field string, each func(i int, stmt any) (any, error), fold func(result any)) (bson.A, error) {
	name := o.name
	stmts, ok, err := arrayField(o.cmd, field)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, merr.New(codeMissingField, "BSON field '%s.%s' is missing but a required field", name, field)
	}
	if len(stmts) == 0 {
		return nil, merr.New(merr.InvalidLength, "Write batch sizes must be between 1 and 100000. Got 0 operations.")
	}
	ord, err := boolField(o.cmd, "ordered", true)
	if err != nil {
		return nil, err
	}
	var werrs bson.A
	for i, v := range stmts {
		if cached, done := o.retry.done(i); done {
			fold(cached)
			continue
		}
		res, err := each(i, v)
		if err != nil {
			if o.commandLevel(err) {
				return nil, err
			}
			werrs = append(werrs, writeErrorDoc(i, err))
			if ord {
				break
			}
			continue
		}
		o.retry.record(i, res)
		fold(res)
	}
	return werrs, nil
}

func withWriteErrors(reply bson.D, werrs bson.A) bson.D {
	if len(werrs) > 0 {
		reply = append(reply, bson.E{Key: "writeErrors", Value: werrs})
	}
	return append(reply, bson.E{Key: "ok", Value: 1.0})
}

func cmdInsert(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	n := int32(0)
	werrs, err := o.writeBatch("documents", func(_ int, v any) (any, error) {
		doc, err := prepareInsert(v)
		if err != nil {
			return nil, err
		}
		return true, o.atomic(func(t *engine.Txn) error { return t.Insert(ns, doc) })
	}, func(any) { n++ })
	if err != nil {
		return nil, err
	}
	return withWriteErrors(bson.D{{Key: "n", Value: n}}, werrs), nil
}

type updateResult struct {
	index       int32 // the statement's position, for upserted
	n, modified int32
	upserted    any
	hasUpsert   bool
}

func cmdUpdate(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	var n, modified int32
	var upserted bson.A
	werrs, err := o.writeBatch("updates", func(i int, v any) (any, error) {
		res, err := o.updateOne(ns, v)
		res.index = int32(i)
		return res, err
	}, func(r any) {
		res := r.(updateResult)
		n += res.n
		modified += res.modified
		if res.hasUpsert {
			upserted = append(upserted, bson.D{{Key: "index", Value: res.index}, {Key: "_id", Value: res.upserted}})
		}
	})
	if err != nil {
		return nil, err
	}
	reply := bson.D{{Key: "n", Value: n}, {Key: "nModified", Value: modified}}
	if len(upserted) > 0 {
		reply = append(reply, bson.E{Key: "upserted", Value: upserted})
	}
	return withWriteErrors(reply, werrs), nil
}

func (o *op) updateOne(ns engine.Namespace, v any) (updateResult, error) {
	stmt, ok := v.(bson.D)
	if !ok {
		return updateResult{}, typeErr("updates", v, "object")
	}
	filter, err := docField(stmt, "q")
	if err != nil {
		return updateResult{}, err
	}
	spec, has := bsonkit.Get(stmt, "u")
	if !has {
		return updateResult{}, merr.New(codeMissingField, "BSON field 'update.updates.u' is missing but a required field")
	}
	multi, err := boolField(stmt, "multi", false)
	if err != nil {
		return updateResult{}, err
	}
	upsert, err := boolField(stmt, "upsert", false)
	if err != nil {
		return updateResult{}, err
	}
	filters, err := arrayFilters(stmt)
	if err != nil {
		return updateResult{}, err
	}
	f, err := query.Compile(filter)
	if err != nil {
		return updateResult{}, err
	}
	u, err := update.Compile(spec)
	if err != nil {
		return updateResult{}, err
	}
	if multi && u.IsReplacement() {
		return updateResult{}, merr.New(merr.FailedToParse, "multi update is not supported for replacement-style update")
	}
	var res updateResult
	err = o.atomic(func(t *engine.Txn) error {
		res = updateResult{}
		limit := 1
		if multi {
			limit = 0
		}
		docs := matching(t, ns, filter, f, limit)
		opts := update.Options{Now: bson.NewDateTimeFromTime(time.Now()), Timestamp: o.s.clusterTime(), ArrayFilters: filters}
		for _, d := range docs {
			nd, changed, err := u.Apply(d, opts)
			if err != nil {
				return err
			}
			res.n++
			if !changed {
				continue
			}
			if err := checkUpdatedSize(nd); err != nil {
				return err
			}
			if err := t.Replace(ns, d, nd); err != nil {
				return err
			}
			res.modified++
		}
		if len(docs) > 0 || !upsert {
			return nil
		}
		nd, err := upsertDoc(f, u, opts)
		if err != nil {
			return err
		}
		if err := t.Insert(ns, nd); err != nil {
			return err
		}
		res.upserted, _ = bsonkit.Get(nd, "_id")
		res.hasUpsert = true
		res.n = 1
		return nil
	})
	return res, err
}

// arrayFilters returns the arrayFilters of an update statement or
// findAndModify, which bind the $[identifier] parts of its paths.
func arrayFilters(d bson.D) ([]bson.D, error) {
	arr, _, err := arrayField(d, "arrayFilters")
	if err != nil {
		return nil, err
	}
	out := make([]bson.D, 0, len(arr))
	for _, v := range arr {
		f, ok := v.(bson.D)
		if !ok {
			return nil, typeErr("arrayFilters", v, "object")
		}
		out = append(out, f)
	}
	return out, nil
}

// upsertDoc builds the document an upsert inserts.
func upsertDoc(f *query.Filter, u *update.Update, opts update.Options) (bson.D, error) {
	eq, err := f.Equalities()
	if err != nil {
		return nil, err
	}
	seed, err := update.Seed(eq)
	if err != nil {
		return nil, err
	}
	var nd bson.D
	if u.IsReplacement() {
		nd, _, err = u.Apply(bson.D{}, opts)
		if err != nil {
			return nil, err
		}
		if _, has := bsonkit.Get(nd, "_id"); !has {
			if id, ok := bsonkit.Get(seed, "_id"); ok {
				nd = append(bson.D{{Key: "_id", Value: id}}, nd...)
			}
		}
	} else {
		opts.Insert = true
		nd, _, err = u.Apply(seed, opts)
		if err != nil {
			return nil, err
		}
	}
	return prepareInsert(nd)
}

func cmdDelete(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	var n int32
	werrs, err := o.writeBatch("deletes", func(_ int, v any) (any, error) {
		return o.deleteOne(ns, v)
	}, func(r any) { n += r.(int32) })
	if err != nil {
		return nil, err
	}
	return withWriteErrors(bson.D{{Key: "n", Value: n}}, werrs), nil
}

func (o *op) deleteOne(ns engine.Namespace, v any) (int32, error) {
	stmt, ok := v.(bson.D)
	if !ok {
		return 0, typeErr("deletes", v, "object")
	}
	filter, err := docField(stmt, "q")
	if err != nil {
		return 0, err
	}
	limit, _, err := intField(stmt, "limit")
	if err != nil {
		return 0, err
	}
	if limit != 0 && limit != 1 {
		return 0, merr.New(merr.FailedToParse, "The limit field in delete objects must be 0 or 1. Got %d", limit)
	}
	f, err := query.Compile(filter)
	if err != nil {
		return 0, err
	}
	var n int32
	err = o.atomic(func(t *engine.Txn) error {
		n = 0
		for _, d := range matching(t, ns, filter, f, int(limit)) {
			if err := t.Delete(ns, d); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// findSpec is a parsed find: filter, sort, projection, skip, limit.
type findSpec struct {
	filter     bson.D
	f          *query.Filter
	sort       *query.Sort
	projection *query.Projection
	skip       int64
	limit      int64
}

func parseFind(cmd bson.D, filterKey string) (*findSpec, error) {
	var fs findSpec
	var err error
	if fs.filter, err = docField(cmd, filterKey); err != nil {
		return nil, err
	}
	if fs.f, err = query.Compile(fs.filter); err != nil {
		return nil, err
	}
	sortSpec, err := docField(cmd, "sort")
	if err != nil {
		return nil, err
	}
	if len(sortSpec) > 0 {
		if fs.sort, err = query.CompileSort(sortSpec); err != nil {
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
	return &fs, nil
}

// run evaluates the find against t.
func (fs *findSpec) run(t *engine.Txn, ns engine.Namespace) []bson.D {
	limit := 0
	if fs.sort == nil && fs.limit != 0 {
		limit = int(fs.skip + abs64(fs.limit))
	}
	docs := matching(t, ns, fs.filter, fs.f, limit)
	if fs.sort != nil {
		sort.SliceStable(docs, func(i, j int) bool { return fs.sort.Compare(docs[i], docs[j]) < 0 })
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
	return docs
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
	fs, err := parseFind(o.cmd, "filter")
	if err != nil {
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
	if fs.limit < 0 {
		single = true
	}
	var docs []bson.D
	if err := o.read(func(t *engine.Txn) { docs = fs.run(t, ns) }); err != nil {
		return nil, err
	}
	if fs.limit > 0 && bs > 0 && bs >= fs.limit {
		single = true
	}
	reply, _ := o.s.core.cursors.open(o, ns.String(), docs, int(bs), single)
	return reply, nil
}

func cmdFindAndModify(o *op) (bson.D, error) {
	if o.retry != nil && o.retry.reply != nil {
		return o.retry.reply, nil
	}
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	// query, sort and fields parse as a find's filter, sort and projection.
	fs, err := parseFind(o.cmd, "query")
	if err != nil {
		return nil, err
	}
	filter, f, srt, proj := fs.filter, fs.f, fs.sort, fs.projection
	remove, err := boolField(o.cmd, "remove", false)
	if err != nil {
		return nil, err
	}
	returnNew, err := boolField(o.cmd, "new", false)
	if err != nil {
		return nil, err
	}
	upsert, err := boolField(o.cmd, "upsert", false)
	if err != nil {
		return nil, err
	}
	spec, hasUpdate := bsonkit.Get(o.cmd, "update")
	if remove == hasUpdate {
		return nil, merr.New(merr.FailedToParse, "Either an update or remove=true must be specified")
	}
	if remove && (upsert || returnNew) {
		return nil, merr.New(merr.FailedToParse, "Cannot specify both an update and remove=true")
	}
	filters, err := arrayFilters(o.cmd)
	if err != nil {
		return nil, err
	}
	var u *update.Update
	if hasUpdate {
		if u, err = update.Compile(spec); err != nil {
			return nil, err
		}
	}
	var value any
	lastError := bson.D{}
	err = o.atomic(func(t *engine.Txn) error {
		value, lastError = nil, bson.D{}
		limit := 1
		if srt != nil {
			limit = 0
		}
		docs := matching(t, ns, filter, f, limit)
		if srt != nil {
			sort.SliceStable(docs, func(i, j int) bool { return srt.Compare(docs[i], docs[j]) < 0 })
		}
		opts := update.Options{Now: bson.NewDateTimeFromTime(time.Now()), Timestamp: o.s.clusterTime(), ArrayFilters: filters}
		if len(docs) == 0 {
			if remove || !upsert {
				lastError = bson.D{{Key: "n", Value: int32(0)}}
				if !remove {
					lastError = append(lastError, bson.E{Key: "updatedExisting", Value: false})
				}
				return nil
			}
			nd, err := upsertDoc(f, u, opts)
			if err != nil {
				return err
			}
			if err := t.Insert(ns, nd); err != nil {
				return err
			}
			id, _ := bsonkit.Get(nd, "_id")
			lastError = bson.D{{Key: "n", Value: int32(1)}, {Key: "updatedExisting", Value: false}, {Key: "upserted", Value: id}}
			if returnNew {
				value = nd
			}
			return nil
		}
		d := docs[0]
		if remove {
			if err := t.Delete(ns, d); err != nil {
				return err
			}
			lastError = bson.D{{Key: "n", Value: int32(1)}}
			value = d
			return nil
		}
		nd, changed, err := u.Apply(d, opts)
		if err != nil {
			return err
		}
		if changed {
			if err := checkUpdatedSize(nd); err != nil {
				return err
			}
			if err := t.Replace(ns, d, nd); err != nil {
				return err
			}
		}
		lastError = bson.D{{Key: "n", Value: int32(1)}, {Key: "updatedExisting", Value: true}}
		value = d
		if returnNew {
			value = nd
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if d, ok := value.(bson.D); ok && proj != nil {
		value = proj.Apply(d)
	}
	reply := bson.D{{Key: "lastErrorObject", Value: lastError}, {Key: "value", Value: value}, {Key: "ok", Value: 1.0}}
	if o.retry != nil {
		o.retry.reply = reply
	}
	return reply, nil
}

func cmdCount(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	fs, err := parseFind(o.cmd, "query")
	if err != nil {
		return nil, err
	}
	fs.sort, fs.projection = nil, nil
	var docs []bson.D
	if err := o.read(func(t *engine.Txn) { docs = fs.run(t, ns) }); err != nil {
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
	fs, err := parseFind(o.cmd, "query")
	if err != nil {
		return nil, err
	}
	var docs []bson.D
	if err := o.read(func(t *engine.Txn) { docs = fs.run(t, ns) }); err != nil {
		return nil, err
	}
	var values []any
	for _, d := range docs {
		vals, _ := query.Lookup(d, key)
		for _, v := range vals {
			if a, ok := v.(bson.A); ok {
				for _, x := range a {
					values = appendDistinct(values, x)
				}
				continue
			}
			values = appendDistinct(values, v)
		}
	}
	sort.SliceStable(values, func(i, j int) bool { return bsonkit.Compare(values[i], values[j]) < 0 })
	reply := ok1(bson.E{Key: "values", Value: bson.A(values)})
	if o.atClusterTime != nil {
		reply = append(reply, bson.E{Key: "atClusterTime", Value: *o.atClusterTime})
	}
	return reply, nil
}

func appendDistinct(values []any, v any) []any {
	for _, x := range values {
		if bsonkit.Equal(x, v) && bsonkit.TypeRank(x) == bsonkit.TypeRank(v) {
			return values
		}
	}
	return append(values, v)
}

func cmdAggregate(o *op) (bson.D, error) {
	name, isColl := o.cmd[0].Value.(string)
	if !isColl {
		return nil, merr.New(merr.InvalidNamespace, "{aggregate: 1} is not supported by mongotest: aggregate on a collection")
	}
	ns := engine.Namespace{DB: o.db, Coll: name}
	if err := engine.ValidateNamespace(ns); err != nil {
		return nil, err
	}
	stages, ok, err := arrayField(o.cmd, "pipeline")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, merr.New(codeMissingField, "BSON field 'aggregate.pipeline' is missing but a required field")
	}
	cur, err := docField(o.cmd, "cursor")
	if err != nil {
		return nil, err
	}
	if cur == nil {
		if explain, _ := boolField(o.cmd, "explain", false); !explain {
			return nil, merr.New(merr.FailedToParse, "The 'cursor' option is required, except for aggregate with the explain argument")
		}
	}
	p, err := aggregate.Compile(stages)
	if err != nil {
		return nil, err
	}
	bs, err := cursorBatchSize(o.cmd)
	if err != nil {
		return nil, err
	}
	var input []bson.D
	if err := o.read(func(t *engine.Txn) {
		t.Scan(ns, func(d bson.D) bool { input = append(input, d); return true })
	}); err != nil {
		return nil, err
	}
	out, err := p.Run(input)
	if err != nil {
		return nil, err
	}
	reply, _ := o.s.core.cursors.open(o, ns.String(), out, bs, false)
	return reply, nil
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
		switch id.(type) {
		case bson.A:
			return nil, merr.New(merr.InvalidIdField, "The '_id' value cannot be of type array")
		case bson.Regex:
			return nil, merr.New(merr.InvalidIdField, "can't use a regex for _id")
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
	b, err := bson.Marshal(doc)
	if err != nil {
		return merr.New(merr.BadValue, "%v", err)
	}
	if len(b) > maxDocSize {
		return merr.New(merr.BSONObjectTooLarge, "object to insert too large. size in bytes: %d, max size: %d", len(b), maxDocSize)
	}
	return nil
}

// checkUpdatedSize enforces the document size limit after an update, with
// the error MongoDB 7.0 gives there.
func checkUpdatedSize(doc bson.D) error {
	b, err := bson.Marshal(doc)
	if err != nil {
		return merr.New(merr.BadValue, "%v", err)
	}
	if len(b) > maxDocSize {
		return merr.New(merr.Location17419, "Resulting document after update is larger than %d", maxDocSize)
	}
	return nil
}
