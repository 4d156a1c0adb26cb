package engine

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

var ns = Namespace{DB: "db", Coll: "c"}

func count(t *Txn) int {
	n := 0
	t.Scan(ns, func(bson.D) bool { n++; return true })
	return n
}

func TestSnapshotIsolation(t *testing.T) {
	e := New(nil)
	w := e.Begin()
	require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: 1}}))
	r := e.Begin()
	require.Equal(t, 0, count(r), "uncommitted insert is invisible")
	w.Commit()
	require.Equal(t, 0, count(r), "a snapshot does not see later commits")
	require.Equal(t, 1, count(e.Begin()))
	require.Equal(t, bson.D{{Key: "_id", Value: 1}}, e.Begin().FindID(ns, int64(1)), "1 and 1L are the same _id")
}

func TestFirstWriterWins(t *testing.T) {
	e := New(nil)
	seed := e.Begin()
	doc := bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}}
	require.NoError(t, seed.Insert(ns, doc))
	seed.Commit()

	a, b := e.Begin(), e.Begin()
	require.NoError(t, a.Replace(ns, doc, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1}}))
	var c *Conflict
	require.ErrorAs(t, b.Replace(ns, doc, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 2}}), &c)
	a.Commit()
	require.ErrorAs(t, b.Replace(ns, doc, doc), &c, "changed after b's snapshot")
	b.Abort()
	require.Equal(t, int32(1), int32(e.Begin().FindID(ns, 1)[1].Value.(int)))
}

func TestUniqueIndexAcrossTransactions(t *testing.T) {
	e := New(nil)
	_, _, _, err := e.CreateIndexes(ns, []IndexSpec{{Name: "k_1", Keys: bson.D{{Key: "k", Value: 1}}, Unique: true}})
	require.NoError(t, err)
	a, b := e.Begin(), e.Begin()
	require.NoError(t, a.Insert(ns, bson.D{{Key: "_id", Value: 1}, {Key: "k", Value: "x"}}))
	var c *Conflict
	require.ErrorAs(t, b.Insert(ns, bson.D{{Key: "_id", Value: 2}, {Key: "k", Value: "x"}}), &c)
	a.Commit()
	plain := e.Begin()
	err = plain.Insert(ns, bson.D{{Key: "_id", Value: 3}, {Key: "k", Value: "x"}})
	var me *merr.Error
	require.True(t, errors.As(err, &me))
	require.Equal(t, merr.DuplicateKey, me.Code)
}

func TestAbortDiscards(t *testing.T) {
	e := New(nil)
	a := e.Begin()
	require.NoError(t, a.Insert(ns, bson.D{{Key: "_id", Value: "a"}}))
	a.Abort()
	require.Equal(t, 0, count(e.Begin()))
	b := e.Begin()
	require.NoError(t, b.Insert(ns, bson.D{{Key: "_id", Value: "a"}}))
	b.Commit()
	require.Equal(t, 1, count(e.Begin()))
}

func TestScanEqualUsesIndexAndSnapshot(t *testing.T) {
	e := New(nil)
	_, _, _, err := e.CreateIndexes(ns, []IndexSpec{{Name: "a_1_b_1", Keys: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}}})
	require.NoError(t, err)
	w := e.Begin()
	require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}, {Key: "b", Value: int32(1)}}))
	require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: "x"}, {Key: "b", Value: 2.0}}))
	require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: 3}, {Key: "a", Value: "y"}, {Key: "b", Value: int64(1)}}))
	w.Commit()

	r := e.Begin()
	docs, used := r.ScanEqual(ns, bson.D{{Key: "b", Value: int64(1)}, {Key: "a", Value: "x"}})
	require.True(t, used)
	require.Len(t, docs, 1)
	require.Equal(t, 1, docs[0][0].Value)

	_, used = r.ScanEqual(ns, bson.D{{Key: "a", Value: "x"}})
	require.False(t, used, "a prefix does not cover the compound index")

	// An update moving a document out of the key is seen per snapshot.
	u := e.Begin()
	require.NoError(t, u.Replace(ns, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "z"}, {Key: "b", Value: int32(1)}}))
	u.Commit()
	docs, _ = r.ScanEqual(ns, bson.D{{Key: "a", Value: "x"}, {Key: "b", Value: 1}})
	require.Len(t, docs, 1, "the old snapshot still sees the old version")
	docs, _ = e.Begin().ScanEqual(ns, bson.D{{Key: "a", Value: "x"}, {Key: "b", Value: 1}})
	require.Empty(t, docs)
}

