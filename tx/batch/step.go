package batch

import (
	"context"
	"fmt"
)

// A Step is one unit of work in a batch.
type Step struct {
	// Name says what the step does, in errors and events. Empty, it is the
	// name of Run's function.
	Name string
	// Run does the work. It must use the ctx it is given for every
	// collection call (it carries the transaction) and be re-runnable.
	Run func(ctx context.Context) error
}

// StepError is returned by [Executor.Execute] when a step fails: the
// transaction was rolled back and no later step ran. errors.Is and
// errors.As see through it to Err.
type StepError struct {
	Index int    // the failed step's position, from 0
	Name  string // the failed step's name
	Err   error  // what the step returned
}

// Error implements the error interface.
func (e *StepError) Error() string {
	return fmt.Sprintf("batch step %d (%s): %v", e.Index, e.Name, e.Err)
}

// Unwrap returns the step's error.
func (e *StepError) Unwrap() error { return e.Err }

// StoppedError is returned by [Executor.Execute] and [Collect] when ctx was
// done before step Index could start: that step and those after it did not
// run. The steps before it ran; in a transaction their writes were rolled
// back with it (joined, the caller's transaction can no longer commit);
// without one ([tx.NotSupported], or [tx.Supports] outside a transaction)
// they stay. errors.Is sees through it to ctx's error or cause, such as
// context.Canceled or context.DeadlineExceeded.
type StoppedError struct {
	Index int    // the first step that did not run, from 0
	Name  string // its name
	Err   error  // why: ctx's cause
}

// Error implements the error interface.
func (e *StoppedError) Error() string {
	return fmt.Sprintf("batch stopped before step %d (%s): %v", e.Index, e.Name, e.Err)
}

// Unwrap returns why the batch stopped.
func (e *StoppedError) Unwrap() error { return e.Err }
