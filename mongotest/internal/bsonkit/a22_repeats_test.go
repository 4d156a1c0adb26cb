package bsonkit_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

func a22Value(rng *rand.Rand, depth int) any {
	switch k := rng.IntN(9); {
	case k == 0 && depth < 3:
		n := rng.IntN(3)
		d := bson.D{}
		for i := 0; i < n; i++ {
			d = append(d, bson.E{Key: fmt.Sprint("k", rng.IntN(3)), Value: a22Value(rng, depth+1)})
		}
		return d
	case k == 1 && depth < 3:
		n := rng.IntN(3)
		a := bson.A{}
		for i := 0; i < n; i++ {
			a = append(a, a22Value(rng, depth+1))
		}
		return a
	case k == 2:
		return int32(rng.IntN(1000) - 500)
	case k == 3:
		return fmt.Sprint("s", rng.IntN(5))
	case k == 4:
		return bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(rng.IntN(2))}, 16)}
	case k == 5:
		return bson.Timestamp{T: uint32(rng.IntN(2)), I: 1}
	case k == 6:
		return int64(rng.IntN(3))
	}
	return nil
}

func a22Lsid(rng *rand.Rand) any {
	switch rng.IntN(4) {
	case 0:
		return bson.D{}
	case 1:
		return a22Value(rng, 1)
	}
	return bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(rng.IntN(2))}, 16)}}}
}

// DecodeCommand, with a Repeats shared along a random stream of commands
// (lsid and $clusterTime repeated, changed, duplicated, deeper), returns
// exactly what decoding each part on its own returns: the same values of
// the same Go types, nil and empty alike.
func TestA22DecodeCommandStreamIsDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 22))
	repeats := &bsonkit.Repeats{Names: [2]string{"lsid", "$clusterTime"}}
	for i := 0; i < 3000; i++ {
		var body bson.D
		body = append(body, bson.E{Key: "cmd", Value: int32(1)})
		for n := rng.IntN(5); n > 0; n-- {
			switch rng.IntN(4) {
			case 0:
				body = append(body, bson.E{Key: "lsid", Value: a22Lsid(rng)})
			case 1:
				body = append(body, bson.E{Key: "$clusterTime", Value: bson.D{{Key: "clusterTime", Value: bson.Timestamp{T: uint32(rng.IntN(2)), I: 1}}}})
			default:
				body = append(body, bson.E{Key: fmt.Sprint("f", rng.IntN(3)), Value: a22Value(rng, 1)})
			}
		}
		if rng.IntN(8) == 0 {
			// over maxSharedCommand: decoded apart
			body = append(body, bson.E{Key: "big", Value: strings.Repeat("b", 5000)})
		}
		raw, err := bson.Marshal(body)
		require.NoError(t, err)
		var seqs []bsonkit.Sequence
		want, err := bsonkit.Decode(raw)
		require.NoError(t, err)
		for s := rng.IntN(3); s > 0; s-- {
			var data []byte
			arr := bson.A{}
			for n := rng.IntN(3); n > 0; n-- {
				d := bson.D{{Key: "x", Value: a22Value(rng, 1)}}
				if rng.IntN(3) == 0 {
					d = append(d, bson.E{Key: "lsid", Value: a22Lsid(rng)})
				}
				r, _ := bson.Marshal(d)
				data = append(data, r...)
				dd, _ := bsonkit.Decode(r)
				arr = append(arr, dd)
			}
			if len(arr) == 0 {
				continue // an empty sequence: see TestA22EmptyDocumentSequence...
			}
			name := fmt.Sprint("seq", s)
			seqs = append(seqs, bsonkit.Sequence{Name: name, Docs: data, N: len(arr)})
			want = append(want, bson.E{Key: name, Value: arr})
		}
		got, err := bsonkit.DecodeCommand(raw, seqs, repeats)
		require.NoError(t, err)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("command %d:\nwant %#v\ngot  %#v", i, want, got)
		}
	}
}

// An empty document sequence is an empty array, never nil (which encodes
// as null), whatever else the command holds (finding
// mongotest-empty-doc-sequence-null).
func TestA22DecodeCommandEmptySequenceIsEmptyArray(t *testing.T) {
	for _, body := range []bson.D{
		{{Key: "create", Value: "v"}, {Key: "$db", Value: "d"}},
		{{Key: "create", Value: "v"}, {Key: "arr", Value: bson.A{int32(1)}}, {Key: "$db", Value: "d"}},
	} {
		raw, err := bson.Marshal(body)
		require.NoError(t, err)
		got, err := bsonkit.DecodeCommand(raw, []bsonkit.Sequence{{Name: "pipeline"}}, nil)
		require.NoError(t, err)
		v, _ := bsonkit.Get(got, "pipeline")
		a, ok := v.(bson.A)
		require.True(t, ok)
		require.NotNil(t, a, "body %v", body)
		out, err := bsonkit.AppendDocument(nil, got)
		require.NoError(t, err)
		require.Equal(t, bson.TypeArray, bson.Raw(out).Lookup("pipeline").Type, "body %v", body)
	}
}
