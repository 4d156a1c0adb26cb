package txotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/txotel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	runner *tx.Runner
	tp     *sdktrace.TracerProvider
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(e.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	t.Cleanup(func() {
		_ = e.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := txotel.New(txotel.WithTracerProvider(e.tp), txotel.WithMeterProvider(mp))
	require.NoError(t, err)
	client := testenv.Client(t)
	e.runner = tx.NewRunner(client, tx.WithObserver(obs), tx.WithBackoff(tx.Backoff{Initial: time.Millisecond, Max: time.Millisecond}))
	return e
}

func (e *env) span(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range e.spans.GetSpans() {
		if s.Name == name {
			return s
		}
	}
	require.Failf(t, "no span", "%q in %v", name, e.spans.GetSpans())
	return tracetest.SpanStub{}
}

func (e *env) attempts(parent tracetest.SpanStub) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range e.spans.GetSpans() {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() {
			out = append(out, s)
		}
	}
	return out
}

func attr(kvs []attribute.KeyValue, k attribute.Key) attribute.Value {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// sum returns the value of the counter name for the attributes want.
func (e *env) sum(t *testing.T, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(context.Background(), &rm))
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				match := true
				for _, w := range want {
					v, ok := dp.Attributes.Value(w.Key)
					match = match && ok && v == w.Value
				}
				if match {
					n += dp.Value
				}
			}
		}
	}
	return n
}

func (e *env) histogramCount(t *testing.T, name string) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(context.Background(), &rm))
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					n += dp.Count
				}
			}
		}
	}
	return n
}

func (e *env) insert(id string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := e.runner.Client().Database("txotel").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	}
}

func TestACommittedTransactionAfterARetry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	parentCtx, parent := e.tp.Tracer("test").Start(ctx, "request")
	// NoSuchTransaction: a commit refused so did not commit, and the
	// whole function is run again.
	testenv.FailCommand(t, e.runner.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "errorCode", Value: 251},
			{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
		}},
	})

	id := "a-" + time.Now().Format(time.RFC3339Nano)
	require.NoError(t, e.runner.Run(parentCtx, func(ctx context.Context) error {
		_, err := e.runner.Client().Database("txotel").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: id}})
		if err != nil {
			return err
		}
		// A joined scope makes no span of its own.
		return e.runner.Run(ctx, func(context.Context) error { return nil }, tx.WithName("inner"))
	}, tx.WithName("pay")))
	parent.End()

	n, err := e.runner.Client().Database("txotel").Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "committed once")

	root := e.span(t, "tx pay")
	assert.Equal(t, parent.SpanContext().SpanID(), root.Parent.SpanID(), "a child of the caller's span")
	assert.Equal(t, txotel.OutcomeCommitted, attr(root.Attributes, txotel.AttrOutcome).AsString())
	assert.Equal(t, int64(2), attr(root.Attributes, txotel.AttrAttempts).AsInt64())
	assert.Equal(t, codes.Unset, root.Status.Code)

	attempts := e.attempts(root)
	require.Len(t, attempts, 2, "one span per attempt")
	assert.Equal(t, codes.Error, attempts[0].Status.Code, "the first attempt was retried")
	assert.Contains(t, attr(attempts[0].Attributes, txotel.AttrAttempt).String(), "1")
	require.NotEmpty(t, attempts[0].Events)
	assert.Contains(t, attr(attempts[0].Events[0].Attributes, txotel.AttrLabels).AsStringSlice(), "TransientTransactionError")
	assert.Equal(t, codes.Unset, attempts[1].Status.Code)
	for _, s := range e.spans.GetSpans() {
		assert.NotEqual(t, "tx inner", s.Name)
	}

	pay := attribute.String(string(txotel.AttrName), "pay")
	assert.Equal(t, int64(2), e.sum(t, "txkit.tx.attempts", pay))
	assert.Equal(t, int64(1), e.sum(t, "txkit.tx.retries", pay, txotel.AttrLabel.String("TransientTransactionError")))
	assert.Equal(t, int64(1), e.sum(t, "txkit.tx.outcomes", pay, txotel.AttrOutcome.String("committed")))
	assert.Equal(t, uint64(1), e.histogramCount(t, "txkit.tx.duration"))
}

var errBusiness = errors.New("insufficient")

func TestAnAbortedTransactionSaysWhy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if err := e.insert("b")(ctx); err != nil {
			return err
		}
		return errBusiness
	}, tx.WithName("debit"))
	require.ErrorIs(t, err, errBusiness)

	n, err := e.runner.Client().Database("txotel").Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: "b"}})
	require.NoError(t, err)
	require.Zero(t, n, "aborted: nothing written")

	root := e.span(t, "tx debit")
	assert.Equal(t, codes.Error, root.Status.Code)
	assert.Equal(t, txotel.OutcomeAborted, attr(root.Attributes, txotel.AttrOutcome).AsString())
	assert.Equal(t, "business", attr(root.Attributes, txotel.AttrCause).AsString())
	assert.Len(t, e.attempts(root), 1)
	assert.Equal(t, int64(1), e.sum(t, "txkit.tx.outcomes", txotel.AttrOutcome.String("aborted"), txotel.AttrCause.String("business")))

	// Transactions in a row with one caller ctx and one name each get
	// their spans closed: nothing is left open.
	for range 3 {
		require.NoError(t, e.runner.Run(ctx, func(context.Context) error { return nil }, tx.WithName("noop")))
	}
	assert.Equal(t, int64(3), e.sum(t, "txkit.tx.outcomes", attribute.String(string(txotel.AttrName), "noop")))
	for _, s := range e.spans.GetSpans() {
		assert.False(t, s.EndTime.IsZero(), "%s ended", s.Name)
	}
}

// A commit of unknown outcome ends its span (it would stay open otherwise)
// and counts as neither committed nor aborted.
func TestACommitOfUnknownOutcomeEndsItsSpan(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	testenv.FailCommand(t, e.runner.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "errorCode", Value: 50},
		}},
	})
	err := e.runner.Run(ctx, e.insert("u"), tx.WithName("unknown"))
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	root := e.span(t, "tx unknown")
	assert.False(t, root.EndTime.IsZero(), "the span ended")
	assert.Equal(t, txotel.OutcomeUnknown, attr(root.Attributes, txotel.AttrOutcome).AsString())
	assert.Equal(t, int64(1), e.sum(t, "txkit.tx.outcomes", txotel.AttrOutcome.String(txotel.OutcomeUnknown)))
}
