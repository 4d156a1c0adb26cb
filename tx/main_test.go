package tx_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envOrphanChild); spec != "" {
		runOrphanChild(spec) // never returns: the parent kills it
	}
	goleak.VerifyTestMain(m)
}
