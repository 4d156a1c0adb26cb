// Package use calls the look-alike tx and mongo packages with every
// mistake txcheck knows: none is reported, since they are not txkit's or
// the driver's.
package use

import (
	"context"

	"txcheckdata/lookalike/mongo"
	"txcheckdata/lookalike/tx"
)

func Use(ctx context.Context, r *tx.Runner, coll *mongo.Collection, sess *mongo.Session) error {
	n := 0
	err := r.Run(ctx, func(tctx context.Context) error {
		n++
		_, err := coll.InsertOne(context.Background(), nil)
		return err
	})
	if err != nil {
		return err
	}
	_, err = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		n++
		return coll.InsertOne(ctx, nil)
	})
	if err != nil {
		return err
	}
	_, t, _ := r.Begin(ctx)
	t.Commit(ctx)
	_, _, _ = r.Begin(ctx)
	return nil
}
