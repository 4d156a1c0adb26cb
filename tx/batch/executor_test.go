package batch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/batch"
)

var errBusiness = errors.New("insufficient credits")

func TestExecuteCommitsAllSteps(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	var sessions []*mongo.Session
	record := func(ctx context.Context) error {
		require.True(t, tx.InTransaction(ctx), "the step runs in a transaction")
		sessions = append(sessions, mongo.SessionFromContext(ctx)) //txcheck:ignore records every attempt
		return nil
	}

	err := batch.NewExecutor(e.runner).Execute(ctx,
		batch.Step{Name: "a", Run: e.insert("a")},
		batch.Step{Name: "record", Run: record},
		batch.Step{Name: "b", Run: e.insert("b")},
		batch.Step{Name: "record again", Run: record},
	)

	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"a", "b"}, e.ids(t))
	require.Len(t, sessions, 2)
	assert.Same(t, sessions[0], sessions[1], "every step shares one session")
	assert.Len(t, eventsOf(e.rec, tx.EventCommit, "batch_test.TestExecuteCommitsAllSteps"), 1,
		"one transaction, named after the caller of Execute")
}

func TestExecuteRollsBackEverythingOnFailure(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	ran := false

	err := batch.NewExecutor(e.runner).Execute(ctx,
		batch.Step{Name: "a", Run: e.insert("a")},
		batch.Step{Name: "b", Run: e.insert("b")},
		batch.Step{Name: "check", Run: func(context.Context) error { return errBusiness }},
		batch.Step{Name: "never", Run: func(context.Context) error { ran = true; return nil }},
	)

	var se *batch.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 2, se.Index)
	assert.Equal(t, "check", se.Name)
	assert.ErrorIs(t, err, errBusiness, "the step's error is unwrapped")
	assert.EqualError(t, err, "batch step 2 (check): insufficient credits")
	assert.False(t, ran, "no step runs after a failure")
	assert.Empty(t, e.ids(t), "the steps before the failure were rolled back")
	assert.Len(t, eventsOf(e.rec, tx.EventAbort, "batch_test.TestExecuteRollsBackEverythingOnFailure"), 1)
}

func TestExecuteRollsBackOnServerError(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	require.NoError(t, e.insert("dup")(ctx))

	err := batch.NewExecutor(e.runner).Execute(ctx,
		batch.Step{Name: "a", Run: e.insert("a")},
		batch.Step{Name: "duplicate", Run: e.insert("dup")},
	)

	var se *batch.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 1, se.Index)
	assert.True(t, mongo.IsDuplicateKeyError(err), "the driver's error is unwrapped: %v", err)
	assert.Equal(t, []string{"dup"}, e.ids(t), "step a was rolled back")
}

func TestExecuteJoinsTheTransactionInContext(t *testing.T) {
	t.Run("and commits with it", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		exec := batch.NewExecutor(e.runner)

		err := e.runner.Run(ctx, func(ctx context.Context) error {
			outer := mongo.SessionFromContext(ctx)
			if err := e.insert("outer")(ctx); err != nil {
				return err
			}
			return exec.Execute(ctx, batch.Step{Name: "inner", Run: func(ctx context.Context) error {
				assert.Same(t, outer, mongo.SessionFromContext(ctx), "the batch uses the caller's session")
				return e.insert("inner")(ctx)
			}})
		}, tx.WithName("outer"))

		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"outer", "inner"}, e.ids(t))
		assert.Len(t, eventsOf(e.rec, tx.EventCommit, "outer"), 1)
		var got []string
		for _, ev := range e.rec.Events() {
			got = append(got, ev.Kind.String()+" "+ev.Name)
		}
		batchName := "batch_test.TestExecuteJoinsTheTransactionInContext"
		assert.Equal(t, []string{
			"begin outer",
			"begin " + batchName, "begin step 0 inner", "end step 0 inner", "end " + batchName,
			"commit outer",
		}, got, "the batch and its step joined the caller's transaction")
	})

	t.Run("and is rolled back when the caller fails afterwards", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		exec := batch.NewExecutor(e.runner)

		err := e.runner.Run(ctx, func(ctx context.Context) error {
			if err := exec.Execute(ctx, batch.Step{Name: "inner", Run: e.insert("inner")}); err != nil {
				return err
			}
			return errBusiness
		})

		require.ErrorIs(t, err, errBusiness)
		assert.Empty(t, e.ids(t), "the batch's writes were part of the caller's transaction")
	})

	t.Run("and a failed step dooms the caller's transaction", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		exec := batch.NewExecutor(e.runner)

		err := e.runner.Run(ctx, func(ctx context.Context) error {
			if err := e.insert("outer")(ctx); err != nil {
				return err
			}
			err := exec.Execute(ctx, batch.Step{Name: "fail", Run: func(context.Context) error { return errBusiness }})
			assert.ErrorIs(t, err, errBusiness)
			return nil // swallowing the error cannot commit half of the work
		})

		require.ErrorIs(t, err, tx.ErrUnexpectedRollback)
		assert.ErrorIs(t, err, errBusiness)
		assert.Empty(t, e.ids(t))
	})
}

