package batch_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/batch"
)

func TestCollect(t *testing.T) {
	t.Run("returns the results in order", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		insert := func(id string) func(context.Context) (string, error) {
			return func(ctx context.Context) (string, error) {
				return id, e.insert(id)(ctx)
			}
		}

		got, err := batch.Collect(ctx, batch.NewExecutor(e.runner), insert("a"), insert("b"), insert("c"))

		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b", "c"}, got)
		assert.ElementsMatch(t, []string{"a", "b", "c"}, e.ids(t))
	})

	t.Run("returns no results and rolls back on failure", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)

		got, err := batch.Collect(ctx, batch.NewExecutor(e.runner),
			func(ctx context.Context) (int, error) { return 1, e.insert("a")(ctx) },
			func(context.Context) (int, error) { return 2, errBusiness },
		)

		assert.Nil(t, got)
		var se *batch.StepError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 1, se.Index)
		assert.ErrorIs(t, err, errBusiness)
		assert.Empty(t, e.ids(t))
	})

	t.Run("returns the results of the attempt that committed", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		testenv.FailTransient(t, e.client, "insert", 1)
		attempt := 0

		got, err := batch.Collect(ctx, batch.NewExecutor(e.runner),
			func(context.Context) (int, error) { attempt++; return attempt, nil }, //txcheck:ignore counts the attempts
			func(ctx context.Context) (int, error) { return attempt * 10, e.insert("a")(ctx) },
		)

		require.NoError(t, err)
		assert.Equal(t, []int{2, 20}, got)
		assert.Len(t, eventsOf(e.rec, tx.EventRetry, "batch_test.TestCollect"), 1)
	})

	t.Run("joins the transaction in ctx", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		var got []int64
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			if err := e.insert("a")(ctx); err != nil {
				return err
			}
			var err error
			got, err = batch.Collect(ctx, batch.NewExecutor(e.runner),
				func(ctx context.Context) (int64, error) {
					return e.coll.CountDocuments(ctx, bson.D{}) // sees the caller's uncommitted write
				})
			return err
		})
		require.NoError(t, err)
		assert.Equal(t, []int64{1}, got)
	})
}
