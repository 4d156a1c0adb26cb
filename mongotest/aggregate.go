package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

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
