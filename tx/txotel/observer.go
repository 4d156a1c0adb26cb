package txotel

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/tx"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/txkit/txkit/tx/txotel"

// Attribute keys of spans and metrics.
const (
	AttrName        = attribute.Key("txkit.tx.name")
	AttrPropagation = attribute.Key("txkit.tx.propagation")
	AttrAttempt     = attribute.Key("txkit.tx.attempt")
	AttrAttempts    = attribute.Key("txkit.tx.attempts")
	AttrOutcome     = attribute.Key("txkit.tx.outcome")
	AttrCause       = attribute.Key("txkit.tx.cause")
	AttrLabels      = attribute.Key("txkit.tx.error_labels")
	AttrLabel       = attribute.Key("txkit.tx.error_label")
	AttrCommitOnly  = attribute.Key("txkit.tx.commit_only")
	AttrBackoff     = attribute.Key("txkit.tx.backoff_seconds")
)

// Outcomes (values of [AttrOutcome]).
const (
	OutcomeCommitted     = "committed"
	OutcomeAborted       = "aborted"
	OutcomeRolledBack    = "rolled_back" // the callback asked for it
	OutcomeNoTransaction = "no_transaction"
	OutcomeHookPanic     = "hook_panic"
	OutcomeUnknown       = "unknown" // a commit was sent; its outcome could not be learned
)

// Observer is a tx.Observer that reports to OpenTelemetry. Create it with
// [New]; it is safe for concurrent use.
type Observer struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
	attempts metric.Int64Counter
	retries  metric.Int64Counter
	outcomes metric.Int64Counter

	tp trace.TracerProvider // set by options, nil for the global one
	mp metric.MeterProvider

	mu   sync.Mutex
	open map[scopeKey][]*txSpan // transactions in progress
}

var _ tx.Observer = (*Observer)(nil)

// scopeKey finds the transaction an event belongs to: all events of one
// outermost scope carry its caller's ctx and its name.
type scopeKey struct {
	ctx  context.Context
	name string
}

// txSpan is a transaction in progress.
type txSpan struct {
	span    trace.Span
	ctx     context.Context // carries span
	attempt trace.Span      // nil between attempts
}

// An Option configures [New].
type Option interface{ apply(*Observer) }

type optionFunc func(*Observer)

func (f optionFunc) apply(o *Observer) { f(o) }

// WithTracerProvider sets where spans go; the global provider by default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *Observer) { o.tp = tp })
}

// WithMeterProvider sets where metrics go; the global provider by default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *Observer) { o.mp = mp })
}

// New returns an Observer on the global providers unless options say
// otherwise. It fails only if an instrument cannot be created.
func New(opts ...Option) (*Observer, error) {
	o := &Observer{open: map[scopeKey][]*txSpan{}}
	for _, opt := range opts {
		opt.apply(o)
	}
	if o.tp == nil {
		o.tp = otel.GetTracerProvider()
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	o.tracer = o.tp.Tracer(ScopeName)
	if err := o.meter(o.mp); err != nil {
		return nil, fmt.Errorf("txotel: %w", err)
	}
	return o, nil
}

// durationBuckets suit transactions: 1 ms to 2 minutes (the retry budget).
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

func (o *Observer) meter(mp metric.MeterProvider) error {
	m := mp.Meter(ScopeName)
	var err, e error
	o.duration, e = m.Float64Histogram("txkit.tx.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of outermost transactions, all attempts and the commit included."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	err = errors.Join(err, e)
	o.attempts, e = m.Int64Counter("txkit.tx.attempts", metric.WithDescription("Transaction attempts begun."))
	err = errors.Join(err, e)
	o.retries, e = m.Int64Counter("txkit.tx.retries", metric.WithDescription("Transaction retries: the whole callback, or only the commit."))
	err = errors.Join(err, e)
	o.outcomes, e = m.Int64Counter("txkit.tx.outcomes", metric.WithDescription("Outermost scopes ended, by outcome and cause."))
	err = errors.Join(err, e)
	return err
}

// Observe records e. Events of joined scopes only count their attempts'
// outcomes through their owner; they make no span.
func (o *Observer) Observe(e tx.Event) {
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	name := attribute.String(string(AttrName), e.Name)
	switch {
	case e.Kind == tx.EventHookPanic:
		o.outcomes.Add(ctx, 1, metric.WithAttributes(name, AttrOutcome.String(OutcomeHookPanic), AttrCause.String("infrastructure")))
		if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
			sp.AddEvent("tx after-commit hook panicked", trace.WithAttributes(name))
		}
		return
	case e.Joined:
		return
	case !e.Transactional:
		if e.Kind == tx.EventEnd {
			o.outcomes.Add(ctx, 1, metric.WithAttributes(name, AttrOutcome.String(OutcomeNoTransaction), AttrCause.String(cause(e))))
		}
		return
	}

	switch e.Kind {
	case tx.EventBegin:
		o.attempts.Add(ctx, 1, metric.WithAttributes(name))
		t := o.current(ctx, e.Name, e.Attempt == 1)
		if t == nil {
			t = o.begin(ctx, e)
		}
		_, t.attempt = o.tracer.Start(t.ctx, "tx "+e.Name+" attempt", trace.WithAttributes(name, AttrAttempt.Int(e.Attempt)))
	case tx.EventRetry:
		o.retries.Add(ctx, 1, metric.WithAttributes(name, AttrCommitOnly.Bool(e.CommitOnly), AttrLabel.String(firstLabel(e.Labels))))
		t := o.current(ctx, e.Name, false)
		if t == nil || t.attempt == nil {
			return
		}
		attrs := trace.WithAttributes(AttrLabels.StringSlice(e.Labels), AttrBackoff.Float64(e.Backoff.Seconds()), AttrCommitOnly.Bool(e.CommitOnly))
		if e.CommitOnly {
			t.attempt.AddEvent("commit retry", attrs)
			return
		}
		t.attempt.RecordError(e.Err, attrs)
		t.attempt.SetStatus(codes.Error, "retried: "+errText(e.Err))
		t.attempt.End()
		t.attempt = nil
	case tx.EventCommit, tx.EventAbort, tx.EventCommitUnknown:
		outcome, c := OutcomeCommitted, "none"
		switch {
		case e.Kind == tx.EventCommitUnknown:
			outcome, c = OutcomeUnknown, "infrastructure"
		case e.Kind == tx.EventAbort:
			outcome, c = OutcomeAborted, cause(e)
			if e.Err == nil {
				outcome = OutcomeRolledBack
			}
		}
		set := metric.WithAttributes(name, AttrOutcome.String(outcome), AttrCause.String(c))
		o.outcomes.Add(ctx, 1, set)
		o.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(name, AttrOutcome.String(outcome)))
		o.end(ctx, e, outcome, c)
	}
}

