package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/collation"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

func cmdDelete(o *op) (bson.D, error) {
	ns, err := o.writeNS()
	if err != nil {
		return nil, err
	}
	var n int32
	werrs, err := o.writeBatch("deletes", parseDelete, func(_ int, v any) (any, error) {
		return o.deleteOne(ns, v)
	}, func(_ int, rec any) (any, error) {
		if d, ok := rec.(int32); ok {
			return d, nil
		}
		// makeWriteResultForInsertOrDeleteRetry
		// (write_ops_retryability.cpp): n: 1 over any other entry.
		return int32(1), nil
	}, func(r any) { n += r.(int32) })
	if err != nil {
		return nil, err
	}
	return withWriteErrors(bson.D{{Key: "n", Value: n}}, werrs), nil
}

// parseDelete checks a delete statement's shape, which MongoDB parses with
// the command (write_ops.idl, readMultiDeleteProperty).
func parseDelete(v any) error {
	stmt, ok := v.(bson.D)
	if !ok {
		return typeErr("deletes", v, "object")
	}
	if _, err := docField(stmt, "q"); err != nil {
		return err
	}
	limit, _, err := intField(stmt, "limit")
	if err != nil {
		return err
	}
	if limit != 0 && limit != 1 {
		return merr.New(merr.FailedToParse, "The limit field in delete objects must be 0 or 1. Got %d", limit)
	}
	_, err = docField(stmt, "collation")
	return err
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
	if limit == 0 && o.retry != nil {
		// performSingleDeleteOp (src/mongo/db/ops/write_ops_exec.cpp).
		return 0, merr.New(merr.InvalidOptions, "Cannot use (or request) retryable writes with limit=0")
	}
	if err := checkHint(o.s.core.engine, ns, field(stmt, "hint")); err != nil {
		return 0, err
	}
	vars, err := o.vars()
	if err != nil {
		return 0, err
	}
	coll, err := collation.Parse(field(stmt, "collation"))
	if err != nil {
		return 0, err
	}
	f, err := query.CompileWith(filter, query.Options{Vars: vars, Collation: coll.StringCompare()})
	if err != nil {
		return 0, err
	}
	if limit == 0 && o.txn == nil {
		n, _, err := o.eachDocument(ns, filter, f, func(t *engine.Txn, d bson.D) (bool, error) {
			return true, t.Delete(ns, d)
		})
		return n, err
	}
	var n int32
	err = o.atomic(func(t *engine.Txn) error {
		n = 0
		docs, err := matching(t, &o.s.core.scans, ns, filter, f, int(limit), nil)
		if err != nil {
			return err
		}
		for _, d := range docs {
			if err := t.Delete(ns, d); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
