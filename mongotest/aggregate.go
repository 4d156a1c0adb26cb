package mongotest

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/collation"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
	"github.com/txkit/txkit/mongotest/internal/update"
)

// codeMergeOnMissing is $merge's error for a document without its 'on'
// fields.
const codeMergeOnMissing int32 = 51132

// codeMergeNoUniqueIndex is $merge's error when no unique index backs
// its 'on' fields.
const codeMergeNoUniqueIndex int32 = 51183

func cmdAggregate(o *op) (bson.D, error) {
	var ns engine.Namespace
	name, isColl := o.cmd[0].Value.(string)
	if isColl {
		ns = engine.Namespace{DB: o.db, Coll: name}
		if err := engine.ValidateNamespace(ns); err != nil {
			return nil, err
		}
	} else if n, ok := bsonkit.ToInt64(o.cmd[0].Value); !ok || n != 1 || !bsonkit.IsNumber(o.cmd[0].Value) {
		return nil, merr.New(merr.FailedToParse, "Invalid command format: the 'aggregate' field must specify a collection name or 1")
	}
	if err := checkHint(o.s.core.engine, ns, field(o.cmd, "hint")); err != nil {
		return nil, err
	}
	stages, ok, err := arrayField(o.cmd, "pipeline")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, merr.New(codeMissingField, "BSON field 'aggregate.pipeline' is missing but a required field")
	}
	if o.txn != nil {
		for _, st := range stages {
			if d, ok := st.(bson.D); ok && len(d) > 0 && d[0].Key == "$currentOp" {
				// LiteParsedDocumentSource::assertSupportsMultiDocumentTransaction.
				return nil, merr.New(merr.OperationNotSupportedInTransaction, "Operation not permitted in transaction :: caused by :: Aggregation stage $currentOp cannot run within a multi-document transaction.")
			}
		}
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
	vars, err := o.vars()
	if err != nil {
		return nil, err
	}
	coll, err := collation.Parse(field(o.cmd, "collation"))
	if err != nil {
		return nil, err
	}
	// Compile once before reading, so parse errors come first.
	adminCollectionless := !isColl && o.db == "admin"
	p, err := aggregate.CompileWith(stages, aggregate.Options{Vars: vars, Source: reader{db: o.db, vars: vars}, Collation: coll, LocalSessions: o.s.core.sessions.list,
		CurrentOp: o.s.currentOps, Collectionless: !isColl, AdminCollectionless: adminCollectionless})
	if err != nil {
		return nil, err
	}
	output := p.Output()
	o.writes = output != nil
	if output != nil && o.txn != nil {
		return nil, merr.New(merr.OperationNotSupportedInTransaction, "%s cannot be used in a transaction", outputStage(output))
	}
	if rc, _ := docField(o.cmd, "readConcern"); output != nil && field(rc, "level") == "linearizable" {
		return nil, merr.New(merr.InvalidOptions, "%s cannot be used with a 'linearizable' read concern level", outputStage(output))
	}
	bs, err := cursorBatchSize(o.cmd)
	if err != nil {
		return nil, err
	}
	var out []bson.D
	if err := o.readErr(func(t *engine.Txn) error {
		src := reader{t: t, db: o.db, vars: vars, scans: &o.s.core.scans}
		var input []bson.D
		pipeline := stages
		if isColl {
			v, isView, err := resolveView(t, ns)
			if err != nil {
				return err
			}
			if isView {
				pipeline = append(slices.Clone(v.pipeline), stages...)
			}
			input = pipelineInput(t, &o.s.core.scans, v.base, pipeline, coll)
		}
		run, err := aggregate.CompileWith(pipeline, aggregate.Options{Vars: vars, Source: src, Collation: coll, LocalSessions: o.s.core.sessions.list,
			CurrentOp: o.s.currentOps, Collectionless: !isColl, AdminCollectionless: adminCollectionless})
		if err != nil {
			return err
		}
		out, err = run.Run(input)
		if err != nil {
			return err
		}
		return checkResultSizes(out)
	}); err != nil {
		return nil, err
	}
	cursorNS := o.db + ".$cmd.aggregate"
	if isColl {
		cursorNS = ns.String()
	}
	if output != nil {
		if err := o.writeOutput(output, out, vars, coll); err != nil {
			return nil, err
		}
		out = nil
	}
	reply, _ := o.s.core.cursors.open(o, cursorNS, out, bs, false)
	return reply, nil
}

