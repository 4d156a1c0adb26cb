package tx

import (
	"testing"
	"time"
)

// SetRekillSchedule makes the registries created until the test ends
// kill the sessions they reap again every every, for window after the
// reap, instead of the production schedule.
func SetRekillSchedule(t testing.TB, every, window time.Duration) {
	old := rekillSchedule
	rekillSchedule.every, rekillSchedule.window = every, window
	t.Cleanup(func() { rekillSchedule = old })
}
