package bsonkit_test

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

// codecCorpus holds every BSON type, nested, empty and edge values: what
// Decode and Append must treat exactly as the driver does.
func codecCorpus() []bson.D {
	oid := bson.NewObjectID()
	dec, _ := bson.ParseDecimal128("-1234.5678E-10")
	return []bson.D{
		{},
		{{Key: "ping", Value: int32(1)}, {Key: "$db", Value: "admin"}},
		{
			{Key: "double", Value: 1.5}, {Key: "nan", Value: math.NaN()}, {Key: "negzero", Value: math.Copysign(0, -1)},
			{Key: "string", Value: "héllo\x00world"}, {Key: "empty", Value: ""},
			{Key: "doc", Value: bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: bson.D{}}}},
			{Key: "arr", Value: bson.A{int32(1), "two", bson.D{{Key: "x", Value: nil}}, bson.A{}, bson.A{bson.A{int64(3)}}}},
			{Key: "bin", Value: bson.Binary{Subtype: 0, Data: []byte{1, 2, 3}}},
			{Key: "binOld", Value: bson.Binary{Subtype: 2, Data: []byte{4, 5}}},
			{Key: "uuid", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}},
			{Key: "binEmpty", Value: bson.Binary{Subtype: 0x80, Data: []byte{}}},
			{Key: "undef", Value: bson.Undefined{}},
			{Key: "oid", Value: oid},
			{Key: "t", Value: true}, {Key: "f", Value: false},
			{Key: "date", Value: bson.NewDateTimeFromTime(time.Date(2026, 11, 30, 1, 2, 3, 4e6, time.UTC))},
			{Key: "null", Value: nil},
			{Key: "regex", Value: bson.Regex{Pattern: "^a.*", Options: "xi"}},
			{Key: "dbptr", Value: bson.DBPointer{DB: "db.c", Pointer: oid}},
			{Key: "js", Value: bson.JavaScript("function() {}")},
			{Key: "sym", Value: bson.Symbol("sym")},
			{Key: "cws", Value: bson.CodeWithScope{Code: "f()", Scope: bson.D{{Key: "x", Value: int32(1)}, {Key: "y", Value: bson.A{"z"}}}}},
			{Key: "i32", Value: int32(math.MinInt32)}, {Key: "i32max", Value: int32(math.MaxInt32)},
			{Key: "ts", Value: bson.Timestamp{T: 1700000000, I: 7}},
			{Key: "i64", Value: int64(math.MinInt64)}, {Key: "small64", Value: int64(5)},
			{Key: "dec", Value: dec},
			{Key: "min", Value: bson.MinKey{}}, {Key: "max", Value: bson.MaxKey{}},
		},
		{{Key: "dup", Value: int32(1)}, {Key: "dup", Value: int32(2)}, {Key: "", Value: "empty key"}},
		// An empty array or document with no other array or document
		// element: what the driver sends for a nil slice with
		// NilSliceAsEmpty. It must stay [] and {}, never become null.
		{{Key: "x", Value: bson.A{}}},
		{{Key: "y", Value: bson.D{}}},
		{{Key: "x", Value: bson.A{}}, {Key: "y", Value: bson.D{}}, {Key: "z", Value: bson.A{bson.A{}, bson.D{}}}},
	}
}

// A decoded document encodes back to the same bytes: nothing read is
// changed on the way out (an empty array stays [], not null).
func TestDecodeThenAppendIsIdentity(t *testing.T) {
	for _, give := range codecCorpus() {
		raw, err := bson.Marshal(give)
		require.NoError(t, err)
		got, err := bsonkit.Decode(raw)
		require.NoError(t, err)
		out, err := bsonkit.AppendDocument(nil, got)
		require.NoError(t, err)
		require.Equal(t, bson.Raw(raw).String(), bson.Raw(out).String())
	}
}

func TestDecodeIsUnmarshal(t *testing.T) {
	for _, give := range codecCorpus() {
		raw, err := bson.Marshal(give)
		require.NoError(t, err)
		var want bson.D
		require.NoError(t, bson.Unmarshal(raw, &want))
		got, err := bsonkit.Decode(raw)
		require.NoError(t, err)
		require.Equal(t, withoutNaN(want), withoutNaN(got))
		require.NotNil(t, got)
	}
}

