package mongotest

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Bytes cross a pipe in order whatever the sizes of writes and reads, also
// when writes come while earlier bytes are still unread (the buffer a pipe
// keeps between messages must never hand out bytes twice).
func TestPipeCarriesBytesInOrder(t *testing.T) {
	client, server := newPipe()
	defer client.Close()
	defer server.Close()
	// Lost bytes would leave a read waiting: fail instead.
	require.NoError(t, server.SetReadDeadline(time.Now().Add(10*time.Second)))
	var want, got bytes.Buffer
	buf := make([]byte, 7)
	for i := range 200 {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i*13%97)
		want.Write(msg)
		_, err := client.Write(msg)
		require.NoError(t, err)
		if i%3 == 0 {
			continue // leave bytes unread across the next write
		}
		for got.Len() < want.Len()-i%5 {
			n, err := server.Read(buf)
			require.NoError(t, err)
			got.Write(buf[:n])
		}
	}
	for got.Len() < want.Len() {
		n, err := server.Read(buf)
		require.NoError(t, err)
		got.Write(buf[:n])
	}
	require.Equal(t, want.Bytes(), got.Bytes())
}

// A read deadline set while a read waits ends that read; setting the same
// deadline again, as the driver does before every read, changes nothing.
func TestPipeReadDeadline(t *testing.T) {
	client, server := newPipe()
	defer client.Close()
	defer server.Close()
	buf := make([]byte, 4)

	errc := make(chan error, 1)
	go func() {
		_, err := client.Read(buf)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, client.SetReadDeadline(time.Now().Add(-time.Second)))
	select {
	case err := <-errc:
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		require.NoError(t, client.Close()) // ends the read, which the new deadline did not
		t.Fatal("a read kept waiting after its deadline passed")
	}

	require.NoError(t, client.SetReadDeadline(time.Time{}))
	require.NoError(t, client.SetReadDeadline(time.Time{}))
	go func() {
		_, err := io.ReadFull(client, buf)
		errc <- err
	}()
	_, err := server.Write([]byte("pong"))
	require.NoError(t, err)
	require.NoError(t, <-errc)
	require.Equal(t, "pong", string(buf))

	deadline := time.Now().Add(30 * time.Millisecond)
	require.NoError(t, client.SetReadDeadline(deadline))
	require.NoError(t, client.SetReadDeadline(deadline))
	_, err = client.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
}
