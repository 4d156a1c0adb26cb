package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// validation is a collection's validator with its level and action.
type validation struct {
	validator bson.D
	filter    *query.Filter
	level     string // "strict", "moderate" or "off"
	action    string // "error" or "warn"
}

// parseValidation reads validator, validationLevel and validationAction
// from collection options (create, collMod or the stored ones).
func parseValidation(opts bson.D) (*validation, error) {
	v := &validation{level: "strict", action: "error"}
	for _, e := range opts {
		switch e.Key {
		case "validator":
			d, ok := e.Value.(bson.D)
			if !ok {
				return nil, typeErr("validator", e.Value, "object")
			}
			f, err := query.Compile(d)
			if err != nil {
				return nil, err
			}
			if f.HasExpr() {
				// $expr is allowed in validators; $$NOW and such are not
				// bound at create time, so compile again when used.
				f = nil
			}
			v.validator, v.filter = d, f
		case "validationLevel":
			s, _ := e.Value.(string)
			switch s {
			case "off", "strict", "moderate":
				v.level = s
			default:
				return nil, merr.New(merr.BadValue, "Enumeration value '%v' for field 'validationLevel' is not a valid value.", e.Value)
			}
		case "validationAction":
			s, _ := e.Value.(string)
			switch s {
			case "error", "warn":
				v.action = s
			default:
				return nil, merr.New(merr.BadValue, "Enumeration value '%v' for field 'validationAction' is not a valid value.", e.Value)
			}
		}
	}
	return v, nil
}

// validate checks a document a write is about to store in ns against the
// collection's validator, as MongoDB 7.0: old is the document an update
// replaces (nil for an insert); with validationLevel "moderate" an update
// of a document that already failed validation is not checked; with
// validationAction "warn" a failure is logged and the write goes on; a
// command with bypassDocumentValidation skips the check.
func (o *op) validate(t *engine.Txn, ns engine.Namespace, old, doc bson.D) error {
	opts, _ := t.CollectionOptions(ns)
	if _, has := bsonkit.Get(opts, "validator"); !has {
		return nil
	}
	if bypass, _ := boolField(o.cmd, "bypassDocumentValidation", false); bypass {
		return nil
	}
	v, err := parseValidation(opts)
	if err != nil || v.level == "off" {
		return err
	}
	f := v.filter
	if f == nil {
		vars, err := o.vars()
		if err != nil {
			return err
		}
		if f, err = query.CompileVars(v.validator, vars); err != nil {
			return err
		}
	}
	ok, err := f.Eval(doc)
	if err != nil || ok {
		return err
	}
	if old != nil && v.level == "moderate" {
		if wasValid, err := f.Eval(old); err == nil && !wasValid {
			return nil
		}
	}
	if v.action == "warn" {
		o.s.log.Warn("Document would fail validation", zap.String("namespace", ns.String()))
		return nil
	}
	id, _ := bsonkit.Get(doc, "_id")
	e := merr.New(merr.DocumentValidationFailure, "Document failed validation")
	e.Extra = bson.D{{Key: "errInfo", Value: bson.D{{Key: "failingDocumentId", Value: id}, {Key: "details", Value: validationDetails(v.validator, doc)}}}}
	return e
}

// validationDetails explains a failure: MongoDB 7's schemaRulesNotSatisfied
// for a $jsonSchema validator; for a query validator, the validator
// itself.
func validationDetails(validator, doc bson.D) bson.D {
	if len(validator) == 1 && validator[0].Key == "$jsonSchema" {
		if spec, ok := validator[0].Value.(bson.D); ok {
			if s, err := query.CompileSchema(spec); err == nil {
				return bson.D{{Key: "operatorName", Value: "$jsonSchema"}, {Key: "schemaRulesNotSatisfied", Value: s.Explain(doc)}}
			}
		}
	}
	return bson.D{{Key: "operatorName", Value: "$and"}, {Key: "specifiedAs", Value: validator}, {Key: "reason", Value: "expression did not match"}}
}
