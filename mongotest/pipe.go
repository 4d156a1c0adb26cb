package mongotest

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// newPipe returns the two ends of an in-memory, full-duplex connection.
// Unlike net.Pipe, a write never waits for the reader: each direction is
// a growing buffer, as a socket's is, so a request or reply crosses in one
// hand-off instead of one per read.
func newPipe() (client, server net.Conn) {
	a, b := newPipeBuf(), newPipeBuf()
	return &pipeConn{in: a, out: b, local: pipeAddr("client"), remote: pipeAddr("mongotest")},
		&pipeConn{in: b, out: a, local: pipeAddr("mongotest"), remote: pipeAddr("client")}
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return "pipe" }

// maxKeptPipeBuf bounds the buffer a pipe keeps between messages.
const maxKeptPipeBuf = 1 << 20

// pipeBuf is one direction of a pipe.
type pipeBuf struct {
	mu   sync.Mutex
	data []byte
	// buf is data's backing array, kept while empty for the next write so
	// that a request or reply does not allocate (unless it is large).
	buf      []byte
	eof      bool          // the writer closed: reads drain data, then io.EOF
	closed   bool          // the reader closed: reads and writes fail
	deadline time.Time     // read deadline
	wake     chan struct{} // a pending reader is poked here (capacity 1)
}

func newPipeBuf() *pipeBuf { return &pipeBuf{wake: make(chan struct{}, 1)} }

func (p *pipeBuf) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pipeBuf) read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			return 0, io.ErrClosedPipe
		case len(p.data) > 0:
			n := copy(b, p.data)
			p.data = p.data[n:]
			if len(p.data) == 0 {
				p.data = nil
				if cap(p.buf) > maxKeptPipeBuf {
					p.buf = nil
				}
			}
			p.mu.Unlock()
			return n, nil
		case p.eof:
			p.mu.Unlock()
			return 0, io.EOF
		case !p.deadline.IsZero() && !time.Now().Before(p.deadline):
			p.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		deadline := p.deadline
		p.mu.Unlock()
		if deadline.IsZero() {
			<-p.wake
			continue
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-p.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (p *pipeBuf) write(b []byte) (int, error) {
	p.mu.Lock()
	if p.closed || p.eof {
		p.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	if len(p.data) == 0 {
		p.data = p.buf[:0]
	}
	p.data = append(p.data, b...)
	if len(p.data) == len(b) {
		p.buf = p.data[:0] // data starts its array: keep the array for reuse
	}
	p.mu.Unlock()
	p.poke()
	return len(b), nil
}

// pipeConn is one end of a pipe: it reads in and writes out.
type pipeConn struct {
	in, out       *pipeBuf
	local, remote net.Addr
}

func (c *pipeConn) Read(b []byte) (int, error)  { return c.in.read(b) }
func (c *pipeConn) Write(b []byte) (int, error) { return c.out.write(b) }

// Close ends both directions: this end's reads and writes fail, and the
// other end reads what was written, then io.EOF.
func (c *pipeConn) Close() error {
	c.in.mu.Lock()
	c.in.closed = true
	c.in.mu.Unlock()
	c.in.poke()
	c.out.mu.Lock()
	c.out.eof = true
	c.out.mu.Unlock()
	c.out.poke()
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }

func (c *pipeConn) SetDeadline(t time.Time) error {
	return c.SetReadDeadline(t)
}

func (c *pipeConn) SetReadDeadline(t time.Time) error {
	c.in.mu.Lock()
	changed := !t.Equal(c.in.deadline)
	c.in.deadline = t
	c.in.mu.Unlock()
	if changed {
		// A pending read re-arms its timer. The driver sets the same
		// (zero) deadline before every read: no wake-up for that.
		c.in.poke()
	}
	return nil
}

// SetWriteDeadline has nothing to bound: writes never wait.
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }
