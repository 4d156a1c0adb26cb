// Package docs holds the wrong and right examples of docs/txcheck.md: the
// guide shows excerpts of this file, and the analyzer's test checks that
// txcheck reports each wrong one (the "want" comments) and none of the
// right ones.
package docs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

var (
	errNoFunds     = errors.New("insufficient funds")
	errOrderFailed = errors.New("order not placed")
)

func debitWrong(ctx context.Context, runner *tx.Runner, accounts *mongo.Collection) error {
	return runner.Run(ctx, func(txCtx context.Context) error {
		res, err := accounts.UpdateOne(ctx, // want `Collection.UpdateOne runs outside the transaction`
			bson.D{{Key: "_id", Value: "alice"}, {Key: "balance", Value: bson.D{{Key: "$gte", Value: 10}}}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -10}}}})
		if err != nil {
			return err
		}
		if res.ModifiedCount == 0 {
			return errNoFunds
		}
		return nil
	})
}

func debitRight(ctx context.Context, runner *tx.Runner, accounts *mongo.Collection) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		res, err := accounts.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: "alice"}, {Key: "balance", Value: bson.D{{Key: "$gte", Value: 10}}}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -10}}}})
		if err != nil {
			return err
		}
		if res.ModifiedCount == 0 {
			return errNoFunds
		}
		return nil
	})
}

func notifyWrong(ctx context.Context, runner *tx.Runner, orders *mongo.Collection, events chan<- string) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
			return err
		}
		events <- "order o1 placed" // want `send on channel events in a re-runnable Runner.Run callback`
		return nil
	})
}

func notifyRight(ctx context.Context, runner *tx.Runner, orders *mongo.Collection, events chan<- string) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
			return err
		}
		tx.AfterCommit(ctx, func(context.Context) { events <- "order o1 placed" })
		return nil
	})
}

func placeWrong(ctx context.Context, runner *tx.Runner, orders *mongo.Collection) error {
	ctx, t, err := runner.Begin(ctx) // want `the scope t of Runner.Begin is not ended on every path`
	if err != nil {
		return err
	}
	if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
		return err // the transaction stays open
	}
	t.Commit(ctx) // want `the error of Tx.Commit is ignored`
	return nil
}

func placeRight(ctx context.Context, runner *tx.Runner, orders *mongo.Collection) error {
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback(ctx) // a no-op once Commit ran
	if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
		return err
	}
	return t.Commit(ctx)
}

func placeTimedWrong(ctx context.Context, runner *tx.Runner, orders *mongo.Collection) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil { // want `the error of Collection.InsertOne, cut by the ctx of context.WithTimeout, does not reach the Runner.Run callback's return`
			return errOrderFailed // the runner cannot tell that ctx cut the insert
		}
		return nil
	})
}

func placeTimedRight(ctx context.Context, runner *tx.Runner, orders *mongo.Collection) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
			return fmt.Errorf("%w: %w", errOrderFailed, err)
		}
		return nil
	})
}
