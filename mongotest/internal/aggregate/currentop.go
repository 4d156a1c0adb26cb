package aggregate

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// CurrentOpOptions are the options of a $currentOp stage that change what
// it lists.
type CurrentOpOptions struct {
	// IdleConnections: list connections with no command running too.
	IdleConnections bool
	// IdleSessions: list sessions whose transaction is open with no
	// command running on it (default true).
	IdleSessions bool
}

// parseCurrentOp is $currentOp as MongoDB 7.0 parses it: first the lite
// parse (DocumentSourceCurrentOp::LiteParsed::parse: an object, allUsers
// and localOps booleans, TypeMismatch), then createFromBson (admin and
// {aggregate: 1}, each option a boolean, FailedToParse, no other option).
// allUsers (mongotest has no users: every op is listed), localOps (for
// mongos only) and backtrace (no op waits on a latch, so there is no
// waitingForLatch to add it to) change nothing; idleCursors and
// truncateOps, which would, are refused when true.
func parseCurrentOp(c *compiler, spec any) (stage, error) {
	d, ok := spec.(bson.D)
	if !ok {
		return nil, merr.New(merr.TypeMismatch, "$currentOp options must be specified in an object, but found: %s", expr.TypeName(spec))
	}
	for _, e := range d {
		if _, isBool := e.Value.(bool); !isBool && (e.Key == "allUsers" || e.Key == "localOps") {
			return nil, merr.New(merr.TypeMismatch, "The '%s' parameter of the $currentOp stage must be a boolean value, but found: %s", e.Key, expr.TypeName(e.Value))
		}
	}
	if !c.opts.AdminCollectionless {
		return nil, merr.New(merr.InvalidNamespace, "$currentOp must be run against the 'admin' database with {aggregate: 1}")
	}
	opts := CurrentOpOptions{IdleSessions: true}
	var refused string
	for _, e := range d {
		switch e.Key {
		case "idleConnections", "idleSessions", "allUsers", "localOps", "truncateOps", "idleCursors", "backtrace":
		default:
			return nil, merr.New(merr.FailedToParse, "Unrecognized option '%s' in $currentOp stage.", e.Key)
		}
		b, ok := e.Value.(bool)
		if !ok {
			return nil, merr.New(merr.FailedToParse, "The '%s' parameter of the $currentOp stage must be a boolean value, but found: %s", e.Key, expr.TypeName(e.Value))
		}
		switch e.Key {
		case "idleConnections":
			opts.IdleConnections = b
		case "idleSessions":
			opts.IdleSessions = b
		case "truncateOps", "idleCursors":
			if b && refused == "" {
				refused = e.Key
			}
		}
	}
	if refused != "" {
		return nil, merr.New(merr.IllegalOperation, "$currentOp with %s: true is not supported by mongotest", refused)
	}
	if c.opts.nested != "" {
		return nil, merr.New(merr.IllegalOperation, "$currentOp within %s is not supported by mongotest", c.opts.nested)
	}
	list := c.opts.CurrentOp
	if list == nil {
		return nil, merr.New(merr.IllegalOperation, "$currentOp is not supported here by mongotest")
	}
	return func([]bson.D) ([]bson.D, error) { return list(opts), nil }, nil
}
