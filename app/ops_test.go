package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Under load, every request still gets its access line: the service's
// logger never samples.
func TestLoggerKeepsEveryLine(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log := buildLogger(format, zapcore.AddSync(&buf))
			const n = 1000
			for i := range n {
				log.Info("request", zap.Int("i", i))
				log.Error("request failed", zap.Int("i", i))
			}
			assert.Equal(t, 2*n, strings.Count(buf.String(), "\n"))
			assert.NotContains(t, buf.String(), "stacktrace", "no stack trace on an error line")
			if format == "console" {
				assert.NotContains(t, buf.String(), "\x1b[", "no colour codes in a log file")
				assert.Contains(t, buf.String(), "INFO\ttxkit\trequest")
			}
		})
	}
}

// Fx's own events are debug lines: quiet at the service's info level.
func TestFxEventsAreQuiet(t *testing.T) {
	var buf bytes.Buffer
	log := buildLogger("json", zapcore.AddSync(&buf))
	app := fx.New(fx.Supply(log), fx.WithLogger(newFxLogger), fx.Provide(func() int { return 1 }), fx.Invoke(func(int) {}))
	require.NoError(t, app.Start(context.Background()))
	require.NoError(t, app.Stop(context.Background()))
	assert.Empty(t, buf.String())
}

// A start that does not finish names the step it was in.
func TestStartFailureNamesTheStep(t *testing.T) {
	steps := &startSteps{}
	app := fx.New(
		fx.WithLogger(func() fxevent.Logger { steps.next = fxevent.NopLogger; return steps }),
		fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStart: func(context.Context) error { return nil }})
			lc.Append(fx.Hook{OnStart: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }})
		}),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := app.Start(ctx)
	require.Error(t, err)
	msg := startError(err, steps.step())
	assert.Contains(t, msg, "TestStartFailureNamesTheStep")
	assert.Contains(t, msg, "did not finish")
	assert.Contains(t, msg, "context deadline exceeded")
}

// A token or secret from a file keeps no trailing newline; one that a
// client could not send is refused at start.
func TestSecretsAreTrimmedOrRefused(t *testing.T) {
	uri := "mongodb://db/?replicaSet=rs0"
	cfg, err := loadConfig(nil, env(map[string]string{envMongoURI: uri,
		envAPIToken: "  token-0123456789abcdef\n", envWebhookSecret: "secret-0123456789abcdef\r\n"}))
	require.NoError(t, err)
	assert.Equal(t, "token-0123456789abcdef", cfg.APIToken)
	assert.Equal(t, "secret-0123456789abcdef", cfg.WebhookSecret)

	_, err = loadConfig(nil, env(map[string]string{envMongoURI: uri,
		envAPIToken: "token 0123456789 abcdef", envWebhookSecret: "secret-0123456789abcdef"}))
	require.ErrorContains(t, err, "TXKIT_API_TOKEN contains whitespace")
	assert.NotContains(t, err.Error(), "0123456789", "the secret is not in the message")
}

// The banner's curl works as pasted when the token comes from the
// environment: the shell must expand $TXKIT_API_TOKEN.
func TestBannerCurlWorksWithTokenFromEnvironment(t *testing.T) {
	var out bytes.Buffer
	ta := startApp(t, func(c *Config) {
		c.MongoURI = ""
		c.Out = &out
	})
	var curls []string
	for line := range strings.Lines(out.String()) {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "curl ") {
			curls = append(curls, s)
		}
	}
	require.Len(t, curls, 2, "banner:\n%s", out.String())
	assert.NotContains(t, out.String(), ta.cfg.APIToken, "a token from the environment is not printed")
	vars := map[string]string{"TXKIT_API_TOKEN": ta.cfg.APIToken}
	res := ta.send(parseCurl(t, curls[0], vars, ""))
	assert.Equal(t, http.StatusCreated, res.Status, "%s", res.Raw)
}

// The production binary links no test code: embedded mode uses mongotest,
// which takes its own small TB, not package testing.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/txkit/txkit/app").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		assert.NotEqual(t, "testing", dep)
		assert.False(t, strings.HasPrefix(dep, "testing/"), dep)
		assert.NotContains(t, dep, "/internal/testenv")
	}
}

// /metrics serves the runner's and the API's metrics in Prometheus's text
// format, to holders of the API token only.
func TestMetricsEndpoint(t *testing.T) {
	ta := startApp(t)
	ta.credit("mia", 10)
	ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/transfers", Key: "m1", Body: `{"from":"mia","to":"noa","amount":5}`})
	ta.mustStatus(http.StatusUnauthorized, req{Method: "GET", Path: "/metrics", NoAuth: true})

	hr, err := http.NewRequest("GET", ta.srv.URL()+"/metrics", nil)
	require.NoError(t, err)
	hr.Header.Set("Authorization", "Bearer "+ta.cfg.APIToken)
	res, err := ta.http.Do(hr)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Type"), "text/plain; version=0.0.4")
	text := string(body)
	for _, want := range []string{
		`txkit_tx_attempts_total{txkit_tx_name="http.idempotent"} 1`,
		`txkit_tx_outcomes_total{txkit_tx_cause="none",txkit_tx_name="http.idempotent",txkit_tx_outcome="committed"} 1`,
		`txkit_tx_duration_seconds_count{txkit_tx_name="http.idempotent",txkit_tx_outcome="committed"} 1`,
		`txkit_http_requests_total{method="POST",route="POST /v1/transfers",status="201"} 1`,
		`txkit_http_requests_total{method="GET",route="GET /metrics",status="401"} 1`,
		`# TYPE txkit_http_request_duration_seconds histogram`,
	} {
		assert.Contains(t, text, want)
	}
}
