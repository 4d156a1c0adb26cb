package main

import (
	"fmt"
	"go/ast"
	"go/token"
	"strconv"
	"strings"
	"time"
)

// directivePrefix starts every directive, as "//go:" starts the Go
// toolchain's.
const directivePrefix = "//txkit:"

// settings are what the directives of an interface or a method ask for.
// Zero fields are unset.
type settings struct {
	none        bool
	name        string
	propagation string // the tx constant, e.g. "RequiresNew"
	timeout     time.Duration
	maxAttempts int
	pos         token.Pos // the first directive, for errors
}

// over returns s with the fields that m sets replaced by m's.
func (s settings) over(m settings) settings {
	if m.none {
		s.none = true
	}
	if m.name != "" {
		s.name = m.name
	}
	if m.propagation != "" {
		s.propagation = m.propagation
	}
	if m.timeout != 0 {
		s.timeout = m.timeout
	}
	if m.maxAttempts != 0 {
		s.maxAttempts = m.maxAttempts
	}
	if m.pos.IsValid() {
		s.pos = m.pos
	}
	return s
}

func (s settings) any() bool { return s.pos.IsValid() }

// propagations maps directive values to tx's constants. Nested is left out
// on purpose: MongoDB has no savepoints, and tx refuses it at run time.
var propagations = map[string]string{
	"required":      "Required",
	"requires_new":  "RequiresNew",
	"mandatory":     "Mandatory",
	"never":         "Never",
	"supports":      "Supports",
	"not_supported": "NotSupported",
}

// parseDirectives reads the directives in groups (doc and line comments).
// Comments that are not directives are skipped; a comment that looks like
// a misspelt directive is an error, since it would silently do nothing.
func parseDirectives(fset *token.FileSet, groups ...*ast.CommentGroup) (settings, error) {
	var s settings
	seen := map[string]bool{}
	for _, g := range groups {
		if g == nil {
			continue
		}
		for _, c := range g.List {
			text, ok := strings.CutPrefix(c.Text, directivePrefix)
			if !ok {
				if t := strings.TrimSpace(strings.TrimPrefix(c.Text, "//")); strings.HasPrefix(t, "txkit:") {
					return s, fmt.Errorf("%s: %q: write directives without a space, as %s%s", fset.Position(c.Pos()), c.Text, directivePrefix, strings.TrimPrefix(t, "txkit:"))
				}
				continue
			}
			key, value, hasValue := strings.Cut(strings.TrimSpace(text), "=")
			key = strings.TrimSpace(key)
			value = strings.TrimSpace(value)
			errorf := func(format string, args ...any) error {
				return fmt.Errorf("%s: %s: %s", fset.Position(c.Pos()), c.Text, fmt.Sprintf(format, args...))
			}
			if seen[key] {
				return s, errorf("%s given twice", key)
			}
			seen[key] = true
			if !s.pos.IsValid() {
				s.pos = c.Pos()
			}
			if key == "none" {
				if hasValue {
					return s, errorf("none takes no value")
				}
				s.none = true
				continue
			}
			if !hasValue || value == "" {
				return s, errorf("%s needs a value, as %s%s=…", key, directivePrefix, key)
			}
			switch key {
			case "name":
				s.name = value
			case "propagation":
				p, ok := propagations[value]
				if !ok {
					if value == "nested" {
						return s, errorf("nested is not supported: MongoDB has no savepoints")
					}
					return s, errorf("unknown propagation %q (want required, requires_new, mandatory, never, supports or not_supported)", value)
				}
				s.propagation = p
			case "timeout":
				d, err := time.ParseDuration(value)
				if err != nil || d <= 0 {
					return s, errorf("timeout must be a positive duration such as 2s")
				}
				s.timeout = d
			case "max_attempts":
				n, err := strconv.Atoi(value)
				if err != nil || n <= 0 {
					return s, errorf("max_attempts must be a positive integer")
				}
				s.maxAttempts = n
			default:
				return s, errorf("unknown directive %q (want propagation, name, timeout, max_attempts or none)", key)
			}
		}
	}
	if s.none && len(seen) > 1 {
		return s, fmt.Errorf("%s: txkit:none cannot be combined with other directives", fset.Position(s.pos))
	}
	return s, nil
}

// durationExpr renders d as Go source, e.g. "2 * time.Second".
func durationExpr(d time.Duration, timePkg string) string {
	units := []struct {
		d    time.Duration
		name string
	}{
		{time.Hour, "Hour"}, {time.Minute, "Minute"}, {time.Second, "Second"},
		{time.Millisecond, "Millisecond"}, {time.Microsecond, "Microsecond"}, {time.Nanosecond, "Nanosecond"},
	}
	for _, u := range units {
		if d%u.d == 0 {
			if d == u.d {
				return timePkg + "." + u.name
			}
			return strconv.FormatInt(int64(d/u.d), 10) + " * " + timePkg + "." + u.name
		}
	}
	panic("unreachable")
}
