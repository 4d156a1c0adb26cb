//go:build !unix

package mongotest

import "testing"

// ReportCPU reports nothing where getrusage does not exist.
func ReportCPU(*testing.B) {}
