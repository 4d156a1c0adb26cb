//go:build unix

package mongotest

import (
	"syscall"
	"testing"
	"time"
)

// ReportCPU, called before a benchmark's loop, reports after it the
// process's CPU time (user and system, every goroutine: driver, server and
// the garbage collector) per iteration as cpu-ns/op. On a machine shared
// with other work, wall time per op grows with the load; CPU time much
// less so.
func ReportCPU(b *testing.B) {
	start := processCPU()
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		}
	})
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
