// Package masked holds the masked-error check's cases: a driver call run
// with a ctx the callback derived with a cancel or a deadline, whose error
// does not reach the callback's return. Each "want" comment is a true
// positive; every other call must stay silent (silent.go).
package masked

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/batch"
	"github.com/txkit/txkit/tx/decorator"
)

var (
	runner *tx.Runner
	coll   *mongo.Collection
)

var errFailed = errors.New("failed")

func discarded(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		coll.InsertOne(ctx, bson.D{}) // want `the error of Collection.InsertOne, cut by the ctx of context.WithTimeout, does not reach the Runner.Run callback's return: if that ctx cuts it, the statement may still reach the server and hold what it writes until the transaction lifetime limit; return the error or wrap it with %w`
		return nil
	})
}

func blankError(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Second))
		defer cancel()
		res, _ := coll.UpdateOne(dctx, bson.D{}, bson.D{}) // want `the error of Collection.UpdateOne, cut by the ctx of context.WithDeadline, does not reach`
		if res.MatchedCount == 0 {
			return errFailed
		}
		_ = coll.Drop(dctx) // want `the error of Collection.Drop, cut by the ctx of context.WithDeadline`
		return nil
	})
}

func ownSentinel(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil { // want `the error of Collection.InsertOne, cut by the ctx of context.WithTimeout`
			return errFailed
		}
		return nil
	})
}

func formattedWithV(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeoutCause(ctx, time.Second, errFailed)
		defer cancel()
		res, err := coll.DeleteOne(ctx, bson.D{}) // want `the error of Collection.DeleteOne, cut by the ctx of context.WithTimeoutCause`
		if err != nil {
			return fmt.Errorf("delete: %v", err)
		}
		_ = res
		return nil
	})
}

func nilAfterLogging(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithDeadlineCause(ctx, time.Now().Add(time.Second), errFailed)
		defer cancel()
		var doc bson.M
		if err := coll.FindOne(ctx, bson.D{}).Decode(&doc); err != nil { // want `the error of Collection.FindOne, cut by the ctx of context.WithDeadlineCause`
			log.Printf("find: %v", err)
			return nil
		}
		return nil
	})
}

func nilFirst(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := coll.InsertMany(ctx, []bson.D{{}}) // want `the error of Collection.InsertMany`
		if nil != err {
			log.Print(err)
			return errFailed
		}
		return nil
	})
}

func stringOfTheError(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil { // want `the error of Collection.InsertOne`
			return errors.New("insert: " + err.Error())
		}
		return nil
	})
}

func wrappedSomethingElse(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil { // want `the error of Collection.InsertOne`
			return fmt.Errorf("insert (%v): %w", err, errFailed)
		}
		return nil
	})
}

// cancelled derives with WithCancel and hands the cancel to a goroutine,
// which may cut the statement while it runs.
func cancelled(ctx context.Context, stop <-chan struct{}) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			<-stop
			cancel()
		}()
		if _, err := coll.InsertOne(cctx, bson.D{}); err != nil { // want `cut by the ctx of context.WithCancel`
			return errFailed
		}
		return nil
	})
}

func cancelCause(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		cctx, cancel := context.WithCancelCause(ctx)
		context.AfterFunc(ctx, func() { cancel(errFailed) })
		_, err := coll.InsertOne(cctx, bson.D{}) // want `cut by the ctx of context.WithCancelCause`
		if err != nil {
			return nil
		}
		return nil
	})
}

// throughValues: derivations that keep the cut (WithValue, a helper that
// takes and returns a ctx) are followed to it.
func throughValues(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		vctx := context.WithValue(tctx, key{}, 1)
		if _, err := coll.InsertOne(traced(vctx), bson.D{}); err != nil { // want `cut by the ctx of context.WithTimeout`
			return errFailed
		}
		return nil
	})
}

type key struct{}

func traced(ctx context.Context) context.Context { return context.WithValue(ctx, key{}, "span") }

// perStatement: the usual per-statement timeout, in a nested block.
func perStatement(ctx context.Context, docs []bson.D) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		for _, doc := range docs {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := coll.InsertOne(sctx, doc) // want `the error of Collection.InsertOne, cut by the ctx of context.WithTimeout`
			cancel()
			if err != nil {
				return fmt.Errorf("insert %v: %v", doc, err)
			}
		}
		return nil
	})
}

// onSomePath: the ctx is cut on one path; the call before the assignment
// that cuts it is not reported.
func onSomePath(ctx context.Context, slow bool) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return errFailed
		}
		sctx := ctx
		if slow {
			var cancel context.CancelFunc
			sctx, cancel = context.WithTimeout(ctx, time.Second)
			defer cancel()
		}
		if _, err := coll.InsertOne(sctx, bson.D{}); err != nil { // want `cut by the ctx of context.WithTimeout`
			return errFailed
		}
		return nil
	})
}

// reassigned: the callback's own ctx, cut from a statement on; in a loop,
// the cut of an earlier iteration reaches the call.
func reassigned(ctx context.Context, docs []bson.D) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return errFailed
		}
		c := ctx
		for i, doc := range docs {
			if _, err := coll.InsertOne(c, doc); err != nil { // want `cut by the ctx of context.WithTimeout`
				return errFailed
			}
			if i == 0 {
				var cancel context.CancelFunc
				c, cancel = context.WithTimeout(c, time.Second)
				defer cancel()
			}
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil { // want `cut by the ctx of context.WithTimeout`
			return errFailed
		}
		return nil
	})
}

// Every callback of a transaction counts.

func do(ctx context.Context) (int64, error) {
	return tx.Do(ctx, runner, func(ctx context.Context) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		n, err := coll.CountDocuments(ctx, bson.D{}) // want `does not reach the tx.Do callback's return`
		if err != nil {
			return 0, errFailed
		}
		return n, nil
	})
}

var insert = decorator.TransactionalErr1(runner, func(ctx context.Context, doc bson.D) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	coll.InsertOne(ctx, doc) // want `does not reach the decorator.TransactionalErr1 function's return`
	return nil
})

func steps(ctx context.Context, e *batch.Executor) error {
	return e.Execute(ctx,
		batch.Step{Name: "one", Run: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := coll.InsertOne(ctx, bson.D{}); err != nil { // want `does not reach the batch step's return`
				return errFailed
			}
			return nil
		}},
	)
}

func withTransaction(ctx context.Context, sess *mongo.Session) error {
	_, err := sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil { // want `does not reach the Session.WithTransaction callback's return`
			return nil, errFailed
		}
		return nil, nil
	})
	return err
}

func ignored(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		coll.InsertOne(ctx, bson.D{}) //txcheck:ignore shows the bug
		return nil
	})
}
