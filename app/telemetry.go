package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/txkit/txkit/app/api"
	"github.com/txkit/txkit/internal/promtext"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/txotel"
)

// Telemetry: metrics are always collected and served at /metrics (behind
// the API token); OTLP export of traces and metrics is on when the
// standard OTEL_EXPORTER_OTLP_* variables name an endpoint, and the
// exporters read the rest of those variables themselves (headers,
// protocol paths, timeouts, TLS).

// otlpEnv lists the variables that switch OTLP export on.
var (
	otlpTraceEnv  = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}
	otlpMetricEnv = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"}
)

func anySet(cfg Config, names []string) bool {
	for _, n := range names {
		if cfg.env(n) != "" {
			return true
		}
	}
	return false
}

// telemetry is what the rest of the graph gets.
type telemetry struct {
	fx.Out

	Tracer  trace.TracerProvider
	Meter   metric.MeterProvider
	Metrics http.Handler `name:"txkit_metrics"`
}

// newTelemetry builds the providers and registers their shutdown (which
// flushes what is left to export).
func newTelemetry(lc fx.Lifecycle, cfg Config, log *zap.Logger) (telemetry, error) {
	ctx := context.Background()
	res := resource.NewSchemaless()
	if r, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK()); err == nil {
		res = r
	}
	reader := sdkmetric.NewManualReader()
	mopts := []sdkmetric.Option{sdkmetric.WithReader(reader), sdkmetric.WithResource(res)}
	var tp trace.TracerProvider = tracenoop.NewTracerProvider()
	var shutdown []func(context.Context) error

	if anySet(cfg, otlpMetricEnv) {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return telemetry{}, fmt.Errorf("telemetry: OTLP metrics: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		log.Info("exporting metrics over OTLP")
	}
	if anySet(cfg, otlpTraceEnv) {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return telemetry{}, fmt.Errorf("telemetry: OTLP traces: %w", err)
		}
		stp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		shutdown = append(shutdown, stp.Shutdown)
		tp = stp
		log.Info("exporting traces over OTLP")
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	shutdown = append(shutdown, mp.Shutdown)
	lc.Append(fx.Hook{OnStop: func(ctx context.Context) error {
		var errs []error
		for _, f := range shutdown {
			errs = append(errs, f(ctx))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("telemetry: shut down: %w", err)
		}
		return nil
	}})
	return telemetry{Tracer: tp, Meter: mp, Metrics: metricsHandler(reader)}, nil
}

// metricsHandler serves what reader collects in Prometheus's text format.
func metricsHandler(reader *sdkmetric.ManualReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(r.Context(), &rm); err != nil {
			http.Error(w, "collect metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", promtext.ContentType)
		_ = promtext.Write(w, &rm)
	})
}

// observersParams are the transaction observers of the service: the log,
// OpenTelemetry, and any the application adds to the group (the demo
// counts retries this way).
type observersParams struct {
	fx.In

	Logger *zap.Logger
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
	Extra  []tx.Observer `group:"txkit.observers"`
}

// runnerObservers is the tx.Module default that reports every transaction
// to all observers at once.
func runnerObservers(p observersParams) (tx.Option, error) {
	otel, err := txotel.New(txotel.WithTracerProvider(p.Tracer), txotel.WithMeterProvider(p.Meter))
	if err != nil {
		return nil, err
	}
	all := append([]tx.Observer{tx.NewZapObserver(p.Logger.Named("tx")), otel}, p.Extra...)
	return tx.WithObserver(tx.Observers(all...)), nil
}

// serverHandler is what the service's HTTP server serves: the API, with a
// server span per request (W3C trace context is taken from the caller).
func serverHandler(h *api.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(h, "txkit",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // txkit.http.* come from the API
		otelhttp.WithPropagators(propagation.TraceContext{}),
	)
}
