package txtest_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/txtest"
)

func TestRecorderKeepsEventsInOrder(t *testing.T) {
	var r txtest.Recorder
	var seen []tx.EventKind
	r.OnObserve(func(e tx.Event) { seen = append(seen, e.Kind) })
	r.Observe(tx.Event{Kind: tx.EventBegin, Name: "a"})
	r.Observe(tx.Event{Kind: tx.EventRetry, Name: "a"})
	r.Observe(tx.Event{Kind: tx.EventCommit, Name: "a"})

	require.Equal(t, []tx.EventKind{tx.EventBegin, tx.EventRetry, tx.EventCommit}, r.Kinds())
	require.Equal(t, r.Kinds(), seen)
	require.Len(t, r.Of(tx.EventRetry), 1)
	r.Reset()
	require.Empty(t, r.Events())
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	var r txtest.Recorder
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				r.Observe(tx.Event{Kind: tx.EventBegin})
				_ = r.Events()
			}
		})
	}
	wg.Wait()
	require.Len(t, r.Events(), 800)
}
