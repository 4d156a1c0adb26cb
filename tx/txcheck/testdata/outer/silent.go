package outer

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

// Look-alikes: every call here is right, or cannot be proven wrong, and
// must stay silent.

func shadowed(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		_, err := coll.InsertOne(ctx, bson.D{})
		return err
	})
}

func reshadowed(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		ctx = context.WithValue(ctx, key{}, "v")
		_, err := coll.InsertOne(ctx, bson.D{})
		return err
	})
}

func derived(ctx context.Context) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		vctx := context.WithValue(tctx, key{}, 1)
		dctx, cancel := context.WithDeadline(vctx, time.Now().Add(time.Second))
		defer cancel()
		wctx := context.WithoutCancel(dctx)
		if _, err := coll.InsertOne(wctx, bson.D{}); err != nil {
			return err
		}
		_, err := coll.InsertOne(traced(dctx), bson.D{})
		return err
	})
}

// traced stands for a tracer: takes a ctx, returns one derived from it.
func traced(ctx context.Context) context.Context { return context.WithValue(ctx, key{}, "span") }

func helperClosure(ctx context.Context) error {
	insert := func(ctx context.Context, doc bson.D) error {
		_, err := coll.InsertOne(ctx, doc)
		return err
	}
	return runner.Run(ctx, func(tctx context.Context) error {
		one := func(c context.Context) error { return insert(c, bson.D{}) }
		if err := one(tctx); err != nil {
			return err
		}
		return insert(tctx, bson.D{})
	})
}

type service struct{ coll *mongo.Collection }

func (s *service) work(ctx context.Context) error {
	_, err := s.coll.InsertOne(ctx, bson.D{})
	return err
}

func methodValue(ctx context.Context, s *service) error {
	if err := runner.Run(ctx, s.work); err != nil {
		return err
	}
	insert := coll.InsertOne
	return runner.Run(ctx, func(tctx context.Context) error {
		_, err := insert(tctx, bson.D{})
		return err
	})
}

func afterCommit(ctx context.Context) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		tx.AfterCommit(tctx, func(hctx context.Context) {
			// Runs after the commit, outside any transaction: any ctx is right.
			_, _ = coll.InsertOne(context.Background(), bson.D{})
			_, _ = coll.InsertOne(ctx, bson.D{})
		})
		return nil
	})
}

func outsideAnyTransaction(ctx context.Context) error {
	_, err := coll.InsertOne(context.Background(), bson.D{})
	if err != nil {
		return err
	}
	return save(ctx, bson.D{})
}

func joined(ctx context.Context) error {
	return runner.Run(ctx, func(outer context.Context) error {
		// The inner scope joins the outer one's transaction: the outer
		// callback's ctx carries it too.
		return runner.Run(outer, func(inner context.Context) error {
			_, err := coll.InsertOne(outer, bson.D{})
			return err
		})
	})
}

func untraceable(ctx context.Context, h *holder) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		_, err := coll.InsertOne(h.ctx, bson.D{}) // a field: cannot tell
		if err != nil {
			return err
		}
		_, err = coll.InsertOne(h.context(), bson.D{})
		return err
	})
}

type holder struct{ ctx context.Context }

func (h *holder) context() context.Context { return h.ctx }

func beginRight(ctx context.Context) error {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback(ctx)
	if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
		return err
	}
	if err := t.Commit(ctx); err != nil {
		return err
	}
	// After the commit: outside the scope.
	_, err = coll.InsertOne(context.Background(), bson.D{})
	return err
}

func conditionalCtx(ctx context.Context, detached bool) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		c := tctx
		if detached {
			c = context.Background()
		}
		_, err := coll.InsertOne(c, bson.D{}) // one path is right: not proven wrong
		return err
	})
}

func sessionMethods(ctx context.Context, sess *mongo.Session) error {
	_, err := sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		return coll.InsertOne(sctx, bson.D{})
	})
	if err != nil {
		return err
	}
	sess.EndSession(ctx)
	return nil
}

func ignored(ctx context.Context) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		//txcheck:ignore reads what the world outside the transaction sees
		_, err := coll.CountDocuments(context.Background(), bson.D{})
		return err
	})
}

// outerVarGivenCallbackCtx declares the variable outside the callback but
// only ever gives it the callback's ctx (or one derived from it): every
// value it holds at the call is inside the transaction.
func outerVarGivenCallbackCtx(ctx context.Context) error {
	var t2 context.Context
	return runner.Run(ctx, func(tctx context.Context) error {
		t2 = tctx
		if _, err := coll.InsertOne(t2, bson.D{}); err != nil {
			return err
		}
		t2 = context.WithValue(tctx, key{}, 2)
		_, err := coll.InsertOne(t2, bson.D{})
		return err
	})
}

// outerVarMixed is given the outer ctx before the callback and the
// callback's inside it: which one it holds at the call depends on order,
// which txcheck does not follow, so it cannot be proven wrong.
func outerVarMixed(ctx context.Context) error {
	t2 := ctx
	return runner.Run(ctx, func(tctx context.Context) error {
		t2 = tctx
		_, err := coll.InsertOne(t2, bson.D{})
		return err
	})
}
