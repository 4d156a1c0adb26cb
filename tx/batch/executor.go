package batch

import (
	"context"
	"errors"
	"runtime"
	"strconv"

	"github.com/txkit/txkit/internal/funcname"
	"github.com/txkit/txkit/tx"
)

// errNilStep is the cause of a [*StepError] for a step without a function.
var errNilStep = errors.New("batch: step has no Run function")

// Executor runs batches of steps through a [tx.Runner], each batch in one
// transaction. Create it with [NewExecutor]; it is safe for concurrent use
// (each Execute is a batch of its own).
type Executor struct {
	runner *tx.Runner
	opts   []tx.Option
}

// NewExecutor returns an Executor that runs batches with r and opts, e.g.
// [tx.WithName] or [tx.WithPropagation]. Without [tx.WithName], a batch is
// named after the function that calls [Executor.Execute].
func NewExecutor(r *tx.Runner, opts ...tx.Option) *Executor {
	return &Executor{runner: r, opts: append([]tx.Option(nil), opts...)}
}

// Execute runs steps in order in one transaction (or the one in ctx) and
// commits if they all succeed. The first failure rolls everything back and
// is returned as a [*StepError]. When ctx is done (cancelled, or past its
// deadline or the executor's [tx.WithTimeout]) before a step starts, that
// step and the rest do not run: the transaction is rolled back and Execute
// returns a [*StoppedError] that names the first step that did not run.
// Any other error comes from the runner: see [tx.Runner.Run]. Without
// steps, Execute does nothing.
func (e *Executor) Execute(ctx context.Context, steps ...Step) error {
	if len(steps) == 0 {
		return nil
	}
	named := make([]Step, len(steps))
	for i, s := range steps {
		if s.Run == nil {
			return &StepError{Index: i, Name: s.Name, Err: errNilStep}
		}
		if s.Name == "" {
			s.Name = funcname.Of(s.Run)
		}
		named[i] = s
	}
	return e.execute(ctx, callerName(), named, nil)
}

// execute runs steps in a transaction. reset, if not nil, runs at the start
// of every attempt, to forget what a previous attempt collected.
func (e *Executor) execute(ctx context.Context, caller string, steps []Step, reset func()) error {
	if e == nil {
		return errors.New("batch: nil Executor")
	}
	opts := make([]tx.Option, 0, len(e.opts)+1)
	opts = append(opts, tx.WithName(caller))
	opts = append(opts, e.opts...)
	return e.runner.Run(ctx, func(ctx context.Context) error {
		if reset != nil {
			reset()
		}
		for i, s := range steps {
			// A step is never started on a done ctx: its writes would fail
			// half-way, or, outside the transaction, apply after the
			// caller gave up.
			if err := ctx.Err(); err != nil {
				return &StoppedError{Index: i, Name: s.Name, Err: context.Cause(ctx)}
			}
			if err := e.runStep(ctx, i, s); err != nil {
				return &StepError{Index: i, Name: s.Name, Err: err}
			}
		}
		return nil
	}, opts...)
}

// runStep runs s as a scope that joins the batch's transaction (or, in a
// batch that runs without one, runs without one too), so the runner's
// observer sees it. The executor's options come along so that its observer
// sees it too; they cannot conflict with the transaction, which was started
// or joined with the same ones. The step has no deadline of its own.
func (e *Executor) runStep(ctx context.Context, i int, s Step) error {
	opts := make([]tx.Option, 0, len(e.opts)+3)
	opts = append(opts, e.opts...)
	opts = append(opts,
		tx.WithName("step "+strconv.Itoa(i)+" "+s.Name),
		tx.WithPropagation(tx.Supports),
		tx.WithTimeout(0),
	)
	return e.runner.Run(ctx, s.Run, opts...)
}

// Collect runs steps as [Executor.Execute] does and returns their results,
// in order. The results are those of the attempt that committed; on error
// they are nil.
func Collect[T any](ctx context.Context, e *Executor, steps ...func(ctx context.Context) (T, error)) ([]T, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	results := make([]T, len(steps))
	wrapped := make([]Step, len(steps))
	for i, fn := range steps {
		if fn == nil {
			return nil, &StepError{Index: i, Err: errNilStep}
		}
		wrapped[i] = Step{
			Name: funcname.Of(fn),
			Run: func(ctx context.Context) error {
				v, err := fn(ctx)
				results[i] = v
				return err
			},
		}
	}
	err := e.execute(ctx, callerName(), wrapped, func() { clear(results) })
	if err != nil {
		return nil, err
	}
	return results, nil
}

// callerName returns the short name of the function that called the
// caller of callerName: the function that runs the batch.
func callerName() string {
	var pcs [1]uintptr
	if runtime.Callers(3, pcs[:]) < 1 {
		return "batch"
	}
	if n := funcname.ForPC(pcs[0]); n != "" {
		return n
	}
	return "batch"
}
