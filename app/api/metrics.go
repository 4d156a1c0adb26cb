package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// httpMetrics counts requests by route pattern, method and status: labels
// of bounded cardinality (never a path or an id).
type httpMetrics struct {
	requests metric.Int64Counter
	duration metric.Float64Histogram
}

func newHTTPMetrics(mp metric.MeterProvider) (*httpMetrics, error) {
	if mp == nil {
		return nil, nil
	}
	m := mp.Meter("github.com/txkit/txkit/app/api")
	requests, err1 := m.Int64Counter("txkit.http.requests", metric.WithDescription("HTTP requests answered, by route, method and status."))
	duration, err2 := m.Float64Histogram("txkit.http.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from a request's arrival to its answer."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &httpMetrics{requests: requests, duration: duration}, nil
}

func (m *httpMetrics) record(ctx context.Context, route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "OTHER"
	}
	attrs := metric.WithAttributes(attribute.String("route", route), attribute.String("method", method), attribute.String("status", strconv.Itoa(status)))
	m.requests.Add(context.WithoutCancel(ctx), 1, attrs)
	m.duration.Record(context.WithoutCancel(ctx), d.Seconds(), attrs)
}
