package decorator_test

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
	"github.com/txkit/txkit/tx/decorator"
)

var errBusiness = errors.New("insufficient credits")

// repo is a plain repository: its methods know nothing of transactions.
type repo struct{ coll *mongo.Collection }

// insertTwo writes two documents that must commit together; it fails
// after the first one if fail is set.
func (r *repo) insertTwo(ctx context.Context, id string, fail bool) (int, error) {
	if _, err := r.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id + "-1"}}); err != nil {
		return 0, err
	}
	if fail {
		return 0, errBusiness
	}
	if _, err := r.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id + "-2"}}); err != nil {
		return 0, err
	}
	return 2, nil
}

func TestTransactionalShapes(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	insert := func(ctx context.Context, ids ...string) error {
		if !tx.InTransaction(ctx) {
			return errors.New("not in a transaction")
		}
		for _, id := range ids {
			if _, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
				return err
			}
		}
		return nil
	}
	r := e.runner

	tests := []struct {
		name string
		call func() (any, error)
		want any
		ids  []string
	}{
		{"Transactional", func() (any, error) {
			return decorator.Transactional(r, func(ctx context.Context) (int, error) { return 0, insert(ctx, "0") })(ctx)
		}, 0, []string{"0"}},
		{"Transactional1", func() (any, error) {
			return decorator.Transactional1(r, func(ctx context.Context, a string) (string, error) { return a, insert(ctx, a) })(ctx, "1a")
		}, "1a", []string{"1a"}},
		{"Transactional2", func() (any, error) {
			return decorator.Transactional2(r, func(ctx context.Context, a, b string) (string, error) { return a + b, insert(ctx, a, b) })(ctx, "2a", "2b")
		}, "2a2b", []string{"2a", "2b"}},
		{"Transactional3", func() (any, error) {
			return decorator.Transactional3(r, func(ctx context.Context, a, b string, c int) (int, error) { return c, insert(ctx, a, b) })(ctx, "3a", "3b", 3)
		}, 3, []string{"3a", "3b"}},
		{"TransactionalErr", func() (any, error) {
			return nil, decorator.TransactionalErr(r, func(ctx context.Context) error { return insert(ctx, "e0") })(ctx)
		}, nil, []string{"e0"}},
		{"TransactionalErr1", func() (any, error) {
			return nil, decorator.TransactionalErr1(r, func(ctx context.Context, a string) error { return insert(ctx, a) })(ctx, "e1")
		}, nil, []string{"e1"}},
		{"TransactionalErr2", func() (any, error) {
			return nil, decorator.TransactionalErr2(r, func(ctx context.Context, a, b string) error { return insert(ctx, a, b) })(ctx, "e2a", "e2b")
		}, nil, []string{"e2a", "e2b"}},
		{"TransactionalErr3", func() (any, error) {
			return nil, decorator.TransactionalErr3(r, func(ctx context.Context, a, b, c string) error { return insert(ctx, a, b, c) })(ctx, "e3a", "e3b", "e3c")
		}, nil, []string{"e3a", "e3b", "e3c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" passes arguments and results through in a transaction", func(t *testing.T) {
			got, err := tt.call()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			for _, id := range tt.ids {
				assert.NoError(t, e.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err(), "document %s committed", id)
			}
		})
	}
}

func TestTransactionalCommitsAndRollsBack(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	insertTwo := decorator.Transactional2(e.runner, (&repo{coll: e.coll}).insertTwo)

	n, err := insertTwo(ctx, "ok", false)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.EqualValues(t, 2, count(t, e.coll), "both writes committed")

	n, err = insertTwo(ctx, "bad", true)
	require.ErrorIs(t, err, errBusiness)
	assert.Zero(t, n)
	assert.EqualValues(t, 2, count(t, e.coll), "the first write of the failed call was rolled back")
	assert.Equal(t, []string{
		"begin decorator_test.(*repo).insertTwo", "commit decorator_test.(*repo).insertTwo",
		"begin decorator_test.(*repo).insertTwo", "abort decorator_test.(*repo).insertTwo",
	}, names(e.rec), "the transaction is named after the wrapped method")
}

func TestTransactionalJoinsTheTransactionInContext(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	insertTwo := decorator.Transactional2(e.runner, (&repo{coll: e.coll}).insertTwo)

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := insertTwo(ctx, "inner", false); err != nil {
			return err
		}
		return errBusiness
	}, tx.WithName("outer"))

	require.ErrorIs(t, err, errBusiness)
	assert.Zero(t, count(t, e.coll), "the decorated call's writes went with the caller's rollback")
	assert.Equal(t, []string{
		"begin outer",
		"begin decorator_test.(*repo).insertTwo", "end decorator_test.(*repo).insertTwo",
		"abort outer",
	}, names(e.rec))
}

func TestTransactionalRetriesTheWholeFunction(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	testenv.FailTransient(t, e.client, "insert", 1)
	calls := 0
	r := &repo{coll: e.coll}
	insertTwo := decorator.Transactional2(e.runner, func(ctx context.Context, id string, fail bool) (int, error) {
		calls++ //txcheck:ignore counts the attempts
		return r.insertTwo(ctx, id, fail)
	})

	n, err := insertTwo(ctx, "a", false)

	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, 2, calls, "the function ran again after the transient error")
	assert.EqualValues(t, 2, count(t, e.coll), "written once")
}

