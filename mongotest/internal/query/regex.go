package query

import (
	"regexp"
	"strings"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

// MongoDB's codes for a bad regex.
const (
	codeInvalidRegex      int32 = 51091
	codeInvalidRegexFlags int32 = 51108
)

// newRegexPred compiles a PCRE pattern with MongoDB's options (i, m, s, x)
// into Go's RE2. Patterns RE2 cannot express (backreferences, lookaround)
// are reported as invalid.
func newRegexPred(pattern, options string) (*regexPred, error) {
	if strings.IndexByte(pattern, 0) >= 0 {
		return nil, merr.New(merr.BadValue, "Regular expression cannot contain an embedded null byte")
	}
	var flags []byte
	extended := false
	for i := 0; i < len(options); i++ {
		switch c := options[i]; c {
		case 'i', 'm', 's':
			flags = append(flags, c)
		case 'x':
			extended = true
		default:
			return nil, merr.New(codeInvalidRegexFlags, "invalid flag in regex options: %c", c)
		}
	}
	src := pattern
	if extended {
		src = stripExtended(src)
	}
	if len(flags) > 0 {
		src = "(?" + string(flags) + ")" + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, merr.New(codeInvalidRegex, "Regular expression is invalid: %s", err.Error())
	}
	return &regexPred{re: re, pattern: pattern, options: options}, nil
}

// stripExtended implements PCRE's x flag, which RE2 lacks: unescaped
// whitespace outside character classes is dropped, and # starts a comment
// running to the end of the line.
func stripExtended(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			i++
			b.WriteByte(p[i])
			continue
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			continue
		case c == '#':
			for i < len(p) && p[i] != '\n' {
				i++
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
