// Package manual holds the manual-scope check's cases.
package manual

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

var (
	runner *tx.Runner
	coll   *mongo.Collection
)

func leakOnError(ctx context.Context) error {
	ctx, t, err := runner.Begin(ctx) // want `the scope t of Runner.Begin is not ended on every path`
	if err != nil {
		return err
	}
	if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
		return err // leaves the transaction open
	}
	return t.Commit(ctx)
}

func leakOnBranch(ctx context.Context, ok bool) error {
	ctx, t, err := runner.Begin(ctx) // want `not ended on every path`
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("refused")
	}
	return t.Commit(ctx)
}

func discarded(ctx context.Context) error {
	ctx, _, err := runner.Begin(ctx) // want `the \*tx.Tx of Runner.Begin is discarded`
	if err != nil {
		return err
	}
	_, err = coll.InsertOne(ctx, bson.D{})
	return err
}

func ignoredCommit(ctx context.Context) {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return
	}
	defer t.Rollback(ctx)
	t.Commit(ctx) // want `the error of Tx.Commit is ignored`
}

func deferredCommit(ctx context.Context) error {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Commit(ctx) // want `the error of deferred Tx.Commit is ignored`
	_, err = coll.InsertOne(ctx, bson.D{})
	return err
}

func sessionCommit(ctx context.Context, sess *mongo.Session) {
	sess.CommitTransaction(ctx) // want `the error of Session.CommitTransaction is ignored`
}