func TestExecuteRetriesTheWholeBatch(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	testenv.FailTransient(t, e.client, "update", 1)
	var runs [3]int

	err := batch.NewExecutor(e.runner).Execute(ctx,
		batch.Step{Name: "insert", Run: func(ctx context.Context) error {
			runs[0]++ //txcheck:ignore counts the attempts
			return e.insert("a")(ctx)
		}},
		batch.Step{Name: "update", Run: func(ctx context.Context) error {
			runs[1]++ //txcheck:ignore counts the attempts
			_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
			return err
		}},
		batch.Step{Name: "last", Run: func(ctx context.Context) error {
			runs[2]++ //txcheck:ignore counts the attempts
			return nil
		}},
	)

	require.NoError(t, err)
	assert.Equal(t, [3]int{2, 2, 1}, runs, "the retry re-ran the batch from its first step")
	var got bson.M
	require.NoError(t, e.coll.FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got))
	assert.EqualValues(t, 1, got["n"], "the first attempt left nothing behind")
	name := "batch_test.TestExecuteRetriesTheWholeBatch"
	assert.Len(t, eventsOf(e.rec, tx.EventRetry, name), 1)
	assert.Len(t, eventsOf(e.rec, tx.EventCommit, name), 1)
}

func TestExecuteHonoursOptions(t *testing.T) {
	t.Run("WithName names the transaction", func(t *testing.T) {
		e := newEnv(t)
		err := batch.NewExecutor(e.runner, tx.WithName("refund")).Execute(ctxTimeout(t), batch.Step{Name: "a", Run: e.insert("a")})
		require.NoError(t, err)
		assert.Len(t, eventsOf(e.rec, tx.EventCommit, "refund"), 1)
	})

	t.Run("RequiresNew commits apart from the caller's transaction", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		audit := batch.NewExecutor(e.runner, tx.WithPropagation(tx.RequiresNew))

		err := e.runner.Run(ctx, func(ctx context.Context) error {
			if err := e.insert("outer")(ctx); err != nil {
				return err
			}
			if err := audit.Execute(ctx, batch.Step{Name: "audit", Run: e.insert("audit")}); err != nil {
				return err
			}
			return errBusiness
		})

		require.ErrorIs(t, err, errBusiness)
		assert.Equal(t, []string{"audit"}, e.ids(t), "the batch committed; the caller's write did not")
	})

	t.Run("Mandatory refuses to run without a transaction", func(t *testing.T) {
		e := newEnv(t)
		ran := false
		err := batch.NewExecutor(e.runner, tx.WithPropagation(tx.Mandatory)).Execute(ctxTimeout(t),
			batch.Step{Name: "a", Run: func(context.Context) error { ran = true; return nil }})
		require.ErrorIs(t, err, tx.ErrNoTransaction)
		assert.False(t, ran)
	})

	t.Run("NotSupported runs the steps without a transaction", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		err := batch.NewExecutor(e.runner, tx.WithPropagation(tx.NotSupported)).Execute(ctx,
			batch.Step{Name: "a", Run: e.insert("a")},
			batch.Step{Name: "check", Run: func(ctx context.Context) error {
				assert.False(t, tx.InTransaction(ctx))
				return errBusiness
			}})
		require.ErrorIs(t, err, errBusiness)
		assert.Equal(t, []string{"a"}, e.ids(t), "without a transaction nothing is rolled back")
	})

	t.Run("WithMaxAttempts bounds the retries", func(t *testing.T) {
		e := newEnv(t)
		testenv.FailTransient(t, e.client, "insert", 2)
		runs := 0
		err := batch.NewExecutor(e.runner, tx.WithMaxAttempts(2)).Execute(ctxTimeout(t),
			batch.Step{Name: "a", Run: func(ctx context.Context) error { runs++; return e.insert("a")(ctx) }}) //txcheck:ignore counts the attempts
		require.ErrorIs(t, err, tx.ErrRetriesExhausted)
		var se *batch.StepError
		require.ErrorAs(t, err, &se, "the last attempt's step error is kept")
		assert.Equal(t, "a", se.Name)
		assert.Equal(t, 2, runs)
		assert.Empty(t, e.ids(t))
	})

	t.Run("WithTimeout bounds the whole batch", func(t *testing.T) {
		e := newEnv(t)
		var deadline time.Time
		err := batch.NewExecutor(e.runner, tx.WithTimeout(time.Minute)).Execute(context.Background(),
			batch.Step{Name: "a", Run: func(ctx context.Context) error {
				deadline, _ = ctx.Deadline()
				return nil
			}})
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now().Add(time.Minute), deadline, 5*time.Second)
	})
}

