// Package outer holds the outer-ctx check's cases: each "want" comment is a true
// positive, every other call must stay silent.
package outer

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/batch"
	"github.com/txkit/txkit/tx/decorator"
)

var (
	runner *tx.Runner
	client *mongo.Client
	coll   *mongo.Collection
	appCtx = context.Background()
)

type key struct{}

func background(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		_, err := coll.InsertOne(context.Background(), bson.D{}) // want `Collection.InsertOne runs outside the transaction: ctx context.Background\(\) is not the Runner.Run callback's ctx`
		return err
	})
}

func todo(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		return coll.FindOne(context.TODO(), bson.D{}).Err() // want `Collection.FindOne runs outside the transaction`
	})
}

func outerCtx(parent context.Context) error {
	return runner.Run(parent, func(ctx context.Context) error {
		_, err := coll.UpdateOne(parent, bson.D{}, bson.D{}) // want `Collection.UpdateOne runs outside the transaction: ctx parent`
		return err
	})
}

func packageCtx(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		_, err := coll.DeleteOne(appCtx, bson.D{}) // want `Collection.DeleteOne runs outside the transaction: ctx appCtx`
		return err
	})
}

func unnamedParam(ctx context.Context) error {
	return runner.Run(ctx, func(context.Context) error {
		_, err := coll.InsertOne(ctx, bson.D{}) // want `is not the Runner.Run callback's ctx; name the callback's ctx parameter and pass it`
		return err
	})
}

func derivedFromOuter(ctx context.Context) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := coll.InsertOne(c, bson.D{}) // want `Collection.InsertOne runs outside the transaction: ctx c`
		return err
	})
}

func outerDerivedBefore(ctx context.Context) error {
	vctx := context.WithValue(ctx, key{}, 1)
	return runner.Run(ctx, func(tctx context.Context) error {
		_, err := coll.InsertOne(vctx, bson.D{}) // want `ctx vctx is not the Runner.Run callback's ctx`
		return err
	})
}

func doCallback(ctx context.Context) (int64, error) {
	return tx.Do(ctx, runner, func(ctx context.Context) (int64, error) {
		return coll.CountDocuments(context.Background(), bson.D{}) // want `Collection.CountDocuments runs outside the transaction: ctx context.Background\(\) is not the tx.Do callback's ctx`
	})
}

var insert = decorator.TransactionalErr1(runner, func(ctx context.Context, doc bson.D) error {
	_, err := coll.InsertOne(context.TODO(), doc) // want `is not the decorator.TransactionalErr1 function's ctx`
	return err
})

func steps(ctx context.Context, e *batch.Executor) error {
	return e.Execute(ctx,
		batch.Step{Name: "one", Run: func(ctx context.Context) error {
			_, err := coll.InsertOne(context.Background(), bson.D{}) // want `is not the batch step's ctx`
			return err
		}},
		batch.Step{Name: "two", Run: func(c context.Context) error {
			_, err := coll.InsertOne(ctx, bson.D{}) // want `ctx ctx is not the batch step's ctx`
			return err
		}},
	)
}

func collect(ctx context.Context, e *batch.Executor) ([]int64, error) {
	return batch.Collect(ctx, e, func(c context.Context) (int64, error) {
		return coll.CountDocuments(ctx, bson.D{}) // want `is not the batch step's ctx`
	})
}

func withTransaction(ctx context.Context, sess *mongo.Session) error {
	_, err := sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		return coll.InsertOne(ctx, bson.D{}) // want `is not the Session.WithTransaction callback's ctx`
	})
	return err
}

func withSession(ctx context.Context, sess *mongo.Session) error {
	return mongo.WithSession(ctx, sess, func(sctx context.Context) error {
		cur, err := coll.Find(ctx, bson.D{}) // want `Collection.Find runs outside the session: ctx ctx is not the mongo.WithSession callback's ctx`
		if err != nil {
			return err
		}
		return cur.All(ctx, nil) // want `Cursor.All runs outside`
	})
}

func useSession(ctx context.Context) error {
	return client.UseSession(ctx, func(sctx context.Context) error {
		return client.Database("db").Drop(ctx) // want `Database.Drop runs outside`
	})
}

func indexes(ctx context.Context) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{}}) // want `IndexView.CreateOne runs outside`
		return err
	})
}

// save passes its ctx to the database: calling it with the outer ctx is the
// same bug, one call away.
func save(ctx context.Context, doc bson.D) error {
	_, err := coll.InsertOne(ctx, doc)
	return err
}

// store reaches the database two calls away.
func store(ctx context.Context, doc bson.D) error { return save(ctx, doc) }

type repo struct{ coll *mongo.Collection }

func (r *repo) put(ctx context.Context, doc bson.D) error {
	_, err := r.coll.InsertOne(ctx, doc)
	return err
}

func throughFunctions(ctx context.Context, r *repo) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		if err := save(ctx, bson.D{}); err != nil { // want `save \(it passes its ctx to Collection.InsertOne\) runs outside the transaction`
			return err
		}
		if err := store(context.Background(), bson.D{}); err != nil { // want `store \(it passes its ctx to Collection.InsertOne\) runs outside`
			return err
		}
		return r.put(ctx, bson.D{}) // want `repo.put \(it passes its ctx to Collection.InsertOne\) runs outside`
	})
}

func nestedScopeOutside(ctx context.Context) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		tx.AfterCommit(ctx, func(context.Context) {})                                       // want `tx.AfterCommit runs outside the transaction`
		return runner.Run(context.Background(), func(context.Context) error { return nil }) // want `tx.Runner.Run runs outside the transaction`
	})
}

func begin(ctx context.Context) error {
	tctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback(tctx)
	if _, err := coll.InsertOne(ctx, bson.D{}); err != nil { // want `Collection.InsertOne runs outside the transaction: ctx ctx is not the ctx Runner.Begin returned`
		return err
	}
	return t.Commit(tctx)
}

func callbackVariable(ctx context.Context) error {
	work := func(tctx context.Context) error {
		_, err := coll.InsertOne(ctx, bson.D{}) // want `is not the Runner.Run callback's ctx`
		return err
	}
	return runner.Run(ctx, work)
}

// outerVarOnlyOuter is declared outside the callback and only ever given
// the outer ctx: reported, as the outer ctx itself is.
func outerVarOnlyOuter(ctx context.Context) error {
	var t2 context.Context
	t2 = ctx
	return runner.Run(ctx, func(tctx context.Context) error {
		_, err := coll.InsertOne(t2, bson.D{}) // want `Collection.InsertOne runs outside the transaction`
		return err
	})
}
