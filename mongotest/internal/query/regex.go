package query

import (
	"regexp"
	"regexp/syntax"
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
		case 'u':
			// Accepted and redundant: MongoDB always compiles with UTF
			// (pcre_util::flagsToOptions).
		default:
			return nil, merr.New(codeInvalidRegexFlags, "invalid flag in regex options: %c", c)
		}
	}
	src := pattern
	if extended {
		src = stripExtended(src)
	}
	prefix := ""
	if len(flags) > 0 {
		prefix = "(?" + string(flags) + ")"
	}
	whole, final, anchored := translateEnd(src)
	re, err := regexp.Compile(prefix + whole)
	if err != nil {
		return nil, merr.New(codeInvalidRegex, "Regular expression is invalid: %s", err.Error())
	}
	p := &regexPred{re: re, pattern: pattern, options: options}
	if anchored {
		if p.beforeFinalNewline, err = regexp.Compile(prefix + final); err != nil {
			return nil, merr.New(codeInvalidRegex, "Regular expression is invalid: %s", err.Error())
		}
		if tree, err := syntax.Parse(prefix+final, syntax.Perl); err == nil && endFollowed(tree, true) {
			return nil, merr.New(merr.NotImplemented,
				"$regex %q: mongotest cannot evaluate a $ or \\Z that input may follow (PCRE matches it before a final newline, Go's RE2 only at the end)", pattern)
		}
	}
	return p, nil
}

// endFollowed reports whether an end-of-text anchor in re may be followed
// by input it consumes; restEmpty says whether what follows re in the whole
// pattern consumes nothing. Such an anchor can match in PCRE only before a
// final newline that the rest then consumes, which the two RE2 patterns of
// a regexPred do not express.
func endFollowed(re *syntax.Regexp, restEmpty bool) bool {
	switch re.Op {
	case syntax.OpEndText:
		return !restEmpty
	case syntax.OpConcat:
		for i, sub := range re.Sub {
			rest := restEmpty
			for _, after := range re.Sub[i+1:] {
				rest = rest && zeroWidth(after)
			}
			if endFollowed(sub, rest) {
				return true
			}
		}
	case syntax.OpAlternate, syntax.OpCapture, syntax.OpQuest:
		for _, sub := range re.Sub {
			if endFollowed(sub, restEmpty) {
				return true
			}
		}
	case syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		// A repeated sub may be followed by itself.
		return endFollowed(re.Sub[0], restEmpty && zeroWidth(re.Sub[0]))
	}
	return false
}

// zeroWidth reports whether re never consumes input.
func zeroWidth(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpNoMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	case syntax.OpConcat, syntax.OpAlternate, syntax.OpCapture, syntax.OpQuest,
		syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		for _, sub := range re.Sub {
			if !zeroWidth(sub) {
				return false
			}
		}
		return true
	}
	return false
}

// neverMatches is an empty character class: RE2 accepts it and it matches
// nothing.
const neverMatches = `[^\x00-\x{10FFFF}]`

// translateEnd rewrites PCRE's end anchors for RE2. whole is the pattern
// for a whole subject: \Z (end, or before a final newline) becomes a
// non-multiline $. final is the pattern for the subject without its final
// newline, where \z (the very end) can no longer hold. anchored reports
// whether the pattern has a $ or \Z outside a character class, the anchors
// that can match before a final newline in PCRE and not in RE2.
func translateEnd(p string) (whole, final string, anchored bool) {
	var w, f strings.Builder
	emit := func(sw, sf string) {
		w.WriteString(sw)
		f.WriteString(sf)
	}
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			next := p[i+1]
			i++
			switch {
			case inClass:
				emit(p[i-1:i+1], p[i-1:i+1])
			case next == 'Q':
				// \Q...\E quotes everything up to \E (or the end).
				end := strings.Index(p[i+1:], `\E`)
				if end < 0 {
					end = len(p) - i - 1
				} else {
					end += 2
				}
				emit(p[i-1:i+1+end], p[i-1:i+1+end])
				i += end
			case next == 'Z':
				anchored = true
				emit(`(?-m:$)`, `(?-m:$)`)
			case next == 'z':
				emit(`\z`, neverMatches)
			default:
				emit(p[i-1:i+1], p[i-1:i+1])
			}
			continue
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			// A ] first in the class (after an optional ^) is a literal.
			j := i + 1
			if j < len(p) && p[j] == '^' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				emit(p[i:j+1], p[i:j+1])
				i = j
				continue
			}
		case c == '$':
			anchored = true
		}
		emit(string(c), string(c))
	}
	return w.String(), f.String(), anchored
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
