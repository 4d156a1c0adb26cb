package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// requestIDKey carries the request id in a request's context.
type requestIDKey struct{}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID is what a client-supplied X-Request-Id must look like to
// be kept (and logged); anything else is replaced.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusRecorder remembers what a handler wrote, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequestLog gives every request an id (kept from X-Request-Id when it
// is well-formed), echoes it, recovers panics into a 500 problem, bounds the
// request's work by timeout and logs one line per request. Neither the
// Authorization header nor bodies are logged.
func withRequestLog(log *zap.Logger, timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), requestIDKey{}, id), timeout)
		defer cancel()
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("handler panicked", zap.String("request_id", id), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
				if rec.status == 0 {
					writeProblem(rec, r, problem{Status: http.StatusInternalServerError, Code: codeInternal, Detail: "internal error; see the server log for request " + id})
				}
			}
			lvl := zap.InfoLevel
			if rec.status >= 500 {
				lvl = zap.ErrorLevel
			}
			log.Log(lvl, "request",
				zap.String("request_id", id),
				zap.String("method", r.Method),
				zap.String("route", r.Pattern),
				zap.String("path", r.URL.EscapedPath()),
				zap.Int("status", rec.status),
				zap.Int("bytes", rec.bytes),
				zap.Duration("duration", time.Since(start)),
				zap.String("remote", r.RemoteAddr),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// problemMux answers the requests its mux has no route for (404, 405) with
// problems instead of the mux's plain text, keeping its Allow header.
func problemMux(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			mux.ServeHTTP(&problemWriter{ResponseWriter: w, r: r}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// problemWriter turns the mux's own error responses into problems.
type problemWriter struct {
	http.ResponseWriter
	r       *http.Request
	written bool
}

func (w *problemWriter) WriteHeader(code int) {
	if w.written {
		return
	}
	w.written = true
	if code < 400 { // a redirect to the cleaned path
		w.ResponseWriter.WriteHeader(code)
		return
	}
	p := problem{Status: code, Code: codeNotFound, Detail: "no such route: " + w.r.Method + " " + w.r.URL.Path}
	if code == http.StatusMethodNotAllowed {
		p.Code = codeMethodNotAllowed
		p.Detail = "method " + w.r.Method + " is not allowed here; see the Allow header"
	}
	writeProblem(w.ResponseWriter, w.r, p)
}

func (w *problemWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if w.ResponseWriter.Header().Get("Content-Type") == "application/problem+json" {
		return len(b), nil // the mux's text, already replaced
	}
	return w.ResponseWriter.Write(b)
}
