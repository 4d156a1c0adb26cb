package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/txkit/txkit/app/api"
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
			WriteTimeout:      api.WriteTimeout(p.Config.RequestTimeout),
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
