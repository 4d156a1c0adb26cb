package mongotest

import (
	"context"
	"fmt"
	"net"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Dialer connects a client in the same process to a [Server] in memory:
// no TCP port, no system calls. Give it to
// options.Client().SetDialer; [Server.ClientOptions] does that and sets the
// server's URI too.
type Dialer struct {
	s *Server
}

// Compile-time check: the driver accepts a Dialer.
var _ options.ContextDialer = (*Dialer)(nil)

// Dialer returns a dialer whose connections reach s in memory. It works
// whether or not s listens on TCP.
func (s *Server) Dialer() *Dialer { return &Dialer{s: s} }

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
	client, server := newPipe()
	if !d.s.serveConn(server) {
		_ = client.Close()
		return nil, fmt.Errorf("mongotest: dial %s: server closed", address)
	}
	return client, nil
}
