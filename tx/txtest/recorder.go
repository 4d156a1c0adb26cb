// Package txtest helps test code that runs transactions with package tx:
// [Recorder] is an observer that keeps every event, so a test can assert
// what the runner did (began, retried, committed, aborted) and why.
package txtest

import (
	"sync"

	"github.com/txkit/txkit/tx"
)

var _ tx.Observer = (*Recorder)(nil)

// Recorder is a [tx.Observer] that keeps every event. Its zero value is
// ready to use and it is safe for concurrent use. Pass it with
// tx.WithObserver.
type Recorder struct {
	mu     sync.Mutex
	events []tx.Event
	notify func(tx.Event)
}

// Observe records e, then calls the function set with [Recorder.OnObserve].
func (r *Recorder) Observe(e tx.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	notify := r.notify
	r.mu.Unlock()
	if notify != nil {
		notify(e)
	}
}

// OnObserve makes every later event also go to fn, after it is recorded;
// a test can use it to act at a precise point of a transaction.
func (r *Recorder) OnObserve(fn func(tx.Event)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notify = fn
}

// Events returns the events recorded so far, oldest first.
func (r *Recorder) Events() []tx.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tx.Event(nil), r.events...)
}

// Kinds returns the kinds of the recorded events, oldest first.
func (r *Recorder) Kinds() []tx.EventKind {
	var ks []tx.EventKind
	for _, e := range r.Events() {
		ks = append(ks, e.Kind)
	}
	return ks
}

// Of returns the recorded events of kind.
func (r *Recorder) Of(kind tx.EventKind) []tx.Event {
	var out []tx.Event
	for _, e := range r.Events() {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Reset forgets the recorded events.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}
