package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDemoHoldsEveryInvariant(t *testing.T) {
	var out bytes.Buffer
	code := runDemo(nil, &out)
	assert.Equal(t, 0, code, "%s", out.String())
	assert.Contains(t, out.String(), "all invariants held")
	assert.NotContains(t, out.String(), "FAIL")
	assert.Contains(t, out.String(), "1 transaction retry", "the injected commit failure happened")
}
