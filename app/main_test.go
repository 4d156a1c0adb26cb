package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/txkit/txkit/app/api"
	"github.com/txkit/txkit/internal/testenv"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envKilledChild); spec != "" {
		runKilledChild(spec) // never returns: the parent kills it
	}
	goleak.VerifyTestMain(m)
}

const (
	testToken  = "test-token-0123456789abcdef"
	testSecret = "test-webhook-secret-0123456789"
)

// testApp is the real application (Fx graph and HTTP server) started for
// one test, on a free port, against mongotest (the embedded mode) or
// $MONGODB_URI.
type testApp struct {
	t      *testing.T
	cfg    Config
	srv    *Server
	client *mongo.Client
	db     *mongo.Database
	app    *fxtest.App
	http   *http.Client
}

// startApp starts the application; change adjusts its Config first.
func startApp(t *testing.T, change ...func(*Config)) *testApp {
	t.Helper()
	cfg := Config{
		Addr:            "127.0.0.1:0",
		MongoURI:        os.Getenv(testenv.EnvURI), // empty: embedded mongotest
		DB:              "txkit_e2e_" + randomHex(6),
		APIToken:        testToken,
		WebhookSecret:   testSecret,
		LogFormat:       "json",
		ShutdownTimeout: 5 * time.Second,
		RequestTimeout:  20 * time.Second,
		MongoTimeout:    5 * time.Second,
	}
	for _, c := range change {
		c(&cfg)
	}
	require.NoError(t, cfg.validate())
	ta := &testApp{t: t, cfg: cfg, http: &http.Client{Timeout: 30 * time.Second}}
	ta.app = fxtest.New(t,
		appOptions(cfg),
		fx.Decorate(func() *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }),
		fx.Populate(&ta.srv, &ta.client, &ta.db),
	)
	ta.app.RequireStart()
	t.Cleanup(func() {
		if testenv.Real() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = ta.db.Drop(ctx)
		}
		// Connections the client dialled but never used would hold up the
		// server's drain (net/http treats them as busy for 5 s).
		ta.http.CloseIdleConnections()
		ta.app.RequireStop()
	})
	return ta
}

// on returns ta for use in the subtest t, so that its failures are t's.
func (ta *testApp) on(t *testing.T) *testApp {
	c := *ta
	c.t = t
	return &c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// problemCode returns the code of a problem response.
func (r response) code() string {
	c, _ := r.Body["code"].(string)
	return c
}

// req is one request to send; zero fields take defaults: the bearer
// token, JSON content type when there is a body.
type req struct {
	Method  string
	Path    string
	Body    string
	Key     string // Idempotency-Key
	Headers map[string]string
	NoAuth  bool
}

func (ta *testApp) do(r req) response {
	ta.t.Helper()
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	hr, err := http.NewRequest(r.Method, ta.srv.URL()+r.Path, body)
	require.NoError(ta.t, err)
	if !r.NoAuth {
		hr.Header.Set("Authorization", "Bearer "+ta.cfg.APIToken)
	}
	if r.Body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.Key != "" {
		hr.Header.Set("Idempotency-Key", r.Key)
	}
	for k, v := range r.Headers {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	return ta.send(hr)
}

func (ta *testApp) send(hr *http.Request) response {
	ta.t.Helper()
	res, err := ta.http.Do(hr)
	require.NoError(ta.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(ta.t, err)
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		require.NoError(ta.t, json.Unmarshal(raw, &out.Body), "body: %s", raw)
	}
	if res.StatusCode >= 400 {
		assertProblem(ta.t, out)
	} else {
		assert.Equal(ta.t, "application/json", res.Header.Get("Content-Type"))
	}
	return out
}

// assertProblem checks the RFC 9457 shape every error must have.
func assertProblem(t *testing.T, r response) {
	t.Helper()
	assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"), "body: %s", r.Raw)
	for _, f := range []string{"type", "title", "detail", "code"} {
		v, _ := r.Body[f].(string)
		assert.NotEmpty(t, v, "problem member %q in %s", f, r.Raw)
	}
	assert.Equal(t, float64(r.Status), r.Body["status"], "problem status in %s", r.Raw)
	assert.Regexp(t, `^[a-z]+(_[a-z]+)*$`, r.Body["code"])
	assert.NotEqual(t, http.StatusInternalServerError, r.Status, "a 500: %s", r.Raw)
}

// mustStatus sends r and requires the status.
func (ta *testApp) mustStatus(status int, r req) response {
	ta.t.Helper()
	res := ta.do(r)
	require.Equal(ta.t, status, res.Status, "%s %s: %s", r.Method, r.Path, res.Raw)
	return res
}

func (ta *testApp) credit(account string, amount int64) {
	ta.t.Helper()
	ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/" + account + "/credits",
		Body: `{"amount":` + itoa(amount) + `,"reason":"test"}`, Key: "credit-" + randomHex(8)})
}

func (ta *testApp) balance(account string) map[string]any {
	ta.t.Helper()
	return ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/accounts/" + account}).Body
}

func itoa(n int64) string { return strings.TrimSpace(string(must(json.Marshal(n)))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// signedWebhook builds a webhook request signed at t with secret.
func (ta *testApp) signedWebhook(body string, secret string, t time.Time) *http.Request {
	ta.t.Helper()
	hr, err := http.NewRequest("POST", ta.srv.URL()+"/webhooks/payments", strings.NewReader(body))
	require.NoError(ta.t, err)
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(api.HeaderSignature, api.SignWebhook([]byte(secret), t, []byte(body)))
	return hr
}