func TestCreateIndexesConflicts(t *testing.T) {
	spec := func(name string, keys bson.D, unique bool, partial bson.D) IndexSpec {
		s := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: keys}, {Key: "name", Value: name}}
		if partial != nil {
			s = append(s, bson.E{Key: "partialFilterExpression", Value: partial})
		}
		return IndexSpec{Name: name, Keys: keys, Unique: unique, Spec: s}
	}
	a := bson.D{{Key: "a", Value: int32(1)}}
	b := bson.D{{Key: "b", Value: int32(1)}}
	active := bson.D{{Key: "s", Value: "active"}}
	tests := []struct {
		name     string
		give     IndexSpec
		wantCode int32 // 0: accepted
		wantN    int   // indexes after
	}{
		{name: "identical index is a no-op", give: spec("a_1", a, true, nil), wantN: 2},
		{name: "same name, other keys", give: spec("a_1", b, true, nil), wantCode: merr.IndexKeySpecsConflict, wantN: 2},
		{name: "same name, other partial filter", give: spec("a_1", a, true, active), wantCode: merr.IndexKeySpecsConflict, wantN: 2},
		{name: "same name, other options", give: spec("a_1", a, false, nil), wantCode: merr.IndexOptionsConflict, wantN: 2},
		{name: "same keys, other name", give: spec("x", a, true, nil), wantCode: merr.IndexOptionsConflict, wantN: 2},
		{name: "same keys, other name and options", give: spec("x", a, false, nil), wantCode: merr.IndexOptionsConflict, wantN: 2},
		{name: "same keys, other partial filter", give: spec("x", a, false, active), wantN: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(nil)
			_, _, _, err := e.CreateIndexes(ns, []IndexSpec{spec("a_1", a, true, nil)})
			require.NoError(t, err)
			_, after, _, err := e.CreateIndexes(ns, []IndexSpec{tt.give})
			if tt.wantCode == 0 {
				require.NoError(t, err)
				require.Equal(t, tt.wantN, after)
				return
			}
			var me *merr.Error
			require.ErrorAs(t, err, &me)
			require.Equal(t, tt.wantCode, me.Code)
			specs, err := e.ListIndexes(ns)
			require.NoError(t, err)
			require.Len(t, specs, tt.wantN)
		})
	}
}

// indexSize counts the (key, record) pairs of ns's index name.
func indexSize(e *Engine, name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, set := range e.coll(ns).findIndex(name).entries {
		n += len(set)
	}
	return n
}

func TestIndexEntriesDoNotGrowWithOverwrites(t *testing.T) {
	e := New(nil)
	_, _, _, err := e.CreateIndexes(ns, []IndexSpec{{Name: "v_1", Keys: bson.D{{Key: "v", Value: 1}}}})
	require.NoError(t, err)
	w := e.Begin()
	require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}}))
	w.Commit()
	for i := 1; i <= 100; i++ {
		u := e.Begin()
		require.NoError(t, u.Replace(ns, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: i}}))
		require.NoError(t, u.Replace(ns, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: -i}}))
		u.Commit()
	}
	a := e.Begin()
	require.NoError(t, a.Replace(ns, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "aborted"}}))
	a.Abort()
	require.LessOrEqual(t, indexSize(e, "v_1"), 2, "only keys some version still has")

	docs, used := e.Begin().ScanEqual(ns, bson.D{{Key: "v", Value: -100}})
	require.True(t, used)
	require.Len(t, docs, 1, "the live key is still found")
	docs, _ = e.Begin().ScanEqual(ns, bson.D{{Key: "v", Value: "aborted"}})
	require.Empty(t, docs)

	// A reader holding an old snapshot keeps its versions, and their keys.
	r := e.Begin()
	u := e.Begin()
	require.NoError(t, u.Replace(ns, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "new"}}))
	u.Commit()
	docs, _ = r.ScanEqual(ns, bson.D{{Key: "v", Value: -100}})
	require.Len(t, docs, 1, "the old snapshot still finds its version through the index")
	r.Abort()
}

