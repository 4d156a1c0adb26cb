package masked

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Look-alikes: the error reaches the callback's return, the ctx cannot cut
// the statement while the callback runs, or txcheck cannot tell. All must
// stay silent.

func returned(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return err
		}
		_, err := coll.InsertOne(ctx, bson.D{})
		return err
	})
}

func wrapped(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			log.Printf("insert: %v", err)
			return fmt.Errorf("insert: %w", err)
		}
		res, err := coll.DeleteOne(ctx, bson.D{})
		if err != nil {
			return fmt.Errorf("delete %v: %w", res, fmt.Errorf("in tx: %w", err))
		}
		return nil
	})
}

func joined(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return errors.Join(errFailed, err)
		}
		return nil
	})
}

// callbackCtx: the callback's own ctx is cut only with the runner's, which
// the runner sees.
func callbackCtx(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		coll.InsertOne(ctx, bson.D{}) //nolint:errcheck // a bug of its own, not this check's
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return errFailed
		}
		return nil
	})
}

// valuesOnly: WithValue and WithoutCancel add no cut; WithoutCancel
// removes the one before it.
func valuesOnly(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		vctx := context.WithValue(ctx, key{}, 1)
		if _, err := coll.InsertOne(vctx, bson.D{}); err != nil {
			return errFailed
		}
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		wctx := context.WithoutCancel(tctx)
		if _, err := coll.InsertOne(wctx, bson.D{}); err != nil {
			return errFailed
		}
		if _, err := coll.InsertOne(detached(tctx), bson.D{}); err != nil {
			return errFailed
		}
		return nil
	})
}

func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// derivedOutside: a ctx derived outside the callback cuts the runner's
// ctx too, which the runner sees.
func derivedOutside(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return runner.Run(ctx, func(ctx context.Context) error {
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return errFailed
		}
		return nil
	})
}

// deferredCancel: a cancel that only runs when the callback returns cannot
// cut a statement of it.
func deferredCancel(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return errFailed
		}
		cctx, stop := context.WithCancelCause(ctx)
		defer func() { stop(nil) }()
		if _, err := coll.InsertOne(cctx, bson.D{}); err != nil {
			return errFailed
		}
		stop(errFailed)
		return nil
	})
}

// bareReturn: a bare return of named results is not read (here it
// returns the error).
func bareReturn(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) (err error) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err = coll.InsertOne(ctx, bson.D{}); err != nil {
			return
		}
		return
	})
}

// helpers: an error that goes to a helper, a nested helper closure and a
// call of this package are not followed.
func helpers(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return classify(err)
		}
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				return errFailed
			}
			return err
		}
		if err := coll.FindOne(ctx, bson.D{}).Err(); errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		}
		save := func(ctx context.Context) error {
			_, err := coll.InsertOne(ctx, bson.D{})
			return err
		}
		if err := save(ctx); err != nil {
			return errFailed
		}
		if err := store(ctx); err != nil {
			return errFailed
		}
		return nil
	})
}

func classify(err error) error { return err }

func store(ctx context.Context) error {
	_, err := coll.InsertOne(ctx, bson.D{})
	return err
}

// unsure: stored, shadowed, a branch that does not end in a return, a
// format that is not a constant: not followed.
func unsure(ctx context.Context, format string) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var last error
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			last = err
			return errFailed
		}
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			if err := cleanUp(); err != nil {
				return err
			}
			return errFailed
		}
		for range 3 {
			if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
				continue
			}
		}
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return fmt.Errorf(format, err)
		}
		_, err := coll.InsertOne(ctx, bson.D{})
		if err != nil && last == nil {
			return errFailed
		}
		return last
	})
}

func cleanUp() error { return nil }

// cursor: a cursor's calls follow the statement that opened it, so they
// never start a transaction.
func cursor(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		cur, err := coll.Find(ctx, bson.D{})
		if err != nil {
			return err
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
		}
		cur.Close(ctx)
		return cur.Err()
	})
}

// outsideATransaction: a session's callback is not retried nor reaped.
func outsideATransaction(ctx context.Context, sess *mongo.Session) error {
	return mongo.WithSession(ctx, sess, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		coll.InsertOne(ctx, bson.D{})
		return nil
	})
}

// noTransaction: outside any callback, nothing to check.
func noTransaction(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	coll.InsertOne(ctx, bson.D{})
}

// reachesTheReturn (txcheck-attack28): the error reaches the return
// through an indexed %w, a constant format, errors.Is before a return of
// it, a helper closure or a later branch.
func reachesTheReturn(ctx context.Context) error {
	const insertFailed = "insert: %w"
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return fmt.Errorf("insert %[1]w (%[1]v)", err)
		}
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return fmt.Errorf(insertFailed, err)
		}
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				log.Print("slow insert")
			}
			return err
		}
		wrap := func(err error) error { return fmt.Errorf("in tx: %w", err) }
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return wrap(err)
		}
		_, err := coll.InsertOne(ctx, bson.D{})
		if err != nil {
			log.Print(err)
		}
		if err != nil {
			return err
		}
		return nil
	})
}

// ctxErrReturned (txcheck-attack28-ctx-err): a branch that returns the
// ctx's own error when it is done returns the cut to the runner.
func ctxErrReturned(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errFailed
		}
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return fmt.Errorf("insert (%v): %w", err, context.Cause(ctx))
		}
		return nil
	})
}
