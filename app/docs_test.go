package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocsExamples runs every curl example of docs/app.md, in order, on a
// fresh service, and compares the answer with the http block after it.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/app.md")
	require.NoError(t, err)
	examples := docExamples(t, string(doc))
	require.GreaterOrEqual(t, len(examples), 8, "docs/app.md lost its examples")

	ta := startApp(t)
	vars := map[string]string{"TXKIT_API_TOKEN": ta.cfg.APIToken}
	for i, ex := range examples {
		hr := parseCurl(t, ex.curl, vars, ta.srv.URL())
		t.Run(fmt.Sprintf("example %d: %s %s", i+1, hr.Method, hr.URL.Path), func(t *testing.T) {
			ta := ta.on(t)
			res := ta.send(hr)
			assert.Equal(t, ex.status, res.Status, "%s", res.Raw)
			var want any
			require.NoError(t, json.Unmarshal([]byte(ex.body), &want), "the documented body is not JSON: %s", ex.body)
			var got any
			require.NoError(t, json.Unmarshal(res.Raw, &got))
			matchDocJSON(t, "body", want, got)
		})
	}
}

// TestBannerCurlWorksAsPrinted starts the service as `go run ./app` does in
// embedded mode and runs the curl commands it prints, as printed.
func TestBannerCurlWorksAsPrinted(t *testing.T) {
	var out bytes.Buffer
	ta := startApp(t, func(c *Config) {
		c.MongoURI = ""
		c.APIToken, c.tokenGenerated = randomSecret(), true
		c.Out = &out
	})
	var curls []string
	for line := range strings.Lines(out.String()) {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "curl ") {
			curls = append(curls, s)
		}
	}
	require.Len(t, curls, 2, "banner:\n%s", out.String())
	assert.Contains(t, out.String(), "export TXKIT_API_TOKEN="+ta.cfg.APIToken)
	assert.Contains(t, out.String(), "in-memory")

	res := ta.send(parseCurl(t, curls[0], nil, ""))
	assert.Equal(t, http.StatusCreated, res.Status, "%s", res.Raw)
	res = ta.send(parseCurl(t, curls[1], nil, ""))
	assert.Equal(t, map[string]any{"account": "alice", "balance": float64(100), "held": float64(0), "available": float64(100)}, res.Body)
}

type docExample struct {
	curl   string
	status int
	body   string
}

var fence = regexp.MustCompile("(?ms)^```(\\w*)\\n(.*?)^```")

// docExamples pairs each ```sh block that is one curl command with the
// ```http block that follows it.
func docExamples(t *testing.T, doc string) []docExample {
	var out []docExample
	var pending string
	for _, m := range fence.FindAllStringSubmatch(doc, -1) {
		lang, text := m[1], m[2]
		switch {
		case lang == "sh" && strings.HasPrefix(text, "curl "):
			pending = text
		case lang == "http" && pending != "":
			head, body, ok := strings.Cut(text, "\n\n")
			require.True(t, ok, "http block without a blank line: %s", text)
			f := strings.Fields(head)
			require.GreaterOrEqual(t, len(f), 2, "bad status line %q", head)
			status, err := strconv.Atoi(f[1])
			require.NoError(t, err)
			out = append(out, docExample{curl: pending, status: status, body: body})
			pending = ""
		}
	}
	return out
}

// parseCurl turns a curl command line (as a shell would split it, with
// vars expanded) into a request; base, if set, replaces the documented
// http://127.0.0.1:8080. It knows the options the docs use.
func parseCurl(t *testing.T, cmd string, vars map[string]string, base string) *http.Request {
	t.Helper()
	words := shellWords(t, cmd, vars)
	require.Equal(t, "curl", words[0])
	method, url, data := "", "", ""
	hasData := false
	header := http.Header{}
	for i := 1; i < len(words); i++ {
		switch w := words[i]; w {
		case "-s", "-sS", "--silent":
		case "-X":
			i++
			method = words[i]
		case "-H":
			i++
			k, v, ok := strings.Cut(words[i], ":")
			require.True(t, ok, "bad header %q", words[i])
			header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-d", "--data":
			i++
			data, hasData = words[i], true
		default:
			require.False(t, strings.HasPrefix(w, "-"), "curl option %q is not supported by the docs runner", w)
			url = w
		}
	}
	if method == "" {
		method = "GET"
		if hasData {
			method = "POST"
		}
	}
	if hasData && header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl does
	}
	if base != "" {
		url = strings.Replace(url, "http://127.0.0.1:8080", base, 1)
	}
	var body *strings.Reader
	if hasData {
		body = strings.NewReader(data)
	} else {
		body = strings.NewReader("")
	}
	hr, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	hr.Header = header
	return hr
}