func TestExecuteReportsEachStep(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	err := batch.NewExecutor(e.runner, tx.WithName("refund")).Execute(ctx,
		batch.Step{Name: "credit", Run: e.insert("a")},
		batch.Step{Name: "log", Run: func(context.Context) error { return errBusiness }},
	)
	require.ErrorIs(t, err, errBusiness)

	var names []string
	for _, ev := range e.rec.Events() {
		names = append(names, ev.Kind.String()+" "+ev.Name)
	}
	assert.Equal(t, []string{
		"begin refund",
		"begin step 0 credit", "end step 0 credit",
		"begin step 1 log", "rollback-only step 1 log",
		"abort refund",
	}, names)
	end := eventsOf(e.rec, tx.EventEnd, "step 0 credit")[0]
	assert.Positive(t, end.Duration, "the step's duration is reported")
	assert.True(t, end.Joined && end.Transactional, "the step joined the batch's transaction")
	failed := eventsOf(e.rec, tx.EventRollbackOnly, "step 1 log")[0]
	assert.ErrorIs(t, failed.Err, errBusiness)
}

func TestExecuteNamesStepsAfterTheirFunction(t *testing.T) {
	e := newEnv(t)
	err := batch.NewExecutor(e.runner).Execute(ctxTimeout(t), batch.Step{Run: failingStep})
	var se *batch.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "batch_test.failingStep", se.Name)
}

func failingStep(context.Context) error { return errBusiness }

func TestExecuteRefusesAStepWithoutFunction(t *testing.T) {
	e := newEnv(t)
	ran := false
	err := batch.NewExecutor(e.runner).Execute(ctxTimeout(t),
		batch.Step{Name: "a", Run: func(context.Context) error { ran = true; return nil }},
		batch.Step{Name: "b"},
	)
	var se *batch.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 1, se.Index)
	assert.False(t, ran, "nothing runs when the batch is malformed")
	assert.Empty(t, e.rec.Events(), "no transaction was started")
}

func TestExecuteWithoutStepsDoesNothing(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, batch.NewExecutor(e.runner).Execute(ctxTimeout(t)))
	assert.Empty(t, e.rec.Events())
}