// begin opens the span of a new outermost transaction.
func (o *Observer) begin(ctx context.Context, e tx.Event) *txSpan {
	sctx, span := o.tracer.Start(ctx, "tx "+e.Name, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithTimestamp(time.Now()),
		trace.WithAttributes(AttrName.String(e.Name), AttrPropagation.String(e.Propagation.String())))
	t := &txSpan{span: span, ctx: sctx}
	if k, ok := key(ctx, e.Name); ok {
		o.mu.Lock()
		o.open[k] = append(o.open[k], t)
		o.mu.Unlock()
	}
	return t
}

// current returns the transaction in progress for (ctx, name); fresh asks
// for none (a first attempt always starts a new one).
func (o *Observer) current(ctx context.Context, name string, fresh bool) *txSpan {
	if fresh {
		return nil
	}
	k, ok := key(ctx, name)
	if !ok {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.open[k]
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}

// end closes the transaction's spans.
func (o *Observer) end(ctx context.Context, e tx.Event, outcome, c string) {
	k, ok := key(ctx, e.Name)
	if !ok {
		return
	}
	o.mu.Lock()
	s := o.open[k]
	var t *txSpan
	if n := len(s); n > 0 {
		t = s[n-1]
		if n == 1 {
			delete(o.open, k)
		} else {
			o.open[k] = s[:n-1]
		}
	}
	o.mu.Unlock()
	if t == nil {
		return
	}
	if t.attempt != nil {
		if e.Err != nil {
			t.attempt.RecordError(e.Err, trace.WithAttributes(AttrLabels.StringSlice(e.Labels)))
			t.attempt.SetStatus(codes.Error, errText(e.Err))
		}
		t.attempt.End()
	}
	t.span.SetAttributes(AttrOutcome.String(outcome), AttrCause.String(c), AttrAttempts.Int(e.Attempt))
	if e.Err != nil {
		t.span.RecordError(e.Err, trace.WithAttributes(AttrLabels.StringSlice(e.Labels)))
		t.span.SetStatus(codes.Error, errText(e.Err))
	}
	t.span.End()
}

// key is the map key of a transaction, if its ctx can be one: a ctx whose
// dynamic type is not comparable (no standard one) gets metrics only.
func key(ctx context.Context, name string) (scopeKey, bool) {
	if !reflect.TypeOf(ctx).Comparable() {
		return scopeKey{}, false
	}
	return scopeKey{ctx: ctx, name: name}, true
}

// cause classifies why a scope ended without committing.
func cause(e tx.Event) string {
	switch err := e.Err; {
	case err == nil:
		return "none"
	case errors.Is(err, tx.ErrCommitUnknown):
		return "commit_unknown"
	case errors.Is(err, tx.ErrRetriesExhausted):
		return "retries_exhausted"
	case errors.Is(err, tx.ErrUnexpectedRollback):
		return "unexpected_rollback"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	case e.Infrastructure:
		return "infrastructure"
	default:
		return "business"
	}
}

func firstLabel(labels []string) string {
	if len(labels) == 0 {
		return "none"
	}
	return labels[0]
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
