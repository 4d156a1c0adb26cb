package tx_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

func TestRequiredJoinsTheCallersTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	// One transient failure of the commit makes the outer scope run twice:
	// the inner scope must run exactly once per attempt, never on its own.
	e.failCommand(t, 1, failData("commitTransaction", codeNoSuchTransaction, "TransientTransactionError"))

	var outerRuns, innerRuns int
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		outerRuns++ //txcheck:ignore counts the attempts
		if _, err := e.coll.InsertOne(ctx, doc("outer")); err != nil {
			return err
		}
		return e.runner.Run(ctx, func(ctx context.Context) error {
			innerRuns++ //txcheck:ignore counts the attempts
			assert.True(t, tx.InTransaction(ctx))
			_, err := e.coll.InsertOne(ctx, doc("inner"))
			return err
		})
	})
	require.NoError(t, err)
	assert.Equal(t, 2, outerRuns)
	assert.Equal(t, 2, innerRuns, "once per attempt")
	assert.EqualValues(t, 2, e.count(t, nil))

	inserts := e.mon.named("insert")
	require.Len(t, inserts, 4)
	for i := 0; i < 4; i += 2 {
		outer, inner := inserts[i], inserts[i+1]
		assert.Equal(t, outer.LSID, inner.LSID, "same session")
		assert.Equal(t, outer.TxnNumber, inner.TxnNumber, "same transaction")
		require.NotNil(t, inner.Autocommit)
		assert.False(t, inner.StartTxn, "the inner scope does not start a transaction")
	}
	assert.Len(t, e.mon.named("commitTransaction"), 2, "one commit per attempt, by the outer scope only")

	joined := 0
	for _, ev := range e.rec.Of(tx.EventBegin) {
		if ev.Joined {
			joined++
		}
	}
	assert.Equal(t, 2, joined)
}

func TestInnerFailureMarksRollbackOnly(t *testing.T) {
	errInner := errors.New("inner says no")
	tests := []struct {
		name  string
		inner func(ctx context.Context) error
		// wantInner is matched by errors.Is on the outer error, if set.
		wantInner error
	}{
		{name: "an inner error swallowed by the outer scope", inner: func(context.Context) error { return errInner }, wantInner: errInner},
		{name: "an inner SetRollbackOnly", inner: func(ctx context.Context) error { tx.SetRollbackOnly(ctx); return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := ctxTimeout(t)
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				if _, err := e.coll.InsertOne(ctx, doc("outer")); err != nil {
					return err
				}
				_ = e.runner.Run(ctx, func(ctx context.Context) error {
					if _, err := e.coll.InsertOne(ctx, doc("inner")); err != nil {
						return err
					}
					return tt.inner(ctx)
				}, tx.WithName("inner"))
				return nil // the outer scope carries on as if nothing happened
			})
			require.ErrorIs(t, err, tx.ErrUnexpectedRollback)
			if tt.wantInner != nil {
				assert.ErrorIs(t, err, tt.wantInner, "the inner cause is wrapped")
			}
			assert.Zero(t, e.count(t, nil), "no partial commit")
			assert.Empty(t, e.mon.named("commitTransaction"))
			assert.Len(t, e.mon.named("abortTransaction"), 1)
			rb := e.rec.Of(tx.EventRollbackOnly)
			require.Len(t, rb, 1)
			assert.Equal(t, "inner", rb[0].Name)
		})
	}
}

func TestOuterSetRollbackOnlyIsAnIntendedRollback(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	hookRan := false
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
			return err
		}
		tx.AfterCommit(ctx, func(context.Context) { hookRan = true })
		tx.SetRollbackOnly(ctx)
		return nil
	})
	require.NoError(t, err)
	assert.Zero(t, e.count(t, nil))
	assert.False(t, hookRan)
	assert.Empty(t, e.mon.named("commitTransaction"))
}