func TestDecodeCopiesBytes(t *testing.T) {
	raw, err := bson.Marshal(bson.D{{Key: "b", Value: bson.Binary{Data: []byte{1, 2}}}, {Key: "s", Value: "ab"}})
	require.NoError(t, err)
	got, err := bsonkit.Decode(raw)
	require.NoError(t, err)
	for i := range raw {
		raw[i] = 0xff
	}
	require.Equal(t, bson.D{{Key: "b", Value: bson.Binary{Data: []byte{1, 2}}}, {Key: "s", Value: "ab"}}, got)
}

func TestDecodeRefusesWhatUnmarshalRefuses(t *testing.T) {
	tests := []struct {
		name string
		give []byte
	}{
		{name: "a truncated document", give: []byte{10, 0, 0, 0, 0x10, 'a', 0}},
		{name: "a bad boolean", give: []byte{10, 0, 0, 0, 0x08, 'a', 0, 7, 0, 0}},
		{name: "an unknown type", give: []byte{10, 0, 0, 0, 0x77, 'a', 0, 0, 0, 0}},
		{name: "a string without its NUL", give: []byte{15, 0, 0, 0, 0x02, 'a', 0, 2, 0, 0, 0, 'x', 'y', 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bson.D
			wantErr := bson.Unmarshal(tt.give, &want)
			got, err := bsonkit.Decode(tt.give)
			if wantErr != nil {
				require.EqualError(t, err, wantErr.Error())
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestAppendDocumentIsMarshal(t *testing.T) {
	corpus := codecCorpus()
	// Values the server builds itself, beside decoded ones: Go ints, nil
	// documents and arrays, slices of documents, maps, times.
	corpus = append(corpus, bson.D{
		{Key: "int", Value: 5}, {Key: "bigint", Value: math.MaxInt64},
		{Key: "nilD", Value: bson.D(nil)}, {Key: "nilA", Value: bson.A(nil)},
		{Key: "docs", Value: []bson.D{{{Key: "a", Value: 1}}}},
		{Key: "strs", Value: []string{"a", "b"}},
		{Key: "map", Value: bson.M{"k": "v"}},
		{Key: "time", Value: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{Key: "float32", Value: float32(1.25)},
		{Key: "uint8", Value: uint8(3)},
		{Key: "raw", Value: bson.Raw(mustMarshal(t, bson.D{{Key: "r", Value: true}}))},
		{Key: "regexUnsorted", Value: bson.Regex{Pattern: "p", Options: "smix"}},
		{Key: "manyElems", Value: bson.A{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
	})
	for _, give := range corpus {
		want, err := bson.Marshal(give)
		require.NoError(t, err)
		got, err := bsonkit.AppendDocument([]byte("prefix"), give)
		require.NoError(t, err)
		require.Equal(t, append([]byte("prefix"), want...), got)
		n, err := bsonkit.Size(give)
		require.NoError(t, err)
		require.Equal(t, len(want), n)
		m, err := bsonkit.Marshal(give)
		require.NoError(t, err)
		require.Equal(t, want, m)
	}
}

func TestAppendDocumentRefusesWhatMarshalRefuses(t *testing.T) {
	tests := []struct {
		name string
		give bson.D
	}{
		{name: "a key with a NUL", give: bson.D{{Key: "a\x00b", Value: int32(1)}}},
		{name: "a nested key with a NUL", give: bson.D{{Key: "d", Value: bson.D{{Key: "\x00", Value: true}}}}},
		{name: "a regex with a NUL", give: bson.D{{Key: "r", Value: bson.Regex{Pattern: "a\x00"}}}},
		{name: "a channel", give: bson.D{{Key: "c", Value: bson.A{make(chan int)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, wantErr := bson.Marshal(tt.give)
			require.Error(t, wantErr)
			got, err := bsonkit.AppendDocument([]byte("x"), tt.give)
			require.Error(t, err)
			require.Equal(t, []byte("x"), got)
		})
	}
}

// withoutNaN replaces NaN doubles, which no two values equal, by a
// string, so that documents holding them compare.
func withoutNaN(v any) any {
	switch x := v.(type) {
	case bson.D:
		out := make(bson.D, len(x))
		for i, e := range x {
			out[i] = bson.E{Key: e.Key, Value: withoutNaN(e.Value)}
		}
		return out
	case bson.A:
		out := make(bson.A, len(x))
		for i, e := range x {
			out[i] = withoutNaN(e)
		}
		return out
	case float64:
		if math.IsNaN(x) {
			return "NaN float64"
		}
	}
	return v
}

func mustMarshal(t *testing.T, d bson.D) []byte {
	t.Helper()
	b, err := bson.Marshal(d)
	require.NoError(t, err)
	return b
}

// FuzzDecode holds Decode to bson.Unmarshal on any bytes that pass the
// driver's validation, and AppendDocument to bson.Marshal on the result.
func FuzzDecode(f *testing.F) {
	for _, d := range codecCorpus() {
		b, err := bson.Marshal(d)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want bson.D
		wantErr := bson.Unmarshal(raw, &want)
		got, err := bsonkit.Decode(raw)
		if wantErr != nil {
			require.Error(t, err, "want %v", wantErr)
			return
		}
		require.NoError(t, err)
		require.Equal(t, withoutNaN(want), withoutNaN(got))
		wantBytes, wantErr := bson.Marshal(want)
		gotBytes, err := bsonkit.Marshal(got)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, wantBytes, gotBytes)
	})
}

// The documents and arrays of one Decode share an allocation: appending
// to one must not write into its neighbour.
func TestDecodedDocumentsGrowApart(t *testing.T) {
	give := bson.D{
		{Key: "a", Value: bson.D{{Key: "x", Value: int32(1)}}},
		{Key: "b", Value: bson.D{{Key: "y", Value: int32(2)}}},
		{Key: "l", Value: bson.A{int32(1)}},
		{Key: "m", Value: bson.A{int32(2)}},
	}
	raw, err := bson.Marshal(give)
	require.NoError(t, err)
	got, err := bsonkit.Decode(raw)
	require.NoError(t, err)
	a := append(got[0].Value.(bson.D), bson.E{Key: "z", Value: int32(9)})
	l := append(got[2].Value.(bson.A), int32(9))
	got = append(got, bson.E{Key: "top", Value: true})
	require.Equal(t, bson.D{{Key: "x", Value: int32(1)}, {Key: "z", Value: int32(9)}}, a)
	require.Equal(t, bson.A{int32(1), int32(9)}, l)
	require.Equal(t, append(give, bson.E{Key: "top", Value: true}), got, "neighbours unchanged")
}

// Short strings, binaries and keys decoded again come from a cache: the
// values must be those of the bytes, whatever the cache held, also when
// many goroutines decode different values that share cache slots.
func TestDecodeCachedValuesAreExact(t *testing.T) {
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 3000 {
				n := (i*7 + g) % 2500
				give := bson.D{
					{Key: "k" + string(rune('a'+n%26)) + string(rune('a'+n/26%26)), Value: "s" + strconv.Itoa(n)},
					{Key: "bin", Value: bson.Binary{Subtype: byte(n % 5), Data: []byte(strconv.Itoa(n))}},
					{Key: "long", Value: strings.Repeat("x", 40) + strconv.Itoa(n)},
				}
				raw, err := bson.Marshal(give)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := bsonkit.Decode(raw)
				if err != nil || !assert.Equal(t, give, got) {
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// A command decoded with its document sequences is the body decoded, then
// one array field per sequence holding its documents decoded, in order; and
// appending to any decoded document or array never writes into another.
func TestDecodeCommandAppendsSequencesAsArrays(t *testing.T) {
	corpus := codecCorpus()
	body, err := bson.Marshal(bson.D{{Key: "insert", Value: "c"}, {Key: "arr", Value: bson.A{int32(1), bson.D{}}}, {Key: "$db", Value: "d"}})
	require.NoError(t, err)
	var docs, updates []byte
	var wantDocs, wantUpdates bson.A
	for i, d := range corpus {
		raw, err := bson.Marshal(d)
		require.NoError(t, err)
		want, err := bsonkit.Decode(raw)
		require.NoError(t, err)
		if i%2 == 0 {
			docs, wantDocs = append(docs, raw...), append(wantDocs, want)
		} else {
			updates, wantUpdates = append(updates, raw...), append(wantUpdates, want)
		}
	}
	want, err := bsonkit.Decode(body)
	require.NoError(t, err)
	want = append(want, bson.E{Key: "documents", Value: wantDocs}, bson.E{Key: "updates", Value: wantUpdates})

	got, err := bsonkit.DecodeCommand(body, []bsonkit.Sequence{
		{Name: "documents", Docs: docs, N: len(wantDocs)},
		{Name: "updates", Docs: updates, N: len(wantUpdates)},
	}, nil)
	require.NoError(t, err)
	require.Equal(t, bsonkit.FormatValue(want), bsonkit.FormatValue(got))

	// Grow every document and array: nothing else may change.
	before := bsonkit.FormatValue(got)
	for _, e := range got[:len(got)-2] {
		if a, ok := e.Value.(bson.A); ok {
			_ = append(a, "x")
		}
	}
	for _, v := range append(got[len(got)-2].Value.(bson.A), got[len(got)-1].Value.(bson.A)...) {
		_ = append(v.(bson.D), bson.E{Key: "x", Value: "x"})
	}
	_ = append(got[len(got)-2].Value.(bson.A), "x")
	require.Equal(t, before, bsonkit.FormatValue(got))
}

// A command decoded with Repeats is the command Decode returns, whether its
// remembered fields repeat the last command's bytes (then their values are
// shared), differ, or sit deeper than the top level.
func TestDecodeCommandWithRepeatsDecodesAsDecode(t *testing.T) {
	repeats := &bsonkit.Repeats{Names: [2]string{"lsid", "$clusterTime"}}
	lsid := func(b byte) bson.D {
		return bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{b}, 16)}}}
	}
	cmd := func(id bson.D, ct uint32, filter bson.D) []byte {
		raw, err := bson.Marshal(bson.D{
			{Key: "find", Value: "c"}, {Key: "filter", Value: filter}, {Key: "lsid", Value: id},
			{Key: "$clusterTime", Value: bson.D{{Key: "clusterTime", Value: bson.Timestamp{T: ct, I: 1}}}},
			{Key: "$db", Value: "d"},
		})
		require.NoError(t, err)
		return raw
	}
	tests := []struct {
		give     []byte
		wantSame bool // lsid shared with the previous command's
	}{
		{give: cmd(lsid(1), 1, bson.D{})},
		{give: cmd(lsid(1), 1, bson.D{{Key: "lsid", Value: lsid(2)}}), wantSame: true},
		{give: cmd(lsid(2), 1, bson.D{{Key: "lsid", Value: lsid(1)}})},
		{give: cmd(lsid(2), 2, bson.D{}), wantSame: true},
		{give: cmd(bson.D{}, 2, bson.D{})},
	}
	var prev bson.D
	for i, tt := range tests {
		want, err := bsonkit.Decode(tt.give)
		require.NoError(t, err)
		got, err := bsonkit.DecodeCommand(tt.give, nil, repeats)
		require.NoError(t, err)
		require.Equal(t, bsonkit.FormatValue(want), bsonkit.FormatValue(got), "command %d", i)
		gotLsid, _ := bsonkit.Get(got, "lsid")
		if prev != nil {
			prevLsid, _ := bsonkit.Get(prev, "lsid")
			d, p := gotLsid.(bson.D), prevLsid.(bson.D)
			shared := len(d) > 0 && len(p) > 0 && &d[0] == &p[0]
			require.Equal(t, tt.wantSame, shared, "command %d", i)
		}
		prev = got
	}
}
