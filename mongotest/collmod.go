package mongotest

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// viewOptions are the create options a view takes.
var viewOptions = map[string]bool{"viewOn": true, "pipeline": true}

// checkCreateOptions validates the view and validation options of create
// and returns the options to store: a view's are {viewOn, pipeline}; a
// validator is stored with its level and action, as listCollections shows
// them in MongoDB 7.0.
func checkCreateOptions(o *op, options bson.D) (bson.D, error) {
	if _, has := bsonkit.Get(options, "collation"); has {
		// A default collation would have to reach every index and query
		// of the collection; mongotest applies collation per operation only.
		return nil, merr.New(merr.InvalidOptions, "a default collation for a collection or view is not supported by mongotest; pass collation to each operation")
	}
	on, isView := bsonkit.Get(options, "viewOn")
	if !isView {
		if _, has := bsonkit.Get(options, "pipeline"); has {
			return nil, merr.New(merr.BadValue, "'pipeline' requires 'viewOn' to also be specified")
		}
		opts, err := withValidationDefaults(options)
		if err != nil {
			return nil, err
		}
		return normalizeOptions(opts), nil
	}
	if o.txn != nil {
		return nil, merr.New(merr.OperationNotSupportedInTransaction, "Cannot create a view in a multi-document transaction.")
	}
	for _, e := range options {
		if !viewOptions[e.Key] {
			return nil, merr.New(merr.InvalidOptions, "option '%s' is not supported with views", e.Key)
		}
	}
	pipeline, err := checkViewDefinition(o, on, options)
	if err != nil {
		return nil, err
	}
	return bson.D{{Key: "viewOn", Value: on}, {Key: "pipeline", Value: pipeline}}, nil
}

// checkViewDefinition checks viewOn and pipeline and returns the pipeline.
func checkViewDefinition(o *op, on any, options bson.D) (bson.A, error) {
	name, ok := on.(string)
	if !ok {
		return nil, typeErr("viewOn", on, "string")
	}
	if name == "" {
		return nil, merr.New(merr.BadValue, "'viewOn' cannot be empty")
	}
	pipeline := bson.A{}
	if p, has := bsonkit.Get(options, "pipeline"); has {
		a, ok := p.(bson.A)
		if !ok {
			return nil, typeErr("pipeline", p, "array")
		}
		pipeline = a
	}
	vars, err := o.vars()
	if err != nil {
		return nil, err
	}
	compiled, err := aggregate.CompileWith(pipeline, aggregate.Options{Vars: vars, Source: reader{db: o.db}})
	if err != nil {
		return nil, err
	}
	if out := compiled.Output(); out != nil {
		stage := "$out"
		if out.Merge {
			stage = "$merge"
		}
		return nil, merr.New(merr.OptionNotSupportedOnView, "%s cannot be used in a view definition", stage)
	}
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	if err := checkViewGraph(o.s.core.engine, ns, name, pipeline); err != nil {
		return nil, err
	}
	return pipeline, nil
}

// withValidationDefaults checks validator, validationLevel and
// validationAction and fills in the defaults MongoDB stores with a
// validator.
func withValidationDefaults(options bson.D) (bson.D, error) {
	v, err := parseValidation(options)
	if err != nil {
		return nil, err
	}
	if v.validator == nil {
		return options, nil
	}
	out := bsonkit.CloneDoc(options)
	if _, has := bsonkit.Get(out, "validationLevel"); !has {
		out = append(out, bson.E{Key: "validationLevel", Value: v.level})
	}
	if _, has := bsonkit.Get(out, "validationAction"); !has {
		out = append(out, bson.E{Key: "validationAction", Value: v.action})
	}
	return out, nil
}