func TestRunnerOfAnotherClientNeverJoins(t *testing.T) {
	a := newEnv(t)
	b := newEnvAt(t, a.uri)
	ctx := ctxTimeout(t)

	err := a.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := a.coll.InsertOne(ctx, doc("a1")); err != nil {
			return err
		}
		// Required would join: another client's transaction is refused.
		err := b.runner.Run(ctx, func(context.Context) error { return nil })
		require.ErrorIs(t, err, tx.ErrOtherClient)
		// Asked to run apart, b runs its own.
		err = b.runner.Run(ctx, func(ctx context.Context) error {
			if _, err := b.coll.InsertOne(ctx, doc("b")); err != nil {
				return err
			}
			// Back to client a inside b's scope: that joins a's transaction.
			return a.runner.Run(ctx, func(ctx context.Context) error {
				_, err := a.coll.InsertOne(ctx, doc("a2"))
				return err
			})
		}, tx.WithPropagation(tx.RequiresNew))
		if err != nil {
			return err
		}
		return errBusiness // a aborts; b has committed on its own
	})
	require.ErrorIs(t, err, errBusiness)

	assert.Zero(t, a.count(t, nil), "a's writes, including the one made inside b's scope, aborted")
	assert.EqualValues(t, 1, b.count(t, doc("b")), "b committed independently")

	aInserts := a.mon.named("insert")
	require.Len(t, aInserts, 2)
	assert.Equal(t, aInserts[0].LSID, aInserts[1].LSID)
	assert.Equal(t, aInserts[0].TxnNumber, aInserts[1].TxnNumber)
	bInserts := b.mon.named("insert")
	require.Len(t, bInserts, 1)
	assert.True(t, bInserts[0].StartTxn, "b started its own transaction")
	assert.Len(t, b.mon.named("commitTransaction"), 1)
}

func TestRequiresNewCommitsIndependently(t *testing.T) {
	t.Run("its commit survives the caller's abort", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			if _, err := e.coll.InsertOne(ctx, doc("outer")); err != nil {
				return err
			}
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				_, err := e.coll.InsertOne(ctx, doc("audit"))
				return err
			}, tx.WithPropagation(tx.RequiresNew))
			if err != nil {
				return err
			}
			return errBusiness
		})
		require.ErrorIs(t, err, errBusiness)
		assert.Zero(t, e.count(t, doc("outer")))
		assert.EqualValues(t, 1, e.count(t, doc("audit")))

		inserts := e.mon.named("insert")
		require.Len(t, inserts, 2)
		assert.NotEqual(t, inserts[0].LSID, inserts[1].LSID, "a session of its own")
		assert.True(t, inserts[1].StartTxn)
	})

	t.Run("the caller sees it only as snapshot isolation allows", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			// The caller's snapshot is taken at its first operation.
			if _, err := e.coll.InsertOne(ctx, doc("outer")); err != nil {
				return err
			}
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				_, err := e.coll.InsertOne(ctx, doc("new"))
				return err
			}, tx.WithPropagation(tx.RequiresNew))
			if err != nil {
				return err
			}
			// Committed, but after the caller's snapshot: invisible to it.
			err = e.coll.FindOne(ctx, doc("new")).Err()
			assert.ErrorIs(t, err, mongo.ErrNoDocuments)
			// Outside any transaction it is there.
			assert.EqualValues(t, 1, e.count(t, doc("new")))
			return nil
		})
		require.NoError(t, err)
		assert.EqualValues(t, 2, e.count(t, nil))
	})
}

func TestSupports(t *testing.T) {
	t.Run("without a transaction it runs without one", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			assert.False(t, tx.InTransaction(ctx))
			if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
				return err
			}
			return errBusiness
		}, tx.WithPropagation(tx.Supports))
		require.ErrorIs(t, err, errBusiness)

		// On the server: the write stayed, and it was not part of a transaction.
		assert.EqualValues(t, 1, e.count(t, nil), "nothing to roll back")
		inserts := e.mon.named("insert")
		require.Len(t, inserts, 1)
		assert.Nil(t, inserts[0].Autocommit)
		assert.False(t, inserts[0].StartTxn)
		assert.Empty(t, e.mon.named("commitTransaction"))
		assert.Empty(t, e.mon.named("abortTransaction"))
	})

	t.Run("with a transaction it joins", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxTimeout(t)
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
				return err
			}
			return e.runner.Run(ctx, func(ctx context.Context) error {
				assert.True(t, tx.InTransaction(ctx))
				_, err := e.coll.InsertOne(ctx, doc(2))
				return err
			}, tx.WithPropagation(tx.Supports))
		})
		require.NoError(t, err)
		inserts := e.mon.named("insert")
		require.Len(t, inserts, 2)
		assert.Equal(t, inserts[0].TxnNumber, inserts[1].TxnNumber)
		require.NotNil(t, inserts[1].Autocommit)
	})
}

func TestNotSupportedRunsOutsideTheTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	hookRan := false
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := e.coll.InsertOne(ctx, doc("tx")); err != nil {
			return err
		}
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			assert.False(t, tx.InTransaction(ctx))
			assert.Nil(t, mongo.SessionFromContext(ctx), "no session in ctx")
			tx.AfterCommit(ctx, func(context.Context) { hookRan = true })
			assert.True(t, hookRan, "outside a transaction a hook runs at once")
			_, err := e.coll.InsertOne(ctx, doc("log"))
			return err
		}, tx.WithPropagation(tx.NotSupported))
		if err != nil {
			return err
		}
		// Visible to everyone before the transaction ends: it was never part of it.
		assert.EqualValues(t, 1, e.count(t, doc("log")))
		assert.Zero(t, e.count(t, doc("tx")))
		return errBusiness
	})
	require.ErrorIs(t, err, errBusiness)
	assert.EqualValues(t, 1, e.count(t, doc("log")), "survives the abort")
	assert.Zero(t, e.count(t, doc("tx")))

	inserts := e.mon.named("insert")
	require.Len(t, inserts, 2)
	assert.Nil(t, inserts[1].Autocommit, "not sent in a transaction")
}

func TestPropagationErrors(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	noop := func(context.Context) error { return nil }

	tests := []struct {
		name string
		give tx.Propagation
		inTx bool
		want error
	}{
		{name: "Mandatory without a transaction", give: tx.Mandatory, want: tx.ErrNoTransaction},
		{name: "Mandatory with a transaction joins", give: tx.Mandatory, inTx: true},
		{name: "Never with a transaction", give: tx.Never, inTx: true, want: tx.ErrTransactionExists},
		{name: "Never without a transaction runs", give: tx.Never},
		{name: "Nested is refused outside", give: tx.Nested, want: tx.ErrNestedNotSupported},
		{name: "Nested is refused inside", give: tx.Nested, inTx: true, want: tx.ErrNestedNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.inTx {
				outerErr := e.runner.Run(ctx, func(ctx context.Context) error {
					err = e.runner.Run(ctx, noop, tx.WithPropagation(tt.give))
					return nil
				})
				// A scope refused before it could join is no part of the
				// transaction, so it does not doom it.
				require.NoError(t, outerErr)
			} else {
				err = e.runner.Run(ctx, noop, tx.WithPropagation(tt.give))
			}
			if tt.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.want)
			}
		})
	}
}