// pipelineInput reads the documents of ns that pipeline starts from, in
// natural order. A leading $match that names its _ids (idLookup) reads
// only those documents, which the $match then filters, as MongoDB pushes
// such a $match into an IXSCAN on _id_; anything else reads the whole
// collection. st counts what it examines.
func pipelineInput(t *engine.Txn, st *scanStats, ns engine.Namespace, pipeline bson.A, coll *collation.Collation) []bson.D {
	if first, ok := firstStage(pipeline); ok && first.Key == "$match" && coll == nil {
		if filter, ok := first.Value.(bson.D); ok {
			if docs, ok := idLookup(t, st, ns, filter, nil); ok {
				return docs
			}
		}
	}
	var docs []bson.D
	t.Scan(ns, func(d bson.D) bool { docs = append(docs, d); return true })
	st.add(0, len(docs))
	return docs
}

// firstStage is the pipeline's first stage as its one field ($match: …).
func firstStage(pipeline bson.A) (bson.E, bool) {
	if len(pipeline) == 0 {
		return bson.E{}, false
	}
	d, ok := pipeline[0].(bson.D)
	if !ok || len(d) != 1 {
		return bson.E{}, false
	}
	return d[0], true
}

// checkResultSizes refuses a pipeline result that cannot be turned into
// BSON, as MongoDB does (BSONObj::_assertInvalid).
func checkResultSizes(docs []bson.D) error {
	for _, d := range docs {
		n, err := bsonkit.Size(d)
		if err != nil {
			return merr.New(merr.BadValue, "%v", err)
		}
		if n > maxInternalDocSize {
			code, msg := objectTooLarge(n)
			return merr.New(code, "%s", msg)
		}
	}
	return nil
}

func outputStage(out *aggregate.Output) string {
	if out.Merge {
		return "$merge"
	}
	return "$out"
}

// writeOutput carries out a final $out or $merge with the pipeline's
// results, in one atomic write.
func (o *op) writeOutput(out *aggregate.Output, docs []bson.D, vars expr.Vars, coll *collation.Collation) error {
	target := engine.Namespace{DB: out.DB, Coll: out.Coll}
	if target.DB == "" {
		target.DB = o.db
	}
	if err := engine.ValidateNamespace(target); err != nil {
		return err
	}
	if o.isView(target) {
		return merr.New(merr.CommandNotSupportedOnView, "Cannot write the output of %s to a view: %s", outputStage(out), target.String())
	}
	if out.Merge && !slices.Equal(out.On, []string{"_id"}) && !o.hasUniqueIndexOn(target, out.On, coll) {
		return merr.New(codeMergeNoUniqueIndex, "Cannot find index to verify that join fields will be unique")
	}
	if out.WhenMatched == "pipeline" {
		// Compiled per document, with its let; this reports errors first.
		if _, err := compileMergeUpdate(out, vars); err != nil {
			return err
		}
	}
	return o.atomic(func(t *engine.Txn) error {
		if _, exists := t.CollectionOptions(target); !exists {
			if err := t.CreateCollection(target, nil); err != nil {
				return err
			}
		}
		if !out.Merge {
			return o.replaceAll(t, target, docs)
		}
		for _, d := range docs {
			if err := o.mergeOne(t, target, out, d, vars, coll); err != nil {
				return err
			}
		}
		return nil
	})
}

// replaceAll is $out: the target's documents become docs; its indexes and
// options stay.
func (o *op) replaceAll(t *engine.Txn, ns engine.Namespace, docs []bson.D) error {
	var old []bson.D
	t.Scan(ns, func(d bson.D) bool { old = append(old, d); return true })
	for _, d := range old {
		if err := t.Delete(ns, d); err != nil {
			return err
		}
	}
	for _, d := range docs {
		nd, err := prepareInsert(d)
		if err != nil {
			return err
		}
		if err := o.validate(t, ns, nil, nd); err != nil {
			return err
		}
		if err := t.Insert(ns, nd); err != nil {
			return err
		}
	}
	return nil
}

// hasUniqueIndexOn reports whether ns has an index that makes fields
// unique under coll, as MongoDB's supportsUniqueKey: unique, not partial,
// keyed on exactly fields, with the aggregate's collation.
func (o *op) hasUniqueIndexOn(ns engine.Namespace, fields []string, coll *collation.Collation) bool {
	specs, err := o.s.core.engine.ListIndexes(ns)
	if err != nil {
		return false
	}
	for _, s := range specs {
		unique, _ := bsonkit.Get(s, "unique")
		key, _ := bsonkit.Get(s, "key")
		kd, _ := key.(bson.D)
		if unique != true || len(kd) != len(fields) || field(s, "partialFilterExpression") != nil {
			continue
		}
		if ic, has := bsonkit.Get(s, "collation"); has != (coll != nil) || (has && !bsonkit.Equal(ic, coll.Full())) {
			continue
		}
		all := true
		for _, k := range kd {
			all = all && slices.Contains(fields, k.Key)
		}
		if all {
			return true
		}
	}
	return false
}

