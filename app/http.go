package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Server is the HTTP server of the service, started and stopped with the
// application: OnStart binds the listener (so an address in use fails the
// start) and serves in a goroutine; OnStop stops accepting and drains
// in-flight requests, within Config.ShutdownTimeout.
type Server struct {
	srv  *http.Server
	addr atomic.Pointer[string]
	done chan struct{} // closed when Serve has returned
}

// ServerParams are the dependencies of [NewServer].
type ServerParams struct {
	fx.In

	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
	Config     Config
	Handler    http.Handler
	Logger     *zap.Logger
}

// NewServer returns the server of p.Handler and registers its lifecycle.
func NewServer(p ServerParams) *Server {
	log := p.Logger.Named("http")
	s := &Server{
		srv: &http.Server{
			Handler:           p.Handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      p.Config.RequestTimeout + 10*time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          zap.NewStdLog(log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		},
		done: make(chan struct{}),
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", p.Config.Addr)
			if err != nil {
				return fmt.Errorf("http: listen on %s: %w", p.Config.Addr, err)
			}
			addr := ln.Addr().String()
			s.addr.Store(&addr)
			log.Info("listening", zap.String("addr", addr))
			go func() {
				defer close(s.done)
				if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("serve failed; stopping the application", zap.Error(err))
					_ = p.Shutdowner.Shutdown(fx.ExitCode(1))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, p.Config.ShutdownTimeout)
			defer cancel()
			log.Info("draining in-flight requests", zap.Duration("bound", p.Config.ShutdownTimeout))
			err := s.srv.Shutdown(ctx)
			if err != nil {
				// Out of time: cut what is left. A request cut here has not
				// been answered, so no client holds a 2xx for lost work.
				_ = s.srv.Close()
				err = fmt.Errorf("http: shutdown: %w", err)
			}
			<-s.done
			return err
		},
	})
	return s
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() string {
	if p := s.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// URL returns the server's base URL, once started.
func (s *Server) URL() string { return "http://" + s.Addr() }

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
