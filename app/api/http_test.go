package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A handler that is still busy AnswerGrace after the request's deadline is
// answered for: 503 outcome_unknown with Retry-After, and the one access
// line says what the client got.
func TestLateHandlerIsAnsweredAndLoggedOnce(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	release := make(chan struct{})
	h := withRequestLog(zap.New(core), nil, 10*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		<-release // the clean-up of a hung database
		writeJSON(w, http.StatusCreated, map[string]string{"late": "yes"})
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	res, err := http.Post(srv.URL, "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	close(release)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, string(body), `"code":"outcome_unknown"`)
	assert.Equal(t, "1", res.Header.Get("Retry-After"))
	assert.NotEmpty(t, res.Header.Get("X-Request-Id"))

	require.Eventually(t, func() bool { return logs.FilterMessage("request").Len() == 1 }, 5*time.Second, 10*time.Millisecond)
	line := logs.FilterMessage("request").All()[0].ContextMap()
	assert.Equal(t, int64(http.StatusServiceUnavailable), line["status"], "the log says what was sent, not what the handler wrote late")
	assert.Equal(t, true, line["answered_late"])
}

// A read that is late is a plain timeout: nothing could have changed.
func TestLateReadIsATimeout(t *testing.T) {
	h := withRequestLog(zap.NewNop(), nil, 10*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		time.Sleep(AnswerGrace + 100*time.Millisecond)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), "GET", "/v1/accounts/a", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), `"code":"timeout"`)
}