// cmdCollMod changes a collection's validator, validationLevel,
// validationAction and one index's options (see parseIndexChange), or a
// view's viewOn and pipeline. Other collMod options are refused.
func cmdCollMod(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	cur, exists := o.s.core.engine.CollectionOptions(ns)
	if !exists {
		return nil, merr.New(merr.NamespaceNotFound, "ns does not exist: %s", ns.String())
	}
	_, isView := bsonkit.Get(cur, "viewOn")
	next := bsonkit.CloneDoc(cur)
	var changes bson.D
	var index *indexChange
	for _, e := range o.cmd[1:] {
		switch e.Key {
		case "index":
			if e.Value == nil {
				continue // as MongoDB: a null index is no change
			}
			if isView {
				return nil, merr.New(merr.InvalidOptions, "option not supported on a view: %s", e.Key)
			}
			ch, err := parseIndexChange(e.Value)
			if err != nil {
				return nil, err
			}
			index = &ch
			continue
		case "lsid", "txnNumber", "autocommit", "startTransaction", "writeConcern", "readConcern", "comment", "maxTimeMS", "$db", "$clusterTime", "$readPreference", "apiVersion", "apiStrict", "apiDeprecationErrors":
			continue
		case "validator", "validationLevel", "validationAction":
			if isView {
				return nil, merr.New(merr.InvalidOptions, "option not supported on a view: %s", e.Key)
			}
		case "viewOn", "pipeline":
			if !isView {
				return nil, merr.New(merr.InvalidOptions, "option only supported on a view: %s", e.Key)
			}
		case "changeStreamPreAndPostImages":
			// Stored as MongoDB stores it; mongotest has no change streams
			// to give the images to.
			d, ok := e.Value.(bson.D)
			if !ok {
				return nil, typeErr(e.Key, e.Value, "object")
			}
			if enabled, ok := field(d, "enabled").(bool); !ok || len(d) != 1 {
				return nil, merr.New(merr.FailedToParse, "BSON field 'changeStreamPreAndPostImages.enabled' is missing but a required field")
			} else if isView {
				return nil, merr.New(merr.InvalidOptions, "option not supported on a view: %s", e.Key)
			} else if !enabled {
				changes = append(changes, bson.E{Key: e.Key, Value: bson.D{{Key: "enabled", Value: false}}})
				continue
			}
		default:
			return nil, merr.New(merr.InvalidOptions, "collMod option '%s' is not supported by mongotest", e.Key)
		}
		changes = append(changes, e)
	}
	if index != nil && index.prepareUnique != nil && len(changes) > 0 {
		return nil, merr.New(merr.InvalidOptions, "prepareUnique cannot be combined with any other modification.")
	}
	if isView {
		on, hasOn := bsonkit.Get(changes, "viewOn")
		_, hasPipeline := bsonkit.Get(changes, "pipeline")
		if hasOn != hasPipeline {
			return nil, merr.New(merr.InvalidOptions, "Must specify both 'viewOn' and 'pipeline' when modifying a view and auth is enabled")
		}
		if hasOn {
			pipeline, err := checkViewDefinition(o, on, changes)
			if err != nil {
				return nil, err
			}
			next = bson.D{{Key: "viewOn", Value: on}, {Key: "pipeline", Value: pipeline}}
		}
	} else {
		for _, e := range changes {
			next = setOption(next, e.Key, e.Value)
		}
		if next, err = withValidationDefaults(next); err != nil {
			return nil, err
		}
		next = normalizeOptions(next)
	}
	var reply bson.D
	if index != nil {
		err := o.waitFor(func() error {
			return o.s.core.engine.ModifyIndex(ns, index.name, index.keys, func(spec bson.D) (bson.D, error) {
				next, r, err := index.apply(spec)
				reply = r
				return next, err
			})
		})
		if err != nil {
			return nil, err
		}
		if len(changes) == 0 {
			return ok1(reply...), nil
		}
	}
	if err := o.waitFor(func() error { return o.s.core.engine.SetCollectionOptions(ns, next) }); err != nil {
		return nil, err
	}
	return ok1(reply...), nil
}

func setOption(d bson.D, key string, v any) bson.D {
	for i := range d {
		if d[i].Key == key {
			d[i].Value = v
			return d
		}
	}
	return append(d, bson.E{Key: key, Value: v})
}

// optionOrder is the order MongoDB's CollectionOptions::toBSON writes the
// options in, which is what listCollections shows.
var optionOrder = []string{"capped", "size", "max", "autoIndexId", "temp", "storageEngine", "indexOptionDefaults",
	"validator", "validationLevel", "validationAction", "collation", "viewOn", "pipeline",
	"changeStreamPreAndPostImages", "timeseries", "expireAfterSeconds"}

// normalizeOptions orders the options as MongoDB stores them and gives
// size and max the type MongoDB's appendNumber gives them: an int when the
// value is below 2^30 in magnitude, else a long; capped sizes are rounded
// up to a multiple of 256 bytes. Unknown options keep their place after the
// known ones.
func normalizeOptions(options bson.D) bson.D {
	out := make(bson.D, 0, len(options))
	for _, k := range optionOrder {
		v, ok := bsonkit.Get(options, k)
		if !ok {
			continue
		}
		if k == "size" || k == "max" {
			if n, isInt := bsonkit.ToInt64(v); isInt && bsonkit.IsNumber(v) {
				if k == "size" && n%256 != 0 && n > 0 {
					n = (n/256 + 1) * 256
				}
				v = appendNumber(n)
			}
		}
		out = append(out, bson.E{Key: k, Value: v})
	}
	for _, e := range options {
		if !slices.Contains(optionOrder, e.Key) {
			out = append(out, e)
		}
	}
	return out
}

func appendNumber(n int64) any {
	if n < 1<<30 && n > -(1<<30) {
		return int32(n)
	}
	return n
}