// shellWords splits cmd like sh: quotes, backslash-newline, $VAR.
func shellWords(t *testing.T, cmd string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	in := false // inside a word
	expand := func(s string, i int) (string, int) {
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		name := s[i+1 : j]
		v, ok := vars[name]
		require.True(t, ok, "unknown variable $%s", name)
		return v, j
	}
	for i := 0; i < len(cmd); {
		c := cmd[i]
		switch {
		case c == '\\' && i+1 < len(cmd) && cmd[i+1] == '\n':
			i += 2
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
			i++
		case c == '\'':
			j := strings.IndexByte(cmd[i+1:], '\'')
			require.GreaterOrEqual(t, j, 0, "unterminated '")
			cur.WriteString(cmd[i+1 : i+1+j])
			in, i = true, i+j+2
		case c == '"':
			i++
			for ; i < len(cmd) && cmd[i] != '"'; i++ {
				if cmd[i] == '$' {
					v, j := expand(cmd, i)
					cur.WriteString(v)
					i = j - 1
					continue
				}
				cur.WriteByte(cmd[i])
			}
			require.Less(t, i, len(cmd), "unterminated \"")
			in, i = true, i+1
		case c == '$':
			v, j := expand(cmd, i)
			cur.WriteString(v)
			in, i = true, j
		default:
			cur.WriteByte(c)
			in, i = true, i+1
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// matchDocJSON compares a documented value with an actual one: objects
// must have the same members, and "…" stands for any present value.
func matchDocJSON(t *testing.T, path string, want, got any) {
	t.Helper()
	if want == "…" {
		assert.NotNil(t, got, "%s must be present", path)
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !assert.True(t, ok, "%s: want an object, got %v", path, got) {
			return
		}
		for k := range g {
			_, documented := w[k]
			assert.True(t, documented, "%s.%s is in the answer but not in the docs", path, k)
		}
		for k, v := range w {
			gv, present := g[k]
			if assert.True(t, present, "%s.%s is documented but missing", path, k) {
				matchDocJSON(t, path+"."+k, v, gv)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !assert.True(t, ok, "%s: want an array, got %v", path, got) || !assert.Len(t, g, len(w), path) {
			return
		}
		for i := range w {
			matchDocJSON(t, fmt.Sprintf("%s[%d]", path, i), w[i], g[i])
		}
	default:
		assert.Equal(t, want, got, path)
	}
}

// TestReadmeQuickStartCurl runs the README's quick-start curl commands as
// printed, with the token exported as the README says.
func TestReadmeQuickStartCurl(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	var cmds []string
	for _, m := range fence.FindAllStringSubmatch(string(readme), -1) {
		if m[1] != "sh" || !strings.HasPrefix(m[2], "curl ") {
			continue
		}
		joined := strings.ReplaceAll(m[2], "\\\n", " ")
		for line := range strings.Lines(joined) {
			if s := strings.TrimSpace(line); s != "" {
				cmds = append(cmds, s)
			}
		}
	}
	require.Len(t, cmds, 2, "the README quick start has a credit and a balance curl")

	ta := startApp(t)
	vars := map[string]string{"TXKIT_API_TOKEN": ta.cfg.APIToken}
	res := ta.send(parseCurl(t, cmds[0], vars, ta.srv.URL()))
	assert.Equal(t, http.StatusCreated, res.Status, "%s", res.Raw)
	res = ta.send(parseCurl(t, cmds[1], vars, ta.srv.URL()))
	assert.Equal(t, map[string]any{"account": "alice", "balance": float64(100), "held": float64(0), "available": float64(100)}, res.Body)
}
