package masked

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Shapes from txcheck-attack28: valid Go that crashed or stalled the
// check, and cuts it did not follow.

// parenthesized: a parenthesized WithCancel whose cancel a goroutine
// calls (the analyzer panicked on the parentheses).
func parenthesized(ctx context.Context, stop <-chan struct{}) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		cctx, cancel := (context.WithCancel(ctx))
		go func() {
			<-stop
			cancel()
		}()
		coll.InsertOne(cctx, bson.D{}) // want `cut by the ctx of context.WithCancel`
		return nil
	})
}

// declared: a ctx cut in a var declaration.
func declared(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		var sctx, cancel = context.WithTimeout(ctx, time.Second)
		defer cancel()
		coll.InsertOne(sctx, bson.D{}) // want `cut by the ctx of context.WithTimeout`
		return nil
	})
}

// distinct: Distinct's error comes from its result's Decode or Err, as
// FindOne's.
func distinct(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var names []string
		if err := coll.Distinct(ctx, "name", bson.D{}).Decode(&names); err != nil { // want `the error of Collection.Distinct, cut by the ctx of context.WithTimeout`
			return errFailed
		}
		coll.Distinct(ctx, "name", bson.D{}).Err() // want `the error of Collection.Distinct`
		return nil
	})
}

// labeled: a labeled statement is still a statement of the callback.
func labeled(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
	again:
		coll.InsertOne(ctx, bson.D{}) // want `the error of Collection.InsertOne`
		if ctx.Err() == nil {
			goto again
		}
		return nil
	})
}

// detachedThenCut: WithoutCancel drops the cut of the transaction's ctx,
// not the timeout added after it: the timeout can still cut the statement
// after it was sent, and the callback's error is all the runner sees.
func detachedThenCut(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if _, err := coll.InsertOne(sctx, bson.D{}); err != nil { // want `cut by the ctx of context.WithTimeout`
			return errFailed
		}
		return nil
	})
}

// manyReassignments: every case of the switch reaches the call through
// the loop; following each path on its own took time exponential in the
// number of cases (10: 20 s, 16: hours).
func manyReassignments(ctx context.Context, n int) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		for i := range n {
			switch i {
			case 0:
				ctx = context.WithValue(ctx, key{}, i)
			case 1:
				ctx = context.WithValue(ctx, key{}, i)
			case 2:
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Second)
				defer cancel()
			case 3:
				ctx = context.WithValue(ctx, key{}, i)
			case 4:
				ctx = context.WithValue(ctx, key{}, i)
			case 5:
				ctx = context.WithValue(ctx, key{}, i)
			case 6:
				ctx = context.WithValue(ctx, key{}, i)
			case 7:
				ctx = context.WithValue(ctx, key{}, i)
			case 8:
				ctx = context.WithValue(ctx, key{}, i)
			case 9:
				ctx = context.WithValue(ctx, key{}, i)
			case 10:
				ctx = context.WithValue(ctx, key{}, i)
			case 11:
				ctx = context.WithValue(ctx, key{}, i)
			case 12:
				ctx = context.WithValue(ctx, key{}, i)
			case 13:
				ctx = context.WithValue(ctx, key{}, i)
			case 14:
				ctx = context.WithValue(ctx, key{}, i)
			case 15:
				ctx = context.WithValue(ctx, key{}, i)
			}
			coll.InsertOne(ctx, bson.D{}) // want `cut by the ctx of context.WithTimeout`
		}
		return nil
	})
}

// everyReturnDrops: each return of the branch drops the error.
func everyReturnDrops(ctx context.Context, strict bool) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil { // want `the error of Collection.InsertOne`
			if strict {
				return errFailed
			}
			return nil
		}
		return nil
	})
}
