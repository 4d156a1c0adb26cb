package mongotest

import (
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/collation"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
	"github.com/txkit/txkit/mongotest/internal/update"
)

type updateResult struct {
	index       int32 // the statement's position, for upserted
	n, modified int32
	upserted    any
	hasUpsert   bool
}

func cmdUpdate(o *op) (bson.D, error) {
	ns, err := o.writeNS()
	if err != nil {
		return nil, err
	}
	var n, modified int32
	var upserted bson.A
	werrs, err := o.writeBatch("updates", parseUpdate, func(i int, v any) (any, error) {
		res, err := o.updateOne(ns, v)
		res.index = int32(i)
		return res, err
	}, replayUpdate, func(r any) {
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

// replayUpdate answers an update statement already executed as
// parseOplogEntryForUpdate (write_ops_retryability.cpp) does: over an
// insert, as the upsert of that document; over a delete, code 40638.
func replayUpdate(i int, rec any) (any, error) {
	switch r := rec.(type) {
	case updateResult:
		return r, nil
	case insertRecord:
		return updateResult{index: int32(i), n: 1, upserted: r.id(), hasUpsert: true}, nil
	}
	return nil, merr.New(40638, "update retry request is not compatible with previous write in the transaction of type: d")
}

// parseUpdate checks an update statement's shape, which MongoDB parses
// with the command (write_ops.idl).
func parseUpdate(v any) error {
	stmt, ok := v.(bson.D)
	if !ok {
		return typeErr("updates", v, "object")
	}
	if _, err := docField(stmt, "q"); err != nil {
		return err
	}
	if _, has := bsonkit.Get(stmt, "u"); !has {
		return merr.New(codeMissingField, "BSON field 'update.updates.u' is missing but a required field")
	}
	for _, key := range []string{"multi", "upsert"} {
		if _, err := boolField(stmt, key, false); err != nil {
			return err
		}
	}
	for _, key := range []string{"c", "collation"} {
		if _, err := docField(stmt, key); err != nil {
			return err
		}
	}
	_, err := arrayFilters(stmt)
	return err
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
	if multi && o.retry != nil {
		// performSingleUpdateOp (src/mongo/db/ops/write_ops_exec.cpp).
		return updateResult{}, merr.New(merr.InvalidOptions, "Cannot use (or request) retryable writes with multi=true")
	}
	upsert, err := boolField(stmt, "upsert", false)
	if err != nil {
		return updateResult{}, err
	}
	filters, err := arrayFilters(stmt)
	if err != nil {
		return updateResult{}, err
	}
	if err := checkHint(o.s.core.engine, ns, field(stmt, "hint")); err != nil {
		return updateResult{}, err
	}
	vars, err := o.vars()
	if err != nil {
		return updateResult{}, err
	}
	coll, err := collation.Parse(field(stmt, "collation"))
	if err != nil {
		return updateResult{}, err
	}
	f, err := query.CompileWith(filter, query.Options{Vars: vars, Collation: coll.StringCompare()})
	if err != nil {
		return updateResult{}, err
	}
	fill, err := o.emptyTimestampFiller()
	if err != nil {
		return updateResult{}, err
	}
	u, err := compileUpdate(stmt, fillReplacement(spec, fill), vars)
	if err != nil {
		return updateResult{}, err
	}
	if multi && u.IsReplacement() {
		return updateResult{}, merr.New(merr.FailedToParse, "multi update is not supported for replacement-style update")
	}
	if multi && o.txn == nil {
		opts := update.Options{Now: bson.NewDateTimeFromTime(time.Now()), Timestamp: o.s.clusterTime(), ArrayFilters: filters}
		n, modified, err := o.eachDocument(ns, filter, f, func(t *engine.Txn, d bson.D) (bool, error) {
			nd, changed, err := applyMatched(u, f, d, opts)
			if err != nil || !changed {
				return false, err
			}
			if err := checkUpdatedSize(nd); err != nil {
				return false, err
			}
			if err := o.validate(t, ns, d, nd); err != nil {
				return false, err
			}
			return true, t.Replace(ns, d, nd)
		})
		if err != nil || n > 0 || !upsert {
			return updateResult{n: n, modified: modified}, err
		}
		// Nothing matched: an upsert inserts, atomically, below.
	}
	var res updateResult
	err = o.atomic(func(t *engine.Txn) error {
		res = updateResult{}
		limit := 1
		if multi {
			limit = 0
		}
		docs, err := matching(t, &o.s.core.scans, ns, filter, f, limit, nil)
		if err != nil {
			return err
		}
		opts := update.Options{Now: bson.NewDateTimeFromTime(time.Now()), Timestamp: o.s.clusterTime(), ArrayFilters: filters}
		for _, d := range docs {
			nd, changed, err := applyMatched(u, f, d, opts)
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
			if err := o.validate(t, ns, d, nd); err != nil {
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
		if err := o.validate(t, ns, nil, nd); err != nil {
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

// compileUpdate compiles an update statement's u; a pipeline sees the
// command's let and the statement's constants c.
func compileUpdate(stmt bson.D, spec any, vars expr.Vars) (*update.Update, error) {
	c, err := docField(stmt, "c")
	if err != nil {
		return nil, err
	}
	if c != nil {
		if _, isPipeline := spec.(bson.A); !isPipeline {
			return nil, merr.New(merr.FailedToParse, "Constant values may only be specified for pipeline updates")
		}
		more := expr.Vars{}
		for _, e := range c {
			if err := expr.ValidateVarName(e.Key); err != nil {
				return nil, err
			}
			more[e.Key] = e.Value
		}
		vars = vars.With(more)
	}
	return update.CompileVars(spec, vars)
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

// applyMatched applies u to d, the document f matched, with what the
// positional $ of u stands for in d (MongoDB records it only for such an
// update: UpdateStage::transformAndUpdate requests the elemMatchKey when
// the driver needs match details).
func applyMatched(u *update.Update, f *query.Filter, d bson.D, opts update.Options) (bson.D, bool, error) {
	if u.Positional() {
		key, err := f.ElemMatchKey(d)
		if err != nil {
			return nil, false, err
		}
		opts.MatchedField = key
	}
	return u.Apply(d, opts)
}

// upsertDoc builds the document an upsert inserts.
func upsertDoc(f *query.Filter, u *update.Update, opts update.Options) (bson.D, error) {
	if f.HasExpr() {
		// MongoDB parses an upsert's query for its equalities without
		// $expr (UpdateDriver::populateDocumentWithQueryFields: "$expr is
		// not allowed in the query for an upsert"), so an upsert that
		// inserts fails; one that matches a document updates it.
		return nil, merr.New(merr.QueryFeatureNotAllowed, "$expr is not allowed in this context")
	}
	eq := f.Equalities()
	var nd bson.D
	if u.IsReplacement() {
		// MongoDB seeds a replacement upsert with the query's full
		// equality on the immutable _id only (extractFullEqualityMatches,
		// which ignores every other path, conflicts included), then
		// replaces with _id immutable, so a replacement whose _id differs
		// fails with ImmutableField (UpsertStage::
		// _produceNewDocumentForInsert, ObjectReplaceExecutor).
		eq = slices.DeleteFunc(eq, func(e bson.E) bool { return e.Key != "_id" && !strings.HasPrefix(e.Key, "_id.") })
		seed, err := update.Seed(eq)
		if err != nil {
			return nil, err
		}
		for _, e := range eq {
			if e.Key != "_id" {
				return nil, merr.New(merr.NotExactValueField,
					"field at '_id' must be exactly specified, field at sub-path '%s'found", e.Key)
			}
		}
		nd, _, err = u.Apply(seed, opts)
		if err != nil {
			return nil, err
		}
	} else {
		seed, err := update.Seed(eq)
		if err != nil {
			return nil, err
		}
		opts.Insert = true
		nd, _, err = u.Apply(seed, opts)
		if err != nil {
			return nil, err
		}
	}
	return prepareInsert(nd)
}

// checkUpdatedSize enforces the document size limit after an update, with
// the error MongoDB 7.0 gives there.
func checkUpdatedSize(doc bson.D) error {
	n, err := bsonkit.Size(doc)
	if err != nil {
		return merr.New(merr.BadValue, "%v", err)
	}
	if n > maxDocSize {
		return merr.New(merr.Location17419, "Resulting document after update is larger than %d", maxDocSize)
	}
	return checkDepth(doc)
}
