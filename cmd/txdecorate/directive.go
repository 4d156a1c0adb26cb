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
			if msg := misspelt(c.Text); msg != "" {
				return s, fmt.Errorf("%s: %s: %s", fset.Position(c.Pos()), firstLine(c.Text), msg)
			}
			text, ok := strings.CutPrefix(c.Text, directivePrefix)
			if !ok {
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

// ownerOnly reports whether a scope with propagation p (a tx constant, ""
// for the default Required) can never use max_attempts, and why. Retries
// belong to the scope that starts a transaction: a scope that joins one
// leaves them to its owner (tx ignores a joining scope's attempt limit,
// unless tx.WithStrictJoin makes it an error), and a scope that runs
// without a transaction has nothing to retry. A timeout always applies:
// it bounds a joining scope's callback, or a call without a transaction.
//
//   - Required and RequiresNew may start a transaction: max_attempts applies.
//   - Mandatory always joins: it never does.
//   - Supports joins, or runs without a transaction: it never does.
//   - Never and NotSupported never have a transaction: it never does.
func ownerOnly(p string) (maxAttempts bool, why string) {
	switch p {
	case "Mandatory":
		return true, "propagation=mandatory always joins the caller's transaction, and only the transaction's owner retries"
	case "Supports":
		return true, "propagation=supports never starts a transaction, so it has none to retry"
	case "Never", "NotSupported":
		return true, "propagation=" + snakeProp(p) + " runs without a transaction, so it has none to retry"
	}
	return false, ""
}

func snakeProp(p string) string {
	for k, v := range propagations {
		if v == p {
			return k
		}
	}
	return p
}

// effective returns the settings of method name: the interface's defaults
// overridden by the method's own. A setting that can never take effect
// with the propagation in force is refused when the method (or, for its
// own propagation, the interface) sets it explicitly; an interface
// default that cannot apply to a method is left out of that method, since
// a default is meant for the methods that start transactions.
func effective(fset *token.FileSet, name string, defaults, own settings) (settings, error) {
	s := defaults.over(own)
	noAttempts, why := ownerOnly(s.propagation)
	if !noAttempts || s.maxAttempts == 0 {
		return s, nil
	}
	// A max_attempts beside or below the propagation that rules it out is
	// explicit, hence a mistake; the interface's default under a method's
	// own propagation is a default that does not apply to that method.
	if own.maxAttempts == 0 && own.propagation != "" {
		s.maxAttempts = 0
		return s, nil
	}
	pos := defaults.pos
	if own.maxAttempts > 0 {
		pos = own.pos
	}
	return s, fmt.Errorf("%s: method %s: txkit:max_attempts can never take effect: %s; remove it, or use propagation=required or requires_new", fset.Position(pos), name, why)
}

// checkPlacement reports the first directive in files that would do
// nothing: one not on an interface type or one of its method lines (an
// embedded interface, a comment separated from the method by a blank
// line, a parenthesised type group, a function), one in a block comment,
// or a misspelt prefix (//Txkit:, //txkit none, //txkit-none, //tx:…).
func checkPlacement(fset *token.FileSet, files []*ast.File) error {
	for _, f := range files {
		valid := map[*ast.CommentGroup]bool{}
		where := map[*ast.CommentGroup]string{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GenDecl:
				if n.Tok != token.TYPE {
					return true
				}
				for _, spec := range n.Specs {
					ts := spec.(*ast.TypeSpec)
					if _, ok := ts.Type.(*ast.InterfaceType); ok {
						valid[ts.Doc], valid[ts.Comment] = true, true
						if !n.Lparen.IsValid() {
							valid[n.Doc] = true
						}
					}
				}
				if n.Lparen.IsValid() && n.Doc != nil {
					where[n.Doc] = "above a parenthesised type ( … ) group: put it on the interface inside the group"
				}
			case *ast.InterfaceType:
				for _, field := range n.Methods.List {
					if len(field.Names) > 0 {
						valid[field.Doc], valid[field.Comment] = true, true
						continue
					}
					for _, g := range []*ast.CommentGroup{field.Doc, field.Comment} {
						if g != nil {
							where[g] = "on an embedded interface, where it does nothing: put it on the methods, or on the embedding interface"
						}
					}
				}
			}
			return true
		})
		for _, g := range f.Comments {
			for _, c := range g.List {
				if msg := misspelt(c.Text); msg != "" {
					return fmt.Errorf("%s: %s: %s", fset.Position(c.Pos()), firstLine(c.Text), msg)
				}
				if !strings.HasPrefix(c.Text, directivePrefix) || valid[g] {
					continue
				}
				msg := where[g]
				if msg == "" {
					msg = "misplaced: a directive goes in the doc comment of an interface or of one of its methods, with no blank line before the declaration"
				}
				return fmt.Errorf("%s: %s: %s", fset.Position(c.Pos()), c.Text, msg)
			}
		}
	}
	return nil
}

// misspelt returns why the comment text looks like a directive that is
// not one, or "".
func misspelt(text string) string {
	if body, ok := strings.CutPrefix(text, "/*"); ok {
		for line := range strings.Lines(strings.TrimSuffix(body, "*/")) {
			l := strings.ToLower(strings.TrimLeft(line, " \t*/"))
			if strings.HasPrefix(l, "txkit:") {
				return "directives must be line comments, as " + directivePrefix + "…"
			}
		}
		return ""
	}
	if strings.HasPrefix(text, directivePrefix) {
		return ""
	}
	body := strings.TrimPrefix(text, "//")
	trimmed := strings.TrimLeft(body, " \t")
	lower := strings.ToLower(trimmed)
	spaced := len(trimmed) != len(body)
	switch {
	case spaced && strings.HasPrefix(strings.ReplaceAll(lower, " ", ""), "txkit:"):
		return "write directives without a space, as " + directivePrefix + strings.TrimSpace(trimmed[strings.IndexByte(trimmed, ':')+1:])
	case spaced:
		return "" // prose that mentions txkit
	case strings.HasPrefix(lower, "txkit"):
		return "misspelt directive: directives start with " + directivePrefix + " (lower case, a colon, no space)"
	case strings.HasPrefix(lower, "tx:"):
		return "misspelt directive: txkit's directives start with " + directivePrefix
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
