package mongotest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Dialer connects a client in the same process to a [Server] in memory:
// no TCP port, no system calls. Give it to
// options.Client().SetDialer; [Server.ClientOptions] does that and sets the
// server's URI too.
type Dialer struct {
	s     *Server
	group *connGroup
}

// connGroup is the connections of one in-process client (one Dialer), or
// all TCP connections, whose clients the server cannot tell apart.
//
// When the client closes one of them, as its Disconnect does, the
// awaitable hellos of the others answer at once, and those that start in
// the next second wait at most postCloseAwait: mongo-driver's Disconnect
// can otherwise wait a whole maxAwaitTimeMS for a monitor check that it
// failed to cancel (a race in its heartbeat listener: the check may start
// just after Disconnect closed the pool). Connections of other groups are
// not woken: a closed connection is no topology change.
type connGroup struct {
	mu        sync.Mutex
	gone      chan struct{}
	lastClose time.Time
}

// postCloseAwait bounds an awaitable hello that starts soon after its
// group lost a connection; see connGroup.
const postCloseAwait = 100 * time.Millisecond

// limit returns how long an awaitable hello asking for d may wait.
func (g *connGroup) limit(d time.Duration) time.Duration {
	if g == nil {
		return d
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.lastClose) < time.Second {
		return min(d, postCloseAwait)
	}
	return d
}

func newConnGroup() *connGroup { return &connGroup{gone: make(chan struct{})} }

// closed returns a channel closed when a client next closes one of the
// group's connections.
func (g *connGroup) closed() <-chan struct{} {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gone
}

func (g *connGroup) clientClosed() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gone)
	g.gone = make(chan struct{})
	g.lastClose = time.Now()
}

// Compile-time check: the driver accepts a Dialer.
var _ options.ContextDialer = (*Dialer)(nil)

// Dialer returns a dialer whose connections reach s in memory. It works
// whether or not s listens on TCP.
// Each call returns a dialer for one client.
func (s *Server) Dialer() *Dialer { return &Dialer{s: s, group: newConnGroup()} }

// ClientOptions returns client options that connect to s in memory: its
// URI and its [Server.Dialer]. Options applied after them may add to them
// (an app name, timeouts), but a later ApplyURI would replace the hosts.
func (s *Server) ClientOptions() *options.ClientOptions {
	return options.Client().ApplyURI(s.URI()).SetDialer(s.Dialer())
}

// DialContext opens an in-memory connection to the server. address must be
// the server's own ([Server.Addr]): a client that tries to reach another
// host through this dialer gets an error rather than this server.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if address != d.s.addr {
		return nil, fmt.Errorf("mongotest: in-process dialer of %s cannot dial %s %s", d.s.addr, network, address)
	}
	client, server := net.Pipe()
	if !d.s.serveConn(server, d.group) {
		_ = client.Close()
		return nil, fmt.Errorf("mongotest: dial %s: server closed", address)
	}
	return client, nil
}