func TestKeysOfDistinctValuesNeverCollide(t *testing.T) {
	tests := []struct {
		name string
		a, b any
	}{
		{name: "a string holding what a document encodes to", a: bson.D{{Key: "a", Value: "x"}, {Key: "b", Value: "y"}}, b: bson.D{{Key: "a", Value: "x\x00b\x00" + string([]byte{keyOf("y")[0]}) + "y"}}},
		{name: "strings with NUL bytes", a: "a\x00b", b: "a\x00c"},
		{name: "array elements against one string", a: bson.A{"a", "b"}, b: bson.A{"a" + keyOf("b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEqual(t, keyOf(tt.a), keyOf(tt.b))
			e := New(nil)
			w := e.Begin()
			require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: tt.a}}))
			require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: tt.b}}), "a distinct _id is not a duplicate")
		})
	}
	// Compound keys: the parts of two keys never run into each other.
	ix := &index{paths: [][]string{{"a"}, {"b"}}, keys: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}}
	k1 := ix.keysOf(bson.D{{Key: "a", Value: "x"}, {Key: "b", Value: "y"}})
	k2 := ix.keysOf(bson.D{{Key: "a", Value: "x" + ix.keyPart("y")[:0]}, {Key: "b", Value: "y"}})
	require.Equal(t, k1, k2, "same values, same key")
	k3 := ix.keysOf(bson.D{{Key: "a", Value: "x\x01" + keyOf("y")}, {Key: "b", Value: nil}})
	require.NotEqual(t, k1, k3)
}

func TestReadAtClusterTimeKeepsItsHistory(t *testing.T) {
	e := New(nil)
	w := e.Begin()
	require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "old"}}))
	w.Commit()
	ct := e.ClusterTimeOf(e.ClusterTime())
	r, err := e.BeginAtClusterTime(ct, ct)
	require.NoError(t, err)
	defer r.Abort()
	u := e.Begin()
	require.NoError(t, u.Replace(ns, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "new"}}))
	u.Commit()
	require.Equal(t, "old", r.FindID(ns, 1)[1].Value, "a reader at a cluster time keeps its versions")
}

// A transaction keeps its pending writes in a list while it has few and
// indexes them once it has many: both ways it reads its own latest write
// of each document, others read none, and commit or abort applies or
// discards exactly those writes.
func TestTransactionReadsItsOwnLatestWrites(t *testing.T) {
	for _, n := range []int{3, indexWritesFrom, 3 * indexWritesFrom} {
		for _, commit := range []bool{true, false} {
			e := New(nil)
			w := e.Begin()
			for i := range n {
				require.NoError(t, w.Insert(ns, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: 0}}))
			}
			for i := 0; i < n; i += 2 {
				old := bson.D{{Key: "_id", Value: i}, {Key: "v", Value: 0}}
				require.NoError(t, w.Replace(ns, old, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: 1}}))
			}
			other := e.Begin()
			for i := range n {
				want := 0
				if i%2 == 0 {
					want = 1
				}
				require.Equal(t, want, w.FindID(ns, i)[1].Value, "n=%d: own write of %d", n, i)
				require.Nil(t, other.FindID(ns, i), "n=%d: others do not see %d", n, i)
			}
			other.Abort()
			done := w.Done()
			if commit {
				w.Commit()
			} else {
				w.Abort()
			}
			<-done
			<-w.Done()
			after := e.Begin()
			require.Equal(t, map[bool]int{true: n, false: 0}[commit], count(after), "n=%d commit=%v", n, commit)
			if commit {
				require.Equal(t, 1, after.FindID(ns, 0)[1].Value)
				require.Equal(t, 0, after.FindID(ns, 1)[1].Value)
			}
		}
	}
}
