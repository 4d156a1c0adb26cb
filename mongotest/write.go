package mongotest

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// unsatisfiableWriteConcern returns the writeConcernError MongoDB reports
// after applying a write whose write concern this one-member replica set
// can never satisfy (w greater than 1, or an unknown tag), or nil.
func unsatisfiableWriteConcern(o *op) bson.D {
	if !o.h.writeConcern && !o.writes {
		return nil
	}
	wc, ok := field(o.cmd, "writeConcern").(bson.D)
	if !ok {
		return nil
	}
	switch w := field(wc, "w").(type) {
	case string:
		if w == "majority" {
			return nil
		}
		return writeConcernError(merr.UnknownReplWriteConcern, fmt.Sprintf("No write concern mode named '%s' found in replica set configuration", w))
	case nil:
		return nil
	default:
		if n, ok := bsonkit.ToInt64(w); !ok || n <= 1 {
			return nil
		}
		return writeConcernError(merr.UnsatisfiableWriteConcern, "Not enough data-bearing nodes")
	}
}

// writeConcernError is a reply's writeConcernError document.
func writeConcernError(code int32, msg string) bson.D {
	return bson.D{{Key: "code", Value: code}, {Key: "codeName", Value: merr.Name(code)}, {Key: "errmsg", Value: msg}}
}

const maxDocSize = 16 * 1024 * 1024

// atomic runs fn as one unit. Inside a transaction it uses the
// transaction and turns a conflict into WriteConflict. Outside, it commits
// fn's writes at once, and on a conflict waits for the other transaction to
// end and runs fn again on fresh data, as MongoDB retries a plain write.
func (o *op) atomic(fn func(t *engine.Txn) error) error {
	if o.txn != nil {
		err := fn(o.txn)
		if conflictIn(err) != nil {
			return merr.NewWriteConflict()
		}
		return err
	}
	for {
		t := o.s.core.engine.Begin()
		err := o.runOrAbort(t, fn)
		if c := conflictIn(err); c != nil {
			t.Abort()
			if err := o.waitOut(c); err != nil {
				return err
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

// conflictIn returns the conflict err reports, if any. It checks for nil
// first: errors.As needs its target on the heap, which a write that
// succeeded should not pay for.
func conflictIn(err error) *engine.Conflict {
	if err == nil {
		return nil
	}
	var c *engine.Conflict
	if errors.As(err, &c) {
		return c
	}
	return nil
}

// waitOut waits for the transaction that holds what o needs to end. A
// wait cut short fails o: its session was killed (Interrupted), or its
// maxTimeMS passed or the server is closing (MaxTimeMSExpired).
func (o *op) waitOut(c *engine.Conflict) error {
	ctx := o.ctx
	if o.sess != nil {
		var stop func()
		ctx, stop = o.sess.waitContext(ctx)
		defer stop()
	}
	ctx, stop := o.killable(ctx)
	defer stop()
	if c.Wait(ctx) == nil {
		return nil
	}
	if interrupted(ctx) {
		return merr.New(merr.Interrupted, "operation was interrupted")
	}
	return merr.New(merr.MaxTimeMSExpired, "operation exceeded time limit")
}

// eachDocument runs fn on each document that matches f, outside a
// transaction, one document per storage transaction, as MongoDB's
// multi-document updates and deletes do: the candidates come from one
// snapshot, and each is re-read, re-matched and written on its own. A
// document a transaction holds makes the operation wait and retry that
// document only (atomic), while the documents before it stay written and
// visible: the operation as a whole is not atomic. fn reports whether it
// changed the document; it may run again on fresh data after a conflict.
func (o *op) eachDocument(ns engine.Namespace, filter bson.D, f *query.Filter, fn func(t *engine.Txn, doc bson.D) (bool, error)) (matched, changed int32, err error) {
	snap := o.s.core.engine.Begin()
	docs, err := matching(snap, &o.s.core.scans, ns, filter, f, 0, nil)
	snap.Abort()
	if err != nil {
		return 0, 0, err
	}
	for _, d := range docs {
		id, _ := bsonkit.Get(d, "_id")
		var found, did bool
		err := o.atomic(func(t *engine.Txn) error {
			found, did = false, false
			cur := t.FindID(ns, id)
			if cur == nil {
				return nil
			}
			if ok, err := f.Eval(cur); err != nil || !ok {
				return err
			}
			found = true
			var err error
			did, err = fn(t, cur)
			return err
		})
		if err != nil {
			return matched, changed, err
		}
		if found {
			matched++
		}
		if did {
			changed++
		}
	}
	return matched, changed, nil
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
// one statement: a write conflict inside a transaction, a timeout, an
// interruption.
func (o *op) commandLevel(err error) bool {
	var me *merr.Error
	if !errors.As(err, &me) {
		return false
	}
	return (o.txn != nil && me.Code == merr.WriteConflict) || me.Code == merr.MaxTimeMSExpired || me.Code == merr.Interrupted
}

// writeBatch runs the statements of an insert, update or delete command:
// each statement once (a retried statement reports its first result),
// stopping at the first error when ordered or in a transaction (MongoDB's
// handleError fails the whole batch in a transaction, ordered or not).
// Errors that fail the whole command end it; the others become
// writeErrors. Every statement is parsed before the first runs: as with
// MongoDB's IDL parsing of the command, a malformed statement fails the
// command with nothing applied.
//
// replay turns the recorded result of a statement already executed into
// this command's kind of result ([insertRecord], an int32 for a delete, an
// [updateResult]).
func (o *op) writeBatch(field string, parse func(stmt any) error, each func(i int, stmt any) (any, error), replay func(i int, recorded any) (any, error), fold func(result any)) (bson.A, error) {
	name := o.name
	stmts, ok, err := arrayField(o.cmd, field)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, merr.New(codeMissingField, "BSON field '%s.%s' is missing but a required field", name, field)
	}
	// write_ops.cpp checkOpCountForCommand, as the command is parsed:
	// a batch outside the bounds applies nothing.
	if n := len(stmts); n == 0 || n > maxWriteBatchSize {
		return nil, merr.New(merr.InvalidLength, "Write batch sizes must be between 1 and %d. Got %d operations.", maxWriteBatchSize, n)
	}
	ord, err := boolField(o.cmd, "ordered", true)
	if err != nil {
		return nil, err
	}
	for _, v := range stmts {
		if err := parse(v); err != nil {
			return nil, err
		}
	}
	var werrs bson.A
	for i, v := range stmts {
		if cached, done := o.retry.done(i); done {
			// The statement may have been another kind of write (the
			// same txnNumber re-sent with another command): replay
			// answers from its record as MongoDB does from its oplog
			// entry, or refuses it.
			res, err := replay(i, cached)
			if err != nil {
				werrs = append(werrs, writeErrorDoc(i, err))
				if ord {
					break
				}
				continue
			}
			fold(res)
			continue
		}
		res, err := each(i, v)
		if err != nil {
			if o.commandLevel(err) {
				return nil, err
			}
			werrs = append(werrs, writeErrorDoc(i, err))
			if ord || o.txn != nil {
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