func TestTransactionalHonoursOptions(t *testing.T) {
	t.Run("WithName overrides the function's name", func(t *testing.T) {
		e := newEnv(t)
		fn := decorator.TransactionalErr(e.runner, func(context.Context) error { return nil }, tx.WithName("named"))
		require.NoError(t, fn(ctxTimeout(t)))
		assert.Equal(t, []string{"begin named", "commit named"}, names(e.rec))
	})

	t.Run("RequiresNew commits apart from the caller", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		audit := decorator.TransactionalErr1(e.runner, func(ctx context.Context, id string) error {
			_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}})
			return err
		}, tx.WithPropagation(tx.RequiresNew))

		err := e.runner.Run(ctx, func(ctx context.Context) error {
			if err := audit(ctx, "audit"); err != nil {
				return err
			}
			_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "outer"}})
			require.NoError(t, err)
			return errBusiness
		})

		require.ErrorIs(t, err, errBusiness)
		assert.EqualValues(t, 1, count(t, e.coll), "the audit committed, the caller's write did not")
		assert.NoError(t, e.coll.FindOne(ctx, bson.D{{Key: "_id", Value: "audit"}}).Err())
	})

	t.Run("Mandatory refuses to run without a transaction", func(t *testing.T) {
		e := newEnv(t)
		ran := false
		fn := decorator.TransactionalErr(e.runner, func(context.Context) error { ran = true; return nil }, tx.WithPropagation(tx.Mandatory))
		require.ErrorIs(t, fn(ctxTimeout(t)), tx.ErrNoTransaction)
		assert.False(t, ran)
	})

	t.Run("WithTimeout puts a deadline on the call", func(t *testing.T) {
		e := newEnv(t)
		fn := decorator.Transactional(e.runner, func(ctx context.Context) (time.Time, error) {
			d, _ := ctx.Deadline()
			return d, nil
		}, tx.WithTimeout(time.Minute))
		deadline, err := fn(context.Background())
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now().Add(time.Minute), deadline, 5*time.Second)
	})

	t.Run("WithMaxAttempts bounds the retries", func(t *testing.T) {
		e := newEnv(t)
		testenv.FailTransient(t, e.client, "insert", 2)
		calls := 0
		fn := decorator.TransactionalErr(e.runner, func(ctx context.Context) error {
			calls++ //txcheck:ignore counts the attempts
			_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}})
			return err
		}, tx.WithMaxAttempts(2))
		require.ErrorIs(t, fn(ctxTimeout(t)), tx.ErrRetriesExhausted)
		assert.Equal(t, 2, calls)
		assert.Zero(t, count(t, e.coll))
	})
}

func TestTransactionalPanicsOnNilFunction(t *testing.T) {
	assert.PanicsWithValue(t, "decorator: nil function", func() {
		decorator.Transactional[int](nil, nil)
	})
	assert.PanicsWithValue(t, "decorator: nil function", func() {
		decorator.TransactionalErr1[string](nil, nil)
	})
}

func TestTransactionalWithoutRunner(t *testing.T) {
	fn := decorator.TransactionalErr(nil, func(context.Context) error { return nil })
	assert.Error(t, fn(context.Background()), "a nil runner is an error, not a panic")
}

func TestWrappersReportARollbackTheFunctionAskedFor(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	// The wrapped function writes, asks for a rollback and returns no
	// error: its caller, who did not write it, must not see a success.
	insertAndRollBack := func(ctx context.Context, id string) error {
		if _, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			return err
		}
		tx.SetRollbackOnly(ctx)
		return nil
	}
	r := e.runner
	tests := []struct {
		name string
		call func() error
	}{
		{"Transactional", func() error {
			_, err := decorator.Transactional(r, func(ctx context.Context) (int, error) { return 1, insertAndRollBack(ctx, "0") })(ctx)
			return err
		}},
		{"Transactional1", func() error {
			_, err := decorator.Transactional1(r, func(ctx context.Context, a string) (int, error) { return 1, insertAndRollBack(ctx, a) })(ctx, "1")
			return err
		}},
		{"Transactional2", func() error {
			_, err := decorator.Transactional2(r, func(ctx context.Context, a, _ string) (int, error) { return 1, insertAndRollBack(ctx, a) })(ctx, "2", "")
			return err
		}},
		{"Transactional3", func() error {
			_, err := decorator.Transactional3(r, func(ctx context.Context, a, _, _ string) (int, error) { return 1, insertAndRollBack(ctx, a) })(ctx, "3", "", "")
			return err
		}},
		{"TransactionalErr", func() error {
			return decorator.TransactionalErr(r, func(ctx context.Context) error { return insertAndRollBack(ctx, "e0") })(ctx)
		}},
		{"TransactionalErr1", func() error {
			return decorator.TransactionalErr1(r, insertAndRollBack)(ctx, "e1")
		}},
		{"TransactionalErr2", func() error {
			return decorator.TransactionalErr2(r, func(ctx context.Context, a, _ string) error { return insertAndRollBack(ctx, a) })(ctx, "e2", "")
		}},
		{"TransactionalErr3", func() error {
			return decorator.TransactionalErr3(r, func(ctx context.Context, a, _, _ string) error { return insertAndRollBack(ctx, a) })(ctx, "e3", "", "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.call(), tx.ErrUnexpectedRollback)
			assert.Zero(t, count(t, e.coll), "nothing was committed")
		})
	}
}
