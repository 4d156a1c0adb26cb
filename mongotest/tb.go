package mongotest

// TB is the part of testing.TB that [Start] uses. *testing.T, *testing.B
// and *testing.F satisfy it, as does any testing.TB. mongotest takes this
// interface rather than testing.TB so that a program embedding a server
// (txkit's app in its zero-setup mode) does not link package testing.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}
