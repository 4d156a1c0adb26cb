//go:build !race

package mongotest

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// pairAllocBudget is what the server and its in-process transport may
// allocate for one insert+find pair. Issue 15 asks for the pair's
// allocations halved, 388 at its start, so 194 with the driver's; the
// driver and the benchmark's own documents take about 170 of them (see
// docs/mongotest.md, "Measured"), and BenchmarkInsertFind/in-process
// measures 193 with this much.
const pairAllocBudget = 23

// An insert and a find by _id, as the driver sends them, cost the server
// and the in-process transport at most pairAllocBudget allocations: the
// messages cross a pipe, a connection's goroutine reads, runs and answers
// them, and the client end reads the replies. (The race detector adds
// allocations of its own, hence the build tag.)
func TestInsertFindPairStaysWithinAllocationBudget(t *testing.T) {
	srv := Start(t, WithoutListener())
	insert, find := captureInsertFind(t, srv)
	client, server := newPipe()
	require.True(t, srv.serveConn(server))
	defer client.Close()

	markerAt := func(wm []byte) int {
		var m [4]byte
		binary.LittleEndian.PutUint32(m[:], uint32(benchMarker))
		i := bytes.Index(wm, m[:])
		require.Positive(t, i)
		return i
	}
	insID, findID := markerAt(insert), markerAt(find)
	txn := bytes.Index(insert, []byte("txnNumber\x00"))
	require.Positive(t, txn)
	txn += len("txnNumber\x00")

	reply := make([]byte, 64<<10)
	roundTrip := func(wm []byte) []byte {
		_, err := client.Write(wm)
		require.NoError(t, err)
		_, err = io.ReadFull(client, reply[:4])
		require.NoError(t, err)
		n := int(binary.LittleEndian.Uint32(reply))
		_, err = io.ReadFull(client, reply[4:n])
		require.NoError(t, err)
		return reply[:n]
	}
	i := int32(1 << 20) // ids Go boxes with an allocation, as most are
	pair := func() {
		i++
		binary.LittleEndian.PutUint32(insert[insID:], uint32(i))
		binary.LittleEndian.PutUint64(insert[txn:], uint64(i)+1000)
		if out := roundTrip(insert); !bytes.Contains(out, []byte("\x10n\x00\x01\x00\x00\x00")) {
			t.Fatalf("insert %d: %q", i, out)
		}
		binary.LittleEndian.PutUint32(find[findID:], uint32(i))
		if out := roundTrip(find); !bytes.Contains(out, []byte("\x04firstBatch\x00")) ||
			bytes.Contains(out, []byte("\x04firstBatch\x00\x05\x00\x00\x00\x00")) {
			t.Fatalf("find %d: %q", i, out)
		}
	}
	pair() // warm up: the connection's buffers, the collection
	allocs := testing.AllocsPerRun(200, pair)
	t.Logf("%.1f allocations per insert+find pair", allocs)
	require.LessOrEqual(t, allocs, float64(pairAllocBudget))
}
