package mongotest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"

	"github.com/txkit/txkit/mongotest"
)

// captured is one command a client sent, in the order of all of its
// connections together, as a proxy in front of the server sees them.
type captured struct {
	conn      int // the connection, numbered in dial order
	name      string
	handshake bool // a hello/isMaster carrying client metadata
}

// captureDialer dials the server in memory and records what the client
// sends, as the driver's own integration tests do with their proxy dialer.
type captureDialer struct {
	next *mongotest.Dialer
	mu   sync.Mutex
	n    int
	log  []captured
}

func (d *captureDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := d.next.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	return &captureConn{Conn: nc, d: d, id: d.n}, nil
}

func (d *captureDialer) since(i int) []captured {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]captured(nil), d.log[i:]...)
}

func (d *captureDialer) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.log)
}

type captureConn struct {
	net.Conn
	d   *captureDialer
	id  int
	buf []byte
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.buf = append(c.buf, b...)
	for len(c.buf) >= 4 {
		n := int(binary.LittleEndian.Uint32(c.buf))
		if len(c.buf) < n {
			break
		}
		c.record(c.buf[:n])
		c.buf = c.buf[n:]
	}
	return c.Conn.Write(b)
}

func (c *captureConn) record(wm []byte) {
	_, _, _, op, rem, _ := wiremessage.ReadHeader(wm)
	var doc bsoncore.Document
	switch op {
	case wiremessage.OpMsg:
		_, rem, _ = wiremessage.ReadMsgFlags(rem)
		_, rem, _ = wiremessage.ReadMsgSectionType(rem)
		doc, _, _ = wiremessage.ReadMsgSectionSingleDocument(rem)
	//lint:ignore SA1019 drivers send their handshake as OP_QUERY
	case wiremessage.OpQuery:
		rem = rem[4:]
		rem = rem[bytes.IndexByte(rem, 0)+1+8:]
		doc, _, _ = bsoncore.ReadDocument(rem)
	}
	elems, _ := doc.Elements()
	if len(elems) == 0 {
		return
	}
	name := elems[0].Key()
	_, hasClient := doc.Lookup("client").DocumentOK()
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.d.log = append(c.d.log, captured{conn: c.id, name: name, handshake: hasClient})
}

// A driver's first message on a new connection is its handshake, and
// nothing the monitor sends comes in between: the monitor's awaitable
// hello waits out maxAwaitTimeMS, however many connections the client
// closes meanwhile (here, each idle one). The driver's own integration
// tests check the first captured message this way.
func TestFirstMessageOnANewConnectionIsItsHandshake(t *testing.T) {
	srv := mongotest.Start(t)
	d := &captureDialer{next: srv.Dialer()}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetDialer(d).
		SetMaxConnIdleTime(time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Disconnect(context.Background())) })
	ctx := context.Background()
	require.NoError(t, client.Ping(ctx, nil))

	for round := range 20 {
		time.Sleep(5 * time.Millisecond) // the pooled connection goes idle
		mark := d.len()
		require.NoError(t, client.Ping(ctx, nil))
		got := d.since(mark)
		require.NotEmpty(t, got)
		require.True(t, got[0].handshake, "round %d: first message %q on connection %d, not a handshake: %+v",
			round, got[0].name, got[0].conn, got)
	}
}
