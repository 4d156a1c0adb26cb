package main

import (
	"sync"

	"go.uber.org/fx/fxevent"
)

// startSteps remembers which start hook is running, so that a start that
// fails or times out can name the step it was in: "context deadline
// exceeded" alone does not tell an operator what to look at.
type startSteps struct {
	next fxevent.Logger

	mu      sync.Mutex
	running string // "<caller> (<hook>)" of the hook in progress
}

var _ fxevent.Logger = (*startSteps)(nil)

// LogEvent records start hooks and passes every event on.
func (s *startSteps) LogEvent(e fxevent.Event) {
	switch e := e.(type) {
	case *fxevent.OnStartExecuting:
		s.mu.Lock()
		s.running = e.CallerName + " (" + e.FunctionName + ")"
		s.mu.Unlock()
	case *fxevent.OnStartExecuted:
		s.mu.Lock()
		if e.Err == nil {
			s.running = ""
		}
		s.mu.Unlock()
	}
	s.next.LogEvent(e)
}

// step returns the start hook that has not finished, if any.
func (s *startSteps) step() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}
