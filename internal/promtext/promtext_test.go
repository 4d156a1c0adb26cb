package promtext_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/txkit/txkit/internal/promtext"
)

func TestWrite(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	m := mp.Meter("test")
	ctx := context.Background()

	c, err := m.Int64Counter("txkit.tx.attempts", metric.WithDescription("Attempts."))
	require.NoError(t, err)
	c.Add(ctx, 2, metric.WithAttributes(attribute.String("txkit.tx.name", `a"b\c`)))
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("txkit.tx.name", "x")))
	h, err := m.Float64Histogram("txkit.tx.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 1))
	require.NoError(t, err)
	h.Record(ctx, 0.05)
	h.Record(ctx, 0.5)
	h.Record(ctx, 5)
	u, err := m.Int64UpDownCounter("txkit.http.in_flight")
	require.NoError(t, err)
	u.Add(ctx, 3)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	var b strings.Builder
	require.NoError(t, promtext.Write(&b, &rm))
	assert.Equal(t, `# TYPE txkit_http_in_flight gauge
txkit_http_in_flight 3
# HELP txkit_tx_attempts_total Attempts.
# TYPE txkit_tx_attempts_total counter
txkit_tx_attempts_total{txkit_tx_name="a\"b\\c"} 2
txkit_tx_attempts_total{txkit_tx_name="x"} 1
# TYPE txkit_tx_duration_seconds histogram
txkit_tx_duration_seconds_bucket{le="0.1"} 1
txkit_tx_duration_seconds_bucket{le="1"} 2
txkit_tx_duration_seconds_bucket{le="+Inf"} 3
txkit_tx_duration_seconds_sum 5.55
txkit_tx_duration_seconds_count 3
`, b.String())
}