// compileMergeUpdate compiles whenMatched's pipeline, which sees $$new (the
// pipeline's document) or the stage's let.
func compileMergeUpdate(out *aggregate.Output, vars expr.Vars) (*update.Update, error) {
	probe := expr.Vars{"new": nil}
	for _, e := range out.Let {
		if err := expr.ValidateVarName(e.Key); err != nil {
			return nil, err
		}
		probe[e.Key] = nil
	}
	return update.CompileVars(out.Pipeline, vars.With(probe))
}

// mergeOne is $merge for one document.
func (o *op) mergeOne(t *engine.Txn, ns engine.Namespace, out *aggregate.Output, doc bson.D, vars expr.Vars, coll *collation.Collation) error {
	if slices.Equal(out.On, []string{"_id"}) {
		if _, has := bsonkit.Get(doc, "_id"); !has {
			doc = append(bson.D{{Key: "_id", Value: bson.NewObjectID()}}, doc...)
		}
		coll = nil // the _id index has the simple collation
	}
	filter := bson.D{}
	for _, f := range out.On {
		v, ok := getPathValue(doc, f)
		switch v.(type) {
		case nil, bson.A, bson.Undefined, bson.Null:
			ok = false
		}
		if !ok {
			return merr.New(codeMergeOnMissing, "$merge write error: 'on' field '%s' cannot be missing, null, undefined or an array", f)
		}
		filter = append(filter, bson.E{Key: f, Value: bson.D{{Key: "$eq", Value: v}}})
	}
	f, err := query.CompileWith(filter, query.Options{Collation: coll.StringCompare()})
	if err != nil {
		return err
	}
	matched, err := matching(t, &o.s.core.scans, ns, filter, f, 1, nil)
	if err != nil {
		return err
	}
	if len(matched) == 0 {
		switch out.WhenNotMatched {
		case "discard":
			return nil
		case "fail":
			return merr.New(merr.MergeStageNoMatchingDocument, "$merge could not find a matching document in the target collection for at least one document in the source collection")
		}
		nd, err := prepareInsert(doc)
		if err != nil {
			return err
		}
		if err := o.validate(t, ns, nil, nd); err != nil {
			return err
		}
		return t.Insert(ns, nd)
	}
	old := matched[0]
	var nd bson.D
	switch out.WhenMatched {
	case "keepExisting":
		return nil
	case "fail":
		id, _ := bsonkit.Get(old, "_id")
		e := merr.New(merr.DuplicateKey, "E11000 duplicate key error collection: %s index: _id_ dup key: %s", ns.String(), bsonkit.FormatValue(bson.D{{Key: "_id", Value: id}}))
		e.Extra = bson.D{{Key: "keyPattern", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "keyValue", Value: bson.D{{Key: "_id", Value: id}}}}
		return e
	case "replace":
		nd = bsonkit.CloneDoc(doc)
	case "merge":
		nd = bsonkit.CloneDoc(old)
		for _, e := range doc {
			nd = setOption(nd, e.Key, bsonkit.Clone(e.Value))
		}
	case "pipeline":
		let := expr.Vars{}
		letSpec := out.Let
		if letSpec == nil {
			letSpec = bson.D{{Key: "new", Value: "$$ROOT"}}
		}
		for _, e := range letSpec {
			x, err := expr.Compile(e.Value, vars)
			if err != nil {
				return err
			}
			v, err := x.Eval(doc)
			if err != nil {
				return err
			}
			if expr.IsMissing(v) {
				v = nil
			}
			let[e.Key] = v
		}
		if _, has := let["new"]; !has {
			let["new"] = doc
		}
		u, err := update.CompileVars(out.Pipeline, vars.With(let))
		if err != nil {
			return err
		}
		if nd, _, err = u.Apply(old, update.Options{}); err != nil {
			return err
		}
	}
	oldID, _ := bsonkit.Get(old, "_id")
	if newID, has := bsonkit.Get(nd, "_id"); has && !bsonkit.Equal(oldID, newID) {
		return merr.New(merr.ImmutableField, "$merge failed to update the matching document, did you attempt to modify the _id or the shard key? :: caused by :: Performing an update on the path '_id' would modify the immutable field '_id'")
	} else if !has {
		nd = append(bson.D{{Key: "_id", Value: oldID}}, nd...)
	}
	if err := checkUpdatedSize(nd); err != nil {
		return err
	}
	if err := o.validate(t, ns, old, nd); err != nil {
		return err
	}
	return t.Replace(ns, old, nd)
}

// getPathValue follows a dotted path through documents.
func getPathValue(d bson.D, path string) (any, bool) {
	v := expr.GetPath(d, splitDots(path))
	if expr.IsMissing(v) {
		return nil, false
	}
	return v, true
}

func splitDots(p string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			parts = append(parts, p[start:i])
			start = i + 1
		}
	}
	return append(parts, p[start:])
}
