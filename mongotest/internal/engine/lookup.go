package engine

import (
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ScanEqual returns the documents visible to t whose indexed fields equal
// eq, in natural order, using an index whose every key is in eq. It
// reports false when no index covers eq; the caller then scans. The result
// is a superset only in the sense that callers still apply their full
// filter: every returned document has the given key values.
func (t *Txn) ScanEqual(ns Namespace, eq bson.D) ([]bson.D, bool) {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	c := t.e.collFor(ns, t)
	t.touch(c)
	if c == nil {
		return nil, true
	}
	ix := c.coveringIndex(eq)
	if ix == nil {
		return nil, false
	}
	key := ""
	for _, k := range ix.keys {
		v, _ := getField(eq, k.Key)
		key += ix.keyPart(v)
	}
	cands := make([]*record, 0, len(ix.entries[key]))
	for r := range ix.entries[key] {
		if !r.removed {
			cands = append(cands, r)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].seq < cands[j].seq })
	var docs []bson.D
	for _, r := range cands {
		if d := t.visible(r); d != nil && hasKey(ix.keysOf(d), key) {
			docs = append(docs, d)
		}
	}
	return docs, true
}

// coveringIndex returns a non-partial index all of whose key paths have a
// value in eq. An index with a collation holds collation keys, which eq's
// binary comparison cannot look up.
func (c *collection) coveringIndex(eq bson.D) *index {
	for _, ix := range c.indexes[1:] {
		if ix.partial != nil || ix.sparse || ix.strKey != nil {
			continue
		}
		covered := true
		for _, k := range ix.keys {
			if _, ok := getField(eq, k.Key); !ok {
				covered = false
				break
			}
		}
		if covered {
			return ix
		}
	}
	return nil
}

func getField(d bson.D, key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}
