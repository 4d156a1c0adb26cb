// Package collation parses MongoDB collation documents and compares strings
// under them with golang.org/x/text/collate (ICU's algorithm, CLDR data).
//
// Supported: locale (any CLDR locale x/text knows, ICU's "en_US" and
// "@collation=" forms included), strength 1–5, caseLevel, numericOrdering,
// backwards, normalization, maxVariable. Refused, because x/text does not
// implement them: alternate "shifted" and caseFirst "upper"/"lower".
package collation

import (
	"strings"
	"sync"
	"unicode"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Server codes for a bad collation document.
const (
	codeMissingLocale int32 = 40414
	codeUnknownField  int32 = 40415
)

// Collation compares strings under a collation. A nil *Collation is the
// simple (binary) collation. It is safe for concurrent use.
type Collation struct {
	mu  sync.Mutex
	c   *collate.Collator
	buf collate.Buffer
	// caseC breaks ties by case for caseLevel below strength 3: a
	// tertiary collator applied to the strings without their diacritics,
	// as ICU's case level looks at case only.
	caseC *collate.Collator
	spec  bson.D
	full  bson.D
}

// Parse reads a command's collation option. An absent option (nil) and
// {locale: "simple"} give nil, the binary collation.
func Parse(v any) (*Collation, error) {
	if v == nil {
		return nil, nil
	}
	d, ok := v.(bson.D)
	if !ok {
		return nil, merr.New(merr.TypeMismatch, "BSON field 'collation' is the wrong type '%s', expected type 'object'", bsonkit.TypeAlias(v))
	}
	var locale string
	hasLocale := false
	opts := []string{}
	strength := int64(3)
	caseLevel := false
	// full is the spec with MongoDB's defaults filled in, as listIndexes
	// shows an index's collation.
	flags := map[string]bool{}
	caseFirst, alternate, maxVariable := "off", "non-ignorable", "punct"
	for _, e := range d {
		switch e.Key {
		case "locale":
			s, ok := e.Value.(string)
			if !ok {
				return nil, wrongType("locale", e.Value, "string")
			}
			locale, hasLocale = s, true
		case "strength":
			n, ok := bsonkit.ToInt64(e.Value)
			if !bsonkit.IsNumber(e.Value) || !ok || n < 1 || n > 5 {
				return nil, merr.New(merr.BadValue, "Enumeration value '%s' for field 'strength' is not a valid value.", bsonkit.FormatValue(e.Value))
			}
			strength = n
		case "caseLevel", "numericOrdering", "backwards", "normalization":
			b, ok := e.Value.(bool)
			if !ok {
				return nil, wrongType(e.Key, e.Value, "bool")
			}
			key := map[string]string{"numericOrdering": "kn", "backwards": "kb"}[e.Key]
			if key != "" && b {
				opts = append(opts, key+"-true")
			}
			caseLevel = caseLevel || (e.Key == "caseLevel" && b)
			flags[e.Key] = b
		case "caseFirst":
			s, _ := e.Value.(string)
			switch s {
			case "off":
				caseFirst = s
			case "upper", "lower":
				return nil, merr.New(merr.BadValue, "collation caseFirst '%s' is not supported by mongotest", s)
			default:
				return nil, merr.New(merr.BadValue, "Enumeration value '%v' for field 'caseFirst' is not a valid value.", e.Value)
			}
		case "alternate":
			s, _ := e.Value.(string)
			switch s {
			case "non-ignorable":
				alternate = s
			case "shifted":
				return nil, merr.New(merr.BadValue, "collation alternate 'shifted' is not supported by mongotest")
			default:
				return nil, merr.New(merr.BadValue, "Enumeration value '%v' for field 'alternate' is not a valid value.", e.Value)
			}
		case "maxVariable":
			s, _ := e.Value.(string)
			if s != "punct" && s != "space" {
				return nil, merr.New(merr.BadValue, "Enumeration value '%v' for field 'maxVariable' is not a valid value.", e.Value)
			}
			maxVariable = s
		case "version":
		default:
			return nil, merr.New(codeUnknownField, "BSON field 'collation.%s' is an unknown field.", e.Key)
		}
	}
	if !hasLocale {
		return nil, merr.New(codeMissingLocale, "BSON field 'collation.locale' is missing but a required field")
	}
	if locale == "simple" {
		if len(d) > 1 {
			return nil, merr.New(merr.BadValue, "If 'locale' is set to 'simple', no other fields may be specified")
		}
		return nil, nil
	}
	tag, err := parseLocale(locale)
	if err != nil {
		return nil, merr.New(merr.BadValue, "Field 'locale' is invalid in: %s", bsonkit.FormatValue(d))
	}
	opts = append(opts, "ks-"+[]string{"", "level1", "level2", "level3", "level4", "identic"}[strength])
	full, err := language.Parse(tag + "-u-" + strings.Join(opts, "-"))
	if err != nil {
		return nil, merr.New(merr.BadValue, "Field 'locale' is invalid in: %s", bsonkit.FormatValue(d))
	}
	c := &Collation{c: collate.New(full, collate.OptionsFromTag(full)), spec: d, full: bson.D{
		{Key: "locale", Value: locale}, {Key: "caseLevel", Value: flags["caseLevel"]},
		{Key: "caseFirst", Value: caseFirst}, {Key: "strength", Value: int32(strength)},
		{Key: "numericOrdering", Value: flags["numericOrdering"]}, {Key: "alternate", Value: alternate},
		{Key: "maxVariable", Value: maxVariable}, {Key: "normalization", Value: flags["normalization"]},
		{Key: "backwards", Value: flags["backwards"]}, {Key: "version", Value: icuVersion},
	}}
	if caseLevel && strength < 3 {
		t3, _ := language.Parse(tag)
		c.caseC = collate.New(t3)
	}
	return c, nil
}

func wrongType(field string, v any, want string) error {
	return merr.New(merr.TypeMismatch, "BSON field 'collation.%s' is the wrong type '%s', expected type '%s'", field, bsonkit.TypeAlias(v), want)
}

// parseLocale turns an ICU locale id ("en_US", "de@collation=phonebook")
// into a BCP 47 tag x/text collates with, refusing ones it has no data for.
func parseLocale(locale string) (string, error) {
	id, variant, _ := strings.Cut(locale, "@")
	id = strings.ReplaceAll(id, "_", "-")
	t, err := language.Parse(id)
	if err != nil {
		return "", err
	}
	base, conf := t.Base()
	if conf == language.No {
		return "", errUnsupported
	}
	supported := false
	for _, s := range collate.Supported() {
		if b, _ := s.Base(); b == base {
			supported = true
			break
		}
	}
	if !supported && id != "root" {
		return "", errUnsupported
	}
	tag := t.String()
	if co, ok := strings.CutPrefix(variant, "collation="); ok {
		tag += "-u-co-" + co
	}
	return tag, nil
}

type unsupportedError struct{}

func (unsupportedError) Error() string { return "unsupported locale" }

var errUnsupported error = unsupportedError{}

// Compare orders a and b under c; a nil c compares bytes.
func (c *Collation) Compare(a, b string) int {
	if c == nil {
		return strings.Compare(a, b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.c.CompareString(a, b); r != 0 || c.caseC == nil {
		return r
	}
	return c.caseC.CompareString(stripMarks(a), stripMarks(b))
}

// stripMarks removes combining marks (diacritics) after canonical
// decomposition.
func stripMarks(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Key returns a string that is equal for two strings exactly when Compare
// finds them equal: the collation's sort key.
func (c *Collation) Key(s string) string {
	if c == nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	key := string(c.c.KeyFromString(&c.buf, s))
	if c.caseC != nil {
		c.buf.Reset()
		key += "\x00" + string(c.caseC.KeyFromString(&c.buf, stripMarks(s)))
	}
	return key
}

// StringCompare returns Compare as a function, or nil for the simple
// collation, the form bsonkit.CompareWith takes.
func (c *Collation) StringCompare() func(a, b string) int {
	if c == nil {
		return nil
	}
	return c.Compare
}

// icuVersion is the collator version MongoDB 7.0 reports: its ICU's.
const icuVersion = "57.1"

// Full is the collation document with every default filled in, as
// MongoDB stores an index's collation and listIndexes shows it.
func (c *Collation) Full() bson.D {
	if c == nil {
		return nil
	}
	return c.full
}

// Spec is the collation document as given.
func (c *Collation) Spec() bson.D {
	if c == nil {
		return nil
	}
	return c.spec
}
