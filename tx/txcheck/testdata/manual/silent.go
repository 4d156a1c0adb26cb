package manual

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/tx"
)

// Manual scopes ended on every path.

func deferred(ctx context.Context) error {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback(ctx) // a no-op after Commit
	if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
		return err
	}
	return t.Commit(ctx)
}

func deferredLiteral(ctx context.Context) (err error) {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = t.Rollback(ctx)
		}
	}()
	_, err = coll.InsertOne(ctx, bson.D{})
	if err != nil {
		return err
	}
	return t.Commit(ctx)
}

func everyPath(ctx context.Context) error {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
		_ = t.Rollback(ctx)
		return err
	}
	if err := t.Commit(ctx); err != nil {
		return err
	}
	return nil
}

func nilCheck(ctx context.Context) error {
	ctx, t, err := runner.Begin(ctx)
	if t == nil {
		return err
	}
	return t.Commit(ctx)
}

func panics(ctx context.Context) error {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		panic(err)
	}
	return t.Commit(ctx)
}

func handedOver(ctx context.Context) (*tx.Tx, error) {
	_, t, err := runner.Begin(ctx)
	return t, err // the caller ends it: cannot tell
}

func probe(ctx context.Context) error {
	_, _, err := runner.Begin(ctx, tx.WithPropagation(tx.Mandatory)) // called for its error only
	return err
}

func inTest(t *testing.T, ctx context.Context) {
	ctx, scope, err := runner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := scope.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func checkedCommit(ctx context.Context) error {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback(ctx)
	err = t.Commit(ctx)
	return err
}

func blankCommit(ctx context.Context) {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return
	}
	defer t.Rollback(ctx)
	_ = t.Commit(ctx) // discarded on purpose: a decision, not an oversight
}