func TestExecuteStopsBetweenStepsWhenCtxIsDone(t *testing.T) {
	// The second step would write outside the transaction, where a
	// rollback could not undo it: only a step that never runs leaves
	// nothing behind.
	outside := func(e *env) func(context.Context) error {
		return func(context.Context) error {
			_, err := e.coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: "outside"}})
			return err
		}
	}

	t.Run("in its own transaction", func(t *testing.T) {
		e := newEnv(t)
		ctx, cancel := context.WithCancel(ctxTimeout(t))
		defer cancel()

		err := batch.NewExecutor(e.runner).Execute(ctx,
			batch.Step{Name: "first", Run: func(ctx context.Context) error {
				if err := e.insert("a")(ctx); err != nil {
					return err
				}
				cancel() // the caller gives up while the step runs
				return nil
			}},
			batch.Step{Name: "second", Run: outside(e)},
			batch.Step{Name: "third", Run: outside(e)},
		)

		var se *batch.StoppedError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 1, se.Index, "the first step that did not run")
		assert.Equal(t, "second", se.Name)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, e.ids(t), "the second step did not run, the first was rolled back")
	})

	t.Run("when its deadline passes", func(t *testing.T) {
		e := newEnv(t)
		err := batch.NewExecutor(e.runner, tx.WithTimeout(time.Second)).Execute(ctxTimeout(t),
			batch.Step{Name: "slow", Run: func(ctx context.Context) error {
				<-ctx.Done() // outlives the batch's timeout
				return nil
			}},
			batch.Step{Name: "next", Run: outside(e)},
		)

		var se *batch.StoppedError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "next", se.Name)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Empty(t, e.ids(t))
	})

	t.Run("without a transaction, what ran stays", func(t *testing.T) {
		e := newEnv(t)
		ctx, cancel := context.WithCancel(ctxTimeout(t))
		defer cancel()

		err := batch.NewExecutor(e.runner, tx.WithPropagation(tx.NotSupported)).Execute(ctx,
			batch.Step{Name: "first", Run: func(ctx context.Context) error {
				cancel()
				return e.insert("a")(context.WithoutCancel(ctx))
			}},
			batch.Step{Name: "second", Run: outside(e)},
		)

		var se *batch.StoppedError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 1, se.Index)
		assert.Equal(t, []string{"a"}, e.ids(t), "no transaction: the first step's write stays, the second never ran")
	})

	t.Run("in Collect", func(t *testing.T) {
		e := newEnv(t)
		ctx, cancel := context.WithCancel(ctxTimeout(t))
		defer cancel()

		got, err := batch.Collect(ctx, batch.NewExecutor(e.runner),
			func(ctx context.Context) (int, error) {
				err := e.insert("a")(ctx)
				cancel()
				return 1, err
			},
			func(ctx context.Context) (int, error) { return 2, outside(e)(ctx) },
		)

		var se *batch.StoppedError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 1, se.Index)
		assert.Nil(t, got)
		assert.Empty(t, e.ids(t))
	})
}

func TestExecuteWithOwnerOnlyOptionsJoinsWhenNested(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	exec := batch.NewExecutor(e.runner, tx.WithMaxAttempts(2), tx.WithTimeout(time.Minute))

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if err := e.insert("outer")(ctx); err != nil {
			return err
		}
		return exec.Execute(ctx, batch.Step{Name: "inner", Run: e.insert("inner")})
	}, tx.WithName("outer"))

	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"outer", "inner"}, e.ids(t))
	assert.Len(t, eventsOf(e.rec, tx.EventCommit, "outer"), 1)
	assert.Len(t, e.rec.Of(tx.EventCommit), 1, "one commit: the batch joined")

	t.Run("and all of it rolls back together", func(t *testing.T) {
		e := newEnv(t)
		exec := batch.NewExecutor(e.runner, tx.WithMaxAttempts(2))

		err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			if err := e.insert("outer")(ctx); err != nil {
				return err
			}
			return exec.Execute(ctx,
				batch.Step{Name: "inner", Run: e.insert("inner")},
				batch.Step{Name: "fail", Run: func(context.Context) error { return errBusiness }})
		})

		require.ErrorIs(t, err, errBusiness)
		assert.Empty(t, e.ids(t))
	})
}
