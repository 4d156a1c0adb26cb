package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"runtime/debug"
	"sync"
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

// AnswerGrace is how long after its -request-timeout a request is
// answered at the latest. A handler still busy then (a database that
// stopped answering during an abort) is cut off from its client: the
// client gets 503 with code outcome_unknown (or timeout, for a read) and
// a Retry-After, never an empty reply, while the handler finishes its
// clean-up in the background of that connection.
const AnswerGrace = 2 * time.Second

// WriteTimeout returns the http.Server WriteTimeout that fits requests
// bounded by requestTimeout: longer than the latest answer
// (requestTimeout + [AnswerGrace]), so that the answer is always written.
func WriteTimeout(requestTimeout time.Duration) time.Duration {
	return requestTimeout + 2*AnswerGrace
}

// guardedWriter remembers what was sent, for the access log, and lets the
// request's guard answer in the handler's place once the handler is late:
// every use of the underlying writer holds mu, and after the guard has
// answered, the handler's writes are discarded.
type guardedWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	header  http.Header // the handler's headers, copied to w when it writes
	status  int         // status sent; 0 before anything is sent
	bytes   int         // body bytes sent
	werr    error       // the first write error: the client did not get it all
	guarded bool        // the guard answered; the handler's writes are dropped
}

func newGuardedWriter(w http.ResponseWriter) *guardedWriter {
	return &guardedWriter{w: w, header: http.Header{}}
}

func (g *guardedWriter) Header() http.Header { return g.header }

func (g *guardedWriter) WriteHeader(code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writeHeaderLocked(code, g.header)
}

func (g *guardedWriter) writeHeaderLocked(code int, h http.Header) {
	if g.status != 0 || g.guarded {
		return
	}
	g.status = code
	dst := g.w.Header()
	for k, v := range h {
		dst[k] = v
	}
	g.w.WriteHeader(code)
}

func (g *guardedWriter) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.guarded {
		return 0, http.ErrHandlerTimeout
	}
	g.writeHeaderLocked(http.StatusOK, g.header)
	n, err := g.w.Write(b)
	g.bytes += n
	if err != nil && g.werr == nil {
		g.werr = err
	}
	return n, err
}

// answerLate sends p in the handler's place if the handler has sent
// nothing yet, flushes it to the client, and from then on drops the
// handler's writes. It reports whether it answered.
func (g *guardedWriter) answerLate(r *http.Request, p problem) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.status != 0 || g.guarded {
		return false
	}
	h := http.Header{"X-Request-Id": g.header.Values("X-Request-Id")}
	pw := &problemBuffer{header: h}
	writeProblem(pw, r, p)
	g.writeHeaderLocked(pw.status, pw.header)
	n, err := g.w.Write(pw.body)
	g.bytes += n
	if err == nil {
		err = http.NewResponseController(g.w).Flush()
	}
	if err != nil && g.werr == nil {
		g.werr = err
	}
	g.guarded = true
	return true
}

// sent returns what the client was sent, for the access log.
func (g *guardedWriter) sent() (status, bytes int, guarded bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status, g.bytes, g.guarded, g.werr
}

// problemBuffer captures what writeProblem writes.
type problemBuffer struct {
	header http.Header
	status int
	body   []byte
}

func (b *problemBuffer) Header() http.Header  { return b.header }
func (b *problemBuffer) WriteHeader(code int) { b.status = code }
func (b *problemBuffer) Write(p []byte) (int, error) {
	b.body = append(b.body, p...)
	return len(p), nil
}

// lateProblem is the answer of a request whose handler is late: for a
// request that may change something, its outcome is unknown.
func lateProblem(r *http.Request) problem {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return problem{Status: http.StatusServiceUnavailable, Code: codeTimeout, Detail: "the request did not finish in time; retry later", RetryAfter: retryAfterSeconds}
	}
	return outcomeUnknownProblem
}

// withRequestLog gives every request an id (kept from X-Request-Id when it
// is well-formed), echoes it, recovers panics into a 500 problem, bounds the
// request's work by timeout, answers in the handler's place once it is
// [AnswerGrace] late, and logs exactly one line per request with what was
// actually sent. Neither the Authorization header nor bodies are logged.
func withRequestLog(log *zap.Logger, metrics *httpMetrics, timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		g := newGuardedWriter(w)
		g.header.Set("X-Request-Id", id)
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), requestIDKey{}, id), timeout)
		defer cancel()
		r = r.WithContext(ctx)

		// The guard runs on a timer of its own; this handler waits for it
		// before returning, so nothing outlives the request.
		// It works on its own shallow copy of r: the mux writes to r.
		guardDone := make(chan struct{})
		guardReq, late := r.WithContext(ctx), lateProblem(r)
		guard := time.AfterFunc(timeout+AnswerGrace, func() {
			defer close(guardDone)
			g.answerLate(guardReq, late)
		})

		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				log.Error("handler panicked", zap.String("request_id", id), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
				if status, _, _, _ := g.sent(); status == 0 {
					writeProblem(g, r, problem{Status: http.StatusInternalServerError, Code: codeInternal, Detail: "internal error; see the server log for request " + id})
				}
			}
			if !guard.Stop() {
				<-guardDone
			}
			status, bytes, answeredLate, werr := g.sent()
			lvl := zap.InfoLevel
			if status >= 500 || status == 0 || werr != nil {
				lvl = zap.ErrorLevel
			}
			fields := []zap.Field{
				zap.String("request_id", id),
				zap.String("method", r.Method),
				zap.String("route", r.Pattern),
				zap.String("path", r.URL.EscapedPath()),
				zap.Int("status", status),
				zap.Int("bytes", bytes),
				zap.Duration("duration", time.Since(start)),
				zap.String("remote", r.RemoteAddr),
			}
			if answeredLate {
				fields = append(fields, zap.Bool("answered_late", true))
			}
			if werr != nil {
				fields = append(fields, zap.NamedError("write_error", werr))
			}
			log.Log(lvl, "request", fields...)
			metrics.record(ctx, r.Pattern, r.Method, status, time.Since(start))
			if p == http.ErrAbortHandler {
				panic(p)
			}
		}()
		next.ServeHTTP(g, r)
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