func TestJoinedScopeOptions(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	tests := []struct {
		name string
		give []tx.Option
		want error
	}{
		{name: "the same transaction options are fine", give: []tx.Option{tx.WithTransactionOptions(txnOptsMajorityWrite())}},
		{name: "another write concern conflicts", give: []tx.Option{tx.WithTransactionOptions(txnOptsW1())}, want: tx.ErrOptionConflict},
		{name: "another read concern conflicts", give: []tx.Option{tx.WithTransactionOptions(txnOptsLocalRead())}, want: tx.ErrOptionConflict},
		{name: "a retry policy of its own conflicts", give: []tx.Option{tx.WithMaxAttempts(7)}, want: tx.ErrOptionConflict},
		{name: "a backoff of its own conflicts", give: []tx.Option{tx.WithBackoff(tx.Backoff{Initial: time.Second})}, want: tx.ErrOptionConflict},
		{name: "a name is fine", give: []tx.Option{tx.WithName("inner")}},
	}
	for _, tt := range tests {
		t.Run("with strict joins "+tt.name, func(t *testing.T) {
			var innerErr error
			ran := false
			_ = e.runner.Run(ctx, func(ctx context.Context) error {
				innerErr = e.runner.Run(ctx, func(context.Context) error { ran = true; return nil }, append(tt.give, tx.WithStrictJoin())...)
				return nil
			})
			if tt.want == nil {
				require.NoError(t, innerErr)
				assert.True(t, ran)
				return
			}
			require.ErrorIs(t, innerErr, tt.want)
			assert.False(t, ran, "the callback does not run")
			t.Log(innerErr)
		})
		t.Run("by default "+tt.name+" is ignored on join", func(t *testing.T) {
			e.mon.reset()
			id := t.Name()
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				return e.runner.Run(ctx, func(ctx context.Context) error {
					_, err := e.coll.InsertOne(ctx, doc(id))
					return err
				}, tt.give...)
			})
			require.NoError(t, err)
			assert.EqualValues(t, 1, e.count(t, doc(id)))
			commits := e.mon.named("commitTransaction")
			require.Len(t, commits, 1)
			w, err := commits[0].Body.LookupErr("writeConcern", "w")
			require.NoError(t, err)
			assert.Equal(t, "majority", w.StringValue(), "the owner's write concern")
		})
	}

	t.Run("Mandatory with max attempts joins and ignores them", func(t *testing.T) {
		err := e.runner.Run(ctx, func(ctx context.Context) error {
			return e.runner.Run(ctx, func(ctx context.Context) error {
				_, err := e.coll.InsertOne(ctx, doc("mandatory"))
				return err
			}, tx.WithPropagation(tx.Mandatory), tx.WithMaxAttempts(3))
		})
		require.NoError(t, err)
		assert.EqualValues(t, 1, e.count(t, doc("mandatory")))
	})

	t.Run("a runner made strict refuses conflicting joins", func(t *testing.T) {
		strict := tx.NewRunner(e.client, tx.WithStrictJoin())
		err := strict.Run(ctx, func(ctx context.Context) error {
			return strict.Run(ctx, func(context.Context) error { return nil }, tx.WithMaxAttempts(7))
		})
		require.ErrorIs(t, err, tx.ErrOptionConflict)
	})

	t.Run("a timeout of its own bounds only its callback", func(t *testing.T) {
		err := e.runner.Run(context.Background(), func(ctx context.Context) error {
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				dl, ok := ctx.Deadline()
				require.True(t, ok)
				assert.WithinDuration(t, time.Now().Add(time.Second), dl, 500*time.Millisecond)
				return nil
			}, tx.WithTimeout(time.Second))
			_, outerHas := ctx.Deadline()
			assert.False(t, outerHas, "the outer scope is not bounded by it")
			return err
		})
		require.NoError(t, err)
	})
}

func TestCallOptionsOverrideRunnerDefaults(t *testing.T) {
	e := newEnv(t, tx.WithMaxAttempts(1), tx.WithName("default"))
	ctx := ctxTimeout(t)

	e.failCommand(t, 1, failData("insert", codeWriteConflict, "TransientTransactionError"))
	err := e.runner.Run(ctx, insertAndUpdate(e.coll, 1))
	require.ErrorIs(t, err, tx.ErrRetriesExhausted, "the runner's default: one attempt")
	assert.Contains(t, err.Error(), "default")

	e.failCommand(t, 1, failData("insert", codeWriteConflict, "TransientTransactionError"))
	require.NoError(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 1), tx.WithMaxAttempts(2), tx.WithName("call")))
	names := map[string]bool{}
	for _, ev := range e.rec.Events() {
		names[ev.Name] = true
	}
	assert.Equal(t, map[string]bool{"default": true, "call": true}, names)

	require.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, doc(2))
		return err
	}, tx.WithTransactionOptions(txnOptsLocalRead())))
	var last command
	for _, c := range e.mon.named("insert") {
		last = c
	}
	level, err := last.Body.LookupErr("readConcern", "level")
	require.NoError(t, err)
	assert.Equal(t, "local", level.StringValue())
}

func TestDoReportsTheRollbackItsCallbackAskedFor(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	// The value comes from a transaction that never committed: Do must not
	// hand it back as a success.
	got, err := tx.Do(ctx, e.runner, func(ctx context.Context) (string, error) {
		if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
			return "", err
		}
		tx.SetRollbackOnly(ctx)
		return "inserted 1", nil
	})
	require.ErrorIs(t, err, tx.ErrUnexpectedRollback)
	assert.Empty(t, got)
	assert.Zero(t, e.count(t, nil))
	assert.Empty(t, e.mon.named("commitTransaction"))
}
