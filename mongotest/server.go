package mongotest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap"
)

// Server is an in-process MongoDB-compatible server. Clients reach it over
// TCP (unless [WithoutListener] is given) or in memory through
// [Server.Dialer]. Create one with [NewServer] or, in tests, [Start].
type Server struct {
	opts serverOptions
	log  *zap.Logger
	ln   net.Listener
	addr string // host:port as clients dial it

	// processID identifies this server instance in topologyVersion.
	processID bson.ObjectID
	clock     clock

	// core is the state behind the wire layer (storage, sessions, cursors,
	// fail points); see core.go.
	core *core

	// handler runs each request; it is s.dispatch except in tests that
	// need a misbehaving command.
	handler func(context.Context, *request) bson.D

	// ctx is cancelled by Close; every request runs under it.
	ctx    context.Context
	cancel context.CancelFunc

	nextConnID atomic.Int64
	nextOpID   atomic.Int32
	nextReqID  atomic.Int32

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	// clients groups connections by client; see clientGroup.
	clients map[string]*clientGroup

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the accept loop and every connection goroutine
}

// NewServer starts a server listening on the configured address (or on
// none, with [WithoutListener]). It returns once the listener is bound:
// [Server.URI] is usable at once.
func NewServer(opts ...Option) (*Server, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.replSet == "" {
		return nil, errors.New("mongotest: replica set name must not be empty")
	}

	processID := bson.NewObjectID()
	// Without a listener the server still needs a host:port to report in
	// hello replies and in URI; an .invalid name (RFC 2606) never resolves,
	// so only the server's Dialer reaches it.
	var ln net.Listener
	addr := "mongotest-" + processID.Hex() + ".invalid:27017"
	if o.listen {
		var err error
		if ln, err = net.Listen("tcp", o.addr); err != nil {
			return nil, fmt.Errorf("mongotest: listen on %s: %w", o.addr, err)
		}
		addr = dialAddr(ln.Addr())
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      o,
		log:       o.logger,
		ln:        ln,
		addr:      addr,
		processID: processID,
		ctx:       ctx,
		cancel:    cancel,
		conns:     make(map[*conn]struct{}),
		clients:   make(map[string]*clientGroup),
	}
	s.handler = s.dispatch
	s.core = newCore(o.txnLifetime, s.clock.tick)
	s.clock.tick()

	s.wg.Add(1)
	go s.housekeepLoop()
	if ln != nil {
		s.wg.Add(1)
		go s.acceptLoop()
		s.log.Info("mongotest server listening", zap.String("addr", s.addr), zap.String("replicaSet", o.replSet))
	} else {
		s.log.Info("mongotest server running in process only", zap.String("addr", s.addr), zap.String("replicaSet", o.replSet))
	}
	return s, nil
}

// Start starts a server for the duration of a test or benchmark: it fails tb
// if the server cannot start and closes the server in tb.Cleanup.
func Start(tb TB, opts ...Option) *Server {
	tb.Helper()
	s, err := NewServer(opts...)
	if err != nil {
		tb.Fatalf("start mongotest server: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close mongotest server: %v", err)
		}
	})
	return s
}

// Addr returns the host:port clients dial, e.g. "127.0.0.1:54321". It is
// also the member address the server reports in hello replies. Without a
// listener it is a name that does not resolve, which only [Server.Dialer]
// connects to.
func (s *Server) Addr() string { return s.addr }

// URI returns a connection string for the server, e.g.
// "mongodb://127.0.0.1:54321/?replicaSet=rs0". Without a listener, a client
// needs [Server.Dialer] as well; [Server.ClientOptions] sets both.
func (s *Server) URI() string {
	return "mongodb://" + s.addr + "/?replicaSet=" + url.QueryEscape(s.opts.replSet)
}

// Close stops accepting connections, closes every open connection and waits
// for all of the server's goroutines to return. It is safe to call more
// than once; later calls return the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()

		// Cancel first so requests blocked in the server (awaitable hello,
		// blocked fail points) return before their connection closes.
		s.cancel()
		if s.ln != nil {
			if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				s.closeErr = fmt.Errorf("mongotest: close listener: %w", err)
			}
		}
		for _, c := range conns {
			_ = c.nc.Close()
		}
		s.wg.Wait()
		s.log.Info("mongotest server closed", zap.String("addr", s.addr))
	})
	return s.closeErr
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient errors such as EMFILE: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if !s.serveConn(nc) {
			return
		}
	}
}

// serveConn serves nc on a goroutine of its own until either side closes
// it. It reports false, closing nc, when the server is closed.
func (s *Server) serveConn(nc net.Conn) bool {
	c := s.newConn(nc)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer s.forget(c)
		c.serve(s.ctx)
	}()
	return true
}

// housekeepLoop runs core housekeeping (transaction lifetime limit, idle
// sessions and cursors) until Close. The period follows the lifetime limit
// so that short limits set in tests are enforced promptly.
func (s *Server) housekeepLoop() {
	defer s.wg.Done()
	period := min(time.Second, max(10*time.Millisecond, s.opts.txnLifetime/10))
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.core.housekeep(now)
		case <-s.ctx.Done():
			return
		}
	}
}

// connCount returns the number of open client connections.
func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.leaveClient(c)
	s.mu.Unlock()
}

// dialAddr turns a listener address into one clients can dial: a wildcard
// host (":0", "0.0.0.0:0") becomes 127.0.0.1.
func dialAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		// Go's wildcard listeners are dual-stack, so IPv4 loopback works
		// for both ":0" and "[::]:0".
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

// clusterTime returns the server's current logical time, the value every
// reply carries as $clusterTime and (by default) operationTime.
func (s *Server) clusterTime() bson.Timestamp { return s.clock.now() }

// clock is a hybrid logical clock: T follows wall-clock seconds and I
// counts ticks within one second, so values only ever grow even when the
// wall clock steps back.
type clock struct {
	mu  sync.Mutex
	cur bson.Timestamp
}

func (c *clock) now() bson.Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (c *clock) tick() bson.Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	sec := uint32(time.Now().Unix())
	switch {
	case sec > c.cur.T:
		c.cur = bson.Timestamp{T: sec, I: 1}
	case c.cur.I == ^uint32(0):
		c.cur = bson.Timestamp{T: c.cur.T + 1, I: 1}
	default:
		c.cur.I++
	}
	return c.cur
}
