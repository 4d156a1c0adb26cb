package tx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/txtest"
)

func TestEventsOfACommittedTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	require.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
		time.Sleep(2 * time.Millisecond)
		return e.runner.Run(ctx, insertAndUpdate(e.coll, 1), tx.WithName("inner"))
	}))

	evs := e.rec.Events()
	require.Len(t, evs, 4)
	assert.Equal(t, []tx.EventKind{tx.EventBegin, tx.EventBegin, tx.EventEnd, tx.EventCommit}, e.rec.Kinds())

	outerName := "tx_test.TestEventsOfACommittedTransaction"
	assert.Equal(t, outerName, evs[0].Name, "the default name is the caller's")
	assert.False(t, evs[0].Joined)
	assert.True(t, evs[0].Transactional)
	assert.Equal(t, 1, evs[0].Attempt)

	assert.Equal(t, "inner", evs[1].Name)
	assert.True(t, evs[1].Joined)
	assert.Equal(t, "inner", evs[2].Name)

	assert.Equal(t, outerName, evs[3].Name)
	assert.Equal(t, 1, evs[3].Attempt)
	assert.GreaterOrEqual(t, evs[3].Duration, 2*time.Millisecond)
	assert.NoError(t, evs[3].Err)
}

// service stands for a business service whose method names its scopes.
type service struct{ runner *tx.Runner }

func (s *service) Deduct(ctx context.Context) error {
	return s.runner.Run(ctx, func(context.Context) error { return nil })
}

func (s *service) Refund(ctx context.Context) (int, error) {
	return tx.Do(ctx, s.runner, func(context.Context) (int, error) { return 1, nil })
}

func TestDefaultNamesComeFromTheCaller(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)
	s := &service{runner: e.runner}

	for range 2 { // the second call hits the name cache
		require.NoError(t, s.Deduct(ctx))
		_, err := s.Refund(ctx)
		require.NoError(t, err)
		func() {
			// A closure is named after the function that contains it.
			require.NoError(t, e.runner.Run(ctx, func(context.Context) error { return nil }))
		}()
		_, _, err = e.runner.Begin(ctx, tx.WithPropagation(tx.Never))
		require.NoError(t, err)
	}

	var names []string
	for _, ev := range e.rec.Of(tx.EventBegin) {
		names = append(names, ev.Name)
	}
	want := []string{
		"tx_test.(*service).Deduct", "tx_test.(*service).Refund", "tx_test.TestDefaultNamesComeFromTheCaller",
		"tx_test.TestDefaultNamesComeFromTheCaller",
	}
	assert.Equal(t, append(want, want...), names)
}

func TestEventsOfAnAbort(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t)

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		_ = e.runner.Run(ctx, func(context.Context) error { return errBusiness }, tx.WithName("inner"))
		return nil
	}, tx.WithName("outer"))
	require.ErrorIs(t, err, tx.ErrUnexpectedRollback)

	assert.Equal(t, []tx.EventKind{tx.EventBegin, tx.EventBegin, tx.EventRollbackOnly, tx.EventAbort}, e.rec.Kinds())
	rb := e.rec.Of(tx.EventRollbackOnly)[0]
	assert.Equal(t, "inner", rb.Name)
	assert.ErrorIs(t, rb.Err, errBusiness)
	assert.False(t, rb.Infrastructure)
	abort := e.rec.Of(tx.EventAbort)[0]
	assert.Equal(t, "outer", abort.Name)
	assert.ErrorIs(t, abort.Err, tx.ErrUnexpectedRollback)
}

func TestZapObserverLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnv(t, fastBackoff, tx.WithObserver(tx.NewZapObserver(zap.New(core))))
	ctx := ctxTimeout(t)

	levelsOf := func(msg string) []zapcore.Level {
		var ls []zapcore.Level
		for _, l := range logs.FilterMessage(msg).All() {
			ls = append(ls, l.Level)
		}
		return ls
	}

	t.Run("a commit logs at debug", func(t *testing.T) {
		logs.TakeAll()
		require.NoError(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 1)))
		assert.Equal(t, []zapcore.Level{zapcore.DebugLevel}, levelsOf("transaction scope begin"))
		assert.Equal(t, []zapcore.Level{zapcore.DebugLevel}, levelsOf("transaction committed"))
		assert.Empty(t, logs.FilterLevelExact(zapcore.ErrorLevel).All())
		entry := logs.FilterMessage("transaction committed").All()[0]
		// A subtest's closure is named after the function that contains it.
		assert.Equal(t, "tx_test.TestZapObserverLevels", entry.ContextMap()["tx"])
	})

	t.Run("a write conflict retried to success logs at debug with its cause and labels", func(t *testing.T) {
		logs.TakeAll()
		e.failCommand(t, 1, failData("insert", codeWriteConflict, "TransientTransactionError"))
		require.NoError(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 2)))
		retries := logs.FilterMessage("transaction retry").All()
		require.Len(t, retries, 1)
		assert.Equal(t, zapcore.DebugLevel, retries[0].Level, "normal under concurrency")
		assert.Empty(t, logs.FilterLevelExact(zapcore.WarnLevel).All())
		assert.Empty(t, logs.FilterLevelExact(zapcore.ErrorLevel).All())
		fields := retries[0].ContextMap()
		assert.Contains(t, fields["error"], "WriteConflict")
		assert.Contains(t, fields["labels"], "TransientTransactionError")
	})

	t.Run("a business error that rolls back is not an error", func(t *testing.T) {
		logs.TakeAll()
		require.ErrorIs(t, e.runner.Run(ctx, func(context.Context) error { return errBusiness }), errBusiness)
		assert.Equal(t, []zapcore.Level{zapcore.InfoLevel}, levelsOf("transaction aborted"))
		assert.Empty(t, logs.FilterLevelExact(zapcore.ErrorLevel).All())
	})

	t.Run("an infrastructure failure is an error", func(t *testing.T) {
		logs.TakeAll()
		// A statement's: an unlabelled commit failure is sent again.
		e.failCommand(t, 1, failData("insert", codeInternalError))
		require.Error(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 3)))
		assert.Equal(t, []zapcore.Level{zapcore.ErrorLevel}, levelsOf("transaction aborted"))
	})

	t.Run("a commit retried for an unknown result logs at warn", func(t *testing.T) {
		logs.TakeAll()
		e.failCommand(t, 1, failData("commitTransaction", codeWriteConcernFailed, "UnknownTransactionCommitResult"))
		require.NoError(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 4)))
		assert.Equal(t, []zapcore.Level{zapcore.WarnLevel}, levelsOf("transaction retry"))
	})

	t.Run("exhausted retries are an error", func(t *testing.T) {
		logs.TakeAll()
		e.failCommand(t, 2, failData("insert", codeWriteConflict, "TransientTransactionError"))
		require.ErrorIs(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 5), tx.WithMaxAttempts(2)), tx.ErrRetriesExhausted)
		assert.Equal(t, []zapcore.Level{zapcore.ErrorLevel}, levelsOf("transaction aborted"))
	})

	t.Run("a commit of unknown outcome is an error", func(t *testing.T) {
		logs.TakeAll()
		e.failCommand(t, 1, failData("commitTransaction", codeMaxTimeMSExpired))
		require.ErrorIs(t, e.runner.Run(ctx, insertAndUpdate(e.coll, 6)), tx.ErrCommitUnknown)
		assert.Equal(t, []zapcore.Level{zapcore.ErrorLevel}, levelsOf("transaction commit outcome unknown"))
		assert.Empty(t, levelsOf("transaction aborted"), "not reported as aborted")
	})

	t.Run("a panicking hook is an error", func(t *testing.T) {
		logs.TakeAll()
		require.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
			tx.AfterCommit(ctx, func(context.Context) { panic("boom") })
			return nil
		}))
		assert.Equal(t, []zapcore.Level{zapcore.ErrorLevel}, levelsOf("after-commit hook panicked"))
	})
}

func TestNilZapObserverIsSafe(t *testing.T) {
	var o *tx.ZapObserver
	o.Observe(tx.Event{Kind: tx.EventBegin})
	tx.NewZapObserver(nil).Observe(tx.Event{Kind: tx.EventCommit})
}

func TestSeveralObserversAtOnce(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	zapObs := tx.NewZapObserver(zap.New(core))
	extra := &txtest.Recorder{}
	client := testenv.Client(t)

	t.Run("Observers combines them", func(t *testing.T) {
		r := tx.NewRunner(client, tx.WithObserver(tx.Observers(zapObs, extra, nil)))
		require.NoError(t, r.Run(ctxTimeout(t), func(context.Context) error { return nil }))
		assert.Len(t, extra.Of(tx.EventCommit), 1)
		assert.Len(t, logs.FilterMessage("transaction committed").All(), 1)
	})

	t.Run("AddObserver keeps the one already set", func(t *testing.T) {
		logs.TakeAll()
		extra.Reset()
		r := tx.NewRunner(client, tx.WithObserver(zapObs))
		require.NoError(t, r.Run(ctxTimeout(t), func(context.Context) error { return nil }, tx.AddObserver(extra)))
		assert.Len(t, extra.Of(tx.EventCommit), 1)
		assert.Len(t, logs.FilterMessage("transaction committed").All(), 1)
	})

	t.Run("Module's zap logger stays when Defaults adds one", func(t *testing.T) {
		logs.TakeAll()
		extra.Reset()
		r := tx.New(tx.Params{Client: client, Logger: zap.New(core), Options: []tx.Option{tx.AddObserver(extra)}})
		require.NoError(t, r.Run(ctxTimeout(t), func(context.Context) error { return nil }))
		assert.Len(t, extra.Of(tx.EventCommit), 1)
		assert.Len(t, logs.FilterMessage("transaction committed").All(), 1)
	})
}
