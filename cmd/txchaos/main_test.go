package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/txkit/txkit/internal/chaos"
)

func TestMain(m *testing.M) {
	// A crash-mode run re-executes this binary as its worker.
	if len(os.Args) > 1 && os.Args[1] == "-worker" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

var lastLine = regexp.MustCompile(`^txchaos: (\d+) ops, (\d+) faults, (\d+) checks, (\d+) violations$`)

// runTxchaos runs the command and checks what every run must print: the
// last line, an exit code that says whether there were violations, and a
// JSON report that agrees with the last line.
func runTxchaos(t *testing.T, args ...string) *chaos.Report {
	t.Helper()
	jsonPath := t.TempDir() + "/report.json"
	var out, errOut bytes.Buffer
	code := run(context.Background(), append(args, "-json", jsonPath, "-progress", "0"), &out, &errOut)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	m := lastLine.FindStringSubmatch(lines[len(lines)-1])
	require.NotNil(t, m, "last line %q; stderr %s", lines[len(lines)-1], errOut.String())
	v, _ := strconv.Atoi(m[4])
	b, err := os.ReadFile(jsonPath)
	require.NoError(t, err)
	var rep chaos.Report
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, m[1], strconv.Itoa(rep.Ops))
	assert.Equal(t, m[2], strconv.Itoa(rep.Faults))
	assert.Len(t, rep.Violations, v)
	assert.Equal(t, v > 0 || len(rep.Errors) > 0, code != 0, "exit code %d with %d violations, errors %v", code, v, rep.Errors)
	return &rep
}

func TestRunReportsAsDocumented(t *testing.T) {
	rep := runTxchaos(t, "-duration", "2s", "-seed", "1", "-workers", "3", "-accounts", "6")
	assert.Greater(t, rep.Ops, 6, "the workload ran beyond funding")
	assert.Positive(t, rep.Faults)
	assert.Positive(t, rep.Checks)
}

func TestCrashModeRestartsTheWorker(t *testing.T) {
	rep := runTxchaos(t, "-crash", "-duration", "6s", "-crash-every", "2s", "-seed", "3", "-workers", "2", "-accounts", "4")
	assert.Positive(t, rep.Ops, "a worker generation logged operations")
	assert.Positive(t, rep.FaultsByKind["crash"], "a worker generation was killed")
}

func TestHTTPModeDrivesTheApp(t *testing.T) {
	bin := t.TempDir() + "/txkit-app"
	out, err := exec.Command("go", "build", "-o", bin, "../../app").CombinedOutput()
	require.NoError(t, err, "%s", out)
	rep := runTxchaos(t, "-http", "-app", bin, "-duration", "3s", "-seed", "4", "-workers", "3", "-accounts", "6")
	assert.Greater(t, rep.Ops, 6, "the workload ran beyond funding")
	assert.NotContains(t, rep.OpsByKind, chaos.OpComposite, "the API has no composite operation")
}

func TestBadFlagsAreRefused(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 2, run(context.Background(), []string{"-workers", "0"}, &out, &errOut))
	assert.Equal(t, 2, run(context.Background(), []string{"extra"}, &out, &errOut))
}

// TestDocsNameRealFlags checks that every flag docs/chaos.md mentions
// exists, and that every flag but the internal ones is documented.
func TestDocsNameRealFlags(t *testing.T) {
	doc, err := os.ReadFile("../../docs/chaos.md")
	require.NoError(t, err)
	fs := flagSet(&flags{})
	for _, m := range regexp.MustCompile("`(-[a-z-]+)`").FindAllStringSubmatch(string(doc), -1) {
		assert.NotNil(t, fs.Lookup(strings.TrimPrefix(m[1], "-")), "docs/chaos.md names %s", m[1])
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Usage, "internal:") {
			assert.Contains(t, string(doc), "`-"+f.Name+"`", "flag -%s is not documented", f.Name)
		}
	})
}
