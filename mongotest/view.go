package mongotest

import (
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// maxViewDepth is MongoDB's limit on views defined on views.
const maxViewDepth = 20

// vars returns the variables the command's expressions see: $$NOW,
// $$CLUSTER_TIME and the command's let, whose values are expressions
// evaluated once, against no document.
func (o *op) vars() (expr.Vars, error) {
	if o.letVars != nil {
		return o.letVars, nil
	}
	vars := expr.Vars{
		"NOW":          bson.NewDateTimeFromTime(time.Now()),
		"CLUSTER_TIME": o.s.clusterTime(),
	}
	v, has := bsonkit.Get(o.cmd, "let")
	if has {
		let, ok := v.(bson.D)
		if !ok {
			return nil, typeErr("let", v, "object")
		}
		for _, e := range let {
			if err := expr.ValidateVarName(e.Key); err != nil {
				return nil, err
			}
			x, err := expr.Compile(e.Value, vars)
			if err != nil {
				return nil, err
			}
			val, err := x.Eval(bson.D{})
			if err != nil {
				return nil, err
			}
			if expr.IsMissing(val) {
				val = nil
			}
			vars[e.Key] = val
		}
	}
	o.letVars = vars
	return vars, nil
}

// namesVariable reports whether v holds a string that names a variable
// ("$$NOW", "$$x"): only then do a command's expressions need them.
func namesVariable(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.HasPrefix(x, "$$")
	case bson.D:
		for _, e := range x {
			if namesVariable(e.Value) {
				return true
			}
		}
	case bson.A:
		for _, e := range x {
			if namesVariable(e) {
				return true
			}
		}
	}
	return false
}

// view is a resolved view: the collection it reads and the pipeline that
// turns that collection's documents into the view's.
type view struct {
	base     engine.Namespace
	pipeline bson.A
}

// resolveView follows ns through views to a collection; ok is false when
// ns is not a view.
func resolveView(t *engine.Txn, ns engine.Namespace) (v view, ok bool, err error) {
	v.base = ns
	for depth := 0; ; depth++ {
		opts, _ := t.CollectionOptions(v.base)
		on, isView := bsonkit.Get(opts, "viewOn")
		if !isView {
			return v, depth > 0, nil
		}
		if depth == maxViewDepth {
			return v, true, merr.New(merr.ViewDepthLimitExceeded, "View depth too deep or view cycle detected; maximum depth is %d", maxViewDepth)
		}
		p, _ := bsonkit.Get(opts, "pipeline")
		stages, _ := p.(bson.A)
		v.pipeline = append(append(bson.A{}, stages...), v.pipeline...)
		v.base = engine.Namespace{DB: ns.DB, Coll: on.(string)}
	}
}

// isView reports whether ns is a view, as the command's transaction or a
// fresh snapshot sees the catalog.
func (o *op) isView(ns engine.Namespace) bool {
	var opts bson.D
	if o.txn != nil {
		opts, _ = o.txn.CollectionOptions(ns)
	} else {
		opts, _ = o.s.core.engine.CollectionOptions(ns)
	}
	_, ok := bsonkit.Get(opts, "viewOn")
	return ok
}

// collectionNS is o.ns for commands that write: a view is refused with
// MongoDB's CommandNotSupportedOnView.
func (o *op) collectionNS() (engine.Namespace, error) {
	ns, err := o.ns()
	if err != nil {
		return ns, err
	}
	if o.isView(ns) {
		return ns, merr.New(merr.CommandNotSupportedOnView, "Namespace %s is a view, not a collection", ns.String())
	}
	return ns, nil
}

// writeNS is collectionNS for commands that write or build indexes,
// which MongoDB refuses up front on a namespace no collection may have
// (userAllowedWriteNS): an update or delete there fails, rather than
// match nothing.
func (o *op) writeNS() (engine.Namespace, error) {
	ns, err := o.collectionNS()
	if err != nil {
		return ns, err
	}
	return ns, engine.CheckCreatable(ns)
}

// reader reads the collections and views of one database in one
// snapshot; it is the aggregate.Source of $lookup and $unionWith. It
// counts the documents it reads in scans (nil: not counted).
type reader struct {
	t     *engine.Txn
	db    string
	vars  expr.Vars
	scans *scanStats
}

var _ aggregate.Source = reader{}

// Documents returns the documents of coll in natural order, read through
// its pipeline when coll is a view.
func (r reader) Documents(coll string) ([]bson.D, error) {
	ns := engine.Namespace{DB: r.db, Coll: coll}
	if err := engine.ValidateNamespace(ns); err != nil {
		return nil, err
	}
	v, isView, err := resolveView(r.t, ns)
	if err != nil {
		return nil, err
	}
	var docs []bson.D
	r.t.Scan(v.base, func(d bson.D) bool { docs = append(docs, d); return true })
	r.scans.add(0, len(docs))
	if !isView {
		return docs, nil
	}
	// A view's pipeline runs with the simple collation: mongotest refuses
	// views with a default collation.
	p, err := aggregate.CompileWith(v.pipeline, aggregate.Options{Vars: r.vars, Source: reader{t: r.t, db: r.db, vars: r.vars, scans: r.scans}})
	if err != nil {
		return nil, err
	}
	return p.Run(docs)
}
