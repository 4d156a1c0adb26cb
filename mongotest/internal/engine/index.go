package engine

import (
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// IndexSpec is a parsed createIndexes entry.
type IndexSpec struct {
	Name   string
	Keys   bson.D
	Unique bool
	Sparse bool
	// PrepareUnique refuses writes that add a duplicate key, keeping the
	// duplicates already there (collMod's first step to unique).
	PrepareUnique bool
	Partial       func(bson.D) bool // nil: every document
	// StringKey maps a string to its key under the index's collation, so
	// that strings the collation equates are one key; nil: binary.
	StringKey func(string) string
	Spec      bson.D // the document listIndexes reports
}

type index struct {
	name   string
	keys   bson.D
	paths  [][]string
	unique bool
	sparse bool
	// prepareUnique: writes may not add a key another document has.
	prepareUnique bool
	partial       func(bson.D) bool
	strKey        func(string) string // nil: binary string keys
	spec          bson.D
	// entries maps an encoded key to every record some version of which
	// had it: a superset, always verified against the version a reader sees.
	entries map[string]map[*record]struct{}
}

func (ix *index) isID() bool { return ix.name == "_id_" }

// keysOf returns the encoded index keys of doc; nil when doc is not indexed.
func (ix *index) keysOf(doc bson.D) []string {
	if doc == nil || (ix.partial != nil && !ix.partial(doc)) {
		return nil
	}
	parts := make([][]any, len(ix.paths))
	present := false
	for i, p := range ix.paths {
		vals := lookup(doc, p)
		if len(vals) == 0 {
			vals = []any{nil}
		} else {
			present = true
		}
		parts[i] = vals
	}
	if ix.sparse && !present {
		return nil
	}
	keys := []string{""}
	for _, vals := range parts {
		next := make([]string, 0, len(keys)*len(vals))
		for _, k := range keys {
			for _, v := range vals {
				next = append(next, k+ix.keyPart(v))
			}
		}
		keys = next
	}
	return dedupe(keys)
}

// keyPart encodes one field of a compound key, length-first, so that the
// parts of two keys can never run into each other.
func (ix *index) keyPart(v any) string {
	k := keyWith(v, ix.strKey)
	return strconv.Itoa(len(k)) + ":" + k
}

func dedupe(keys []string) []string {
	if len(keys) < 2 {
		return keys
	}
	seen := make(map[string]struct{}, len(keys))
	out := keys[:0]
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

func (ix *index) add(r *record, doc bson.D) {
	for _, k := range ix.keysOf(doc) {
		set := ix.entries[k]
		if set == nil {
			set = map[*record]struct{}{}
			ix.entries[k] = set
		}
		set[r] = struct{}{}
	}
}

func hasKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// keyValue renders doc's key for an E11000 message and keyValue field.
func (ix *index) keyValue(doc bson.D) bson.D {
	out := bson.D{}
	for i, p := range ix.paths {
		vals := lookup(doc, p)
		var v any
		if len(vals) > 0 {
			v = vals[0]
		}
		out = append(out, bson.E{Key: ix.keys[i].Key, Value: v})
	}
	return out
}

func duplicateKey(ns Namespace, ix *index, doc bson.D) *merr.Error {
	kv := ix.keyValue(doc)
	parts := make([]string, len(kv))
	for i, e := range kv {
		parts[i] = bsonkit.FormatElem(e.Key, e.Value)
	}
	coll := ""
	if c, ok := bsonkit.Get(ix.spec, "collation"); ok {
		// As MongoDB's buildDupKeyErrorStatus names the collation. Its
		// keyValue holds ICU's collation key; mongotest's, the value.
		coll = " collation: " + bsonkit.FormatValue(c)
	}
	err := merr.New(merr.DuplicateKey, "E11000 duplicate key error collection: %s index: %s%s dup key: { %s }", ns.String(), ix.name, coll, strings.Join(parts, ", "))
	err.Extra = bson.D{{Key: "keyPattern", Value: bsonkit.CloneDoc(ix.keys)}, {Key: "keyValue", Value: kv}}
	return err
}

// CreateIndexes builds specs on ns, creating the collection if needed.
// It returns the index count before and after and whether it created ns.
func (e *Engine) CreateIndexes(ns Namespace, specs []IndexSpec) (before, after int, created bool, err error) {
	t := e.Begin()
	defer t.Commit()
	return t.CreateIndexes(ns, specs)
}

// CreateIndexes is [Engine.CreateIndexes] by t: in a multi-document
// transaction it may build indexes only on a collection t creates, which
// others see with its indexes once t commits. A build on a collection
// another open transaction creates, read or wrote is a *Conflict to wait
// on; indexes that all exist already are answered at once.
func (t *Txn) CreateIndexes(ns Namespace, specs []IndexSpec) (before, after int, created bool, err error) {
	if err := ValidateNamespace(ns); err != nil {
		return 0, 0, false, err
	}
	e := t.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := t.checkOpen(); err != nil {
		return 0, 0, false, err
	}
	c, created, err := t.ensureColl(ns, nil)
	if err != nil {
		return 0, 0, false, err
	}
	// Like MongoDB, answer at once when every index asked for exists
	// already: only a build waits for the collection's writers.
	if c.haveAll(specs) {
		return len(c.indexes), len(c.indexes), created, nil
	}
	// A build needs the collection exclusively (MongoDB's index build
	// takes its MODE_X lock), so it waits for every other open
	// transaction that uses the collection, one that only read it too:
	// a multi-document transaction holds its collection locks until it
	// ends.
	if holder := e.userOf(c, t); holder != nil {
		return 0, 0, created, &Conflict{holder: holder}
	}
	before = len(c.indexes)
	var added []*index
	for _, s := range specs {
		// As MongoDB 7.0: the key pattern and partial filter identify an
		// index; unique and sparse are options of that index.
		if ex := c.findIndex(s.Name); ex != nil {
			if !keysEqual(ex.keys, s.Keys) || !sameIdentity(ex.spec, s.Spec) {
				return 0, 0, created, merr.New(merr.IndexKeySpecsConflict, "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: %v, existing index: %v", s.Spec, ex.spec)
			}
			if ex.unique == s.Unique && ex.sparse == s.Sparse {
				continue
			}
			return 0, 0, created, merr.New(merr.IndexOptionsConflict, "An equivalent index already exists with the same name but different options. Requested index: %v, existing index: %v", s.Spec, ex.spec)
		}
		if ex := c.findIndexByKeys(s.Keys, s.Spec); ex != nil {
			if ex.unique == s.Unique && ex.sparse == s.Sparse {
				return 0, 0, created, merr.New(merr.IndexOptionsConflict, "Index already exists with a different name: %s", ex.name)
			}
			return 0, 0, created, merr.New(merr.IndexOptionsConflict, "An equivalent index already exists with a different name and options. Requested index: %v, existing index: %v", s.Spec, ex.spec)
		}
		ix := &index{name: s.Name, keys: s.Keys, unique: s.Unique, sparse: s.Sparse, prepareUnique: s.PrepareUnique, partial: s.Partial, strKey: s.StringKey, spec: s.Spec, entries: map[string]map[*record]struct{}{}}
		for _, k := range s.Keys {
			ix.paths = append(ix.paths, strings.Split(k.Key, "."))
		}
		// Build from every version still held, so older snapshots stay covered.
		seen := map[string]bson.D{}
		for _, r := range c.order {
			if r.removed {
				continue
			}
			for _, v := range r.versions {
				ix.add(r, v.doc)
			}
			if d, _ := t.written(r); d != nil {
				ix.add(r, d)
			}
			if ix.unique {
				v, _ := r.latest()
				if d, ok := t.written(r); ok {
					v.doc = d
				}
				if v.doc != nil {
					for _, k := range ix.keysOf(v.doc) {
						if _, dup := seen[k]; dup {
							return 0, 0, created, duplicateKey(ns, ix, v.doc)
						}
						seen[k] = v.doc
					}
				}
			}
		}
		added = append(added, ix)
	}
	c.indexes = append(c.indexes, added...)
	return before, len(c.indexes), created, nil
}

// haveAll reports whether c has an index identical to each of specs: same
// name, keys, partial filter and options.
func (c *collection) haveAll(specs []IndexSpec) bool {
	for _, s := range specs {
		ex := c.findIndex(s.Name)
		if ex == nil || !keysEqual(ex.keys, s.Keys) || !sameIdentity(ex.spec, s.Spec) ||
			ex.unique != s.Unique || ex.sparse != s.Sparse {
			return false
		}
	}
	return true
}

func keysEqual(a, b bson.D) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bsonkit.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func (c *collection) findIndex(name string) *index {
	for _, ix := range c.indexes {
		if ix.name == name {
			return ix
		}
	}
	return nil
}

// findIndexByKeys returns the index with keys and the partial filter of
// spec (nil spec: any filter).
func (c *collection) findIndexByKeys(keys, spec bson.D) *index {
	for _, ix := range c.indexes {
		if keysEqual(ix.keys, keys) && (spec == nil || sameIdentity(ix.spec, spec)) {
			return ix
		}
	}
	return nil
}

// sameIdentity reports whether two index specs with the same keys are one
// index: as in MongoDB 7.0, when they have the same partialFilterExpression
// and collation (or neither has one).
func sameIdentity(a, b bson.D) bool {
	return sameField(a, b, "partialFilterExpression") && sameField(a, b, "collation")
}

func sameField(a, b bson.D, key string) bool {
	va, hasA := bsonkit.Get(a, key)
	vb, hasB := bsonkit.Get(b, key)
	return hasA == hasB && (!hasA || bsonkit.Equal(va, vb))
}

// ListIndexes returns the index specs of ns, or NamespaceNotFound.
func (e *Engine) ListIndexes(ns Namespace) ([]bson.D, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.collFor(ns, nil)
	if c == nil {
		return nil, merr.New(merr.NamespaceNotFound, "ns does not exist: %s", ns.String())
	}
	out := make([]bson.D, 0, len(c.indexes))
	for _, ix := range c.indexes {
		if ix.isID() {
			out = append(out, bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}})
			continue
		}
		out = append(out, bsonkit.CloneDoc(ix.spec))
	}
	return out, nil
}

// DropIndexes drops the named indexes ("*": all but _id_). It returns the
// index count before the drop. While an open transaction uses the
// collection (it read or wrote it), the drop is a *Conflict to wait on.
func (e *Engine) DropIndexes(ns Namespace, names []string, keys bson.D) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.collFor(ns, nil)
	if c == nil {
		return 0, merr.New(merr.NamespaceNotFound, "ns not found %s", ns.String())
	}
	// Dropping an index takes the collection's MODE_X lock: it waits for
	// the open transactions that use the collection.
	if holder := e.userOf(c, nil); holder != nil {
		return 0, &Conflict{holder: holder}
	}
	before := len(c.indexes)
	if keys != nil {
		ix, err := c.indexByKeys(ns, keys)
		if err != nil {
			return 0, err
		}
		names = []string{ix.name}
	}
	if len(names) == 1 && names[0] == "*" {
		c.indexes = c.indexes[:1]
		return before, nil
	}
	for _, n := range names {
		if n == "_id_" {
			return 0, merr.New(merr.InvalidOptions, "cannot drop _id index")
		}
		if c.findIndex(n) == nil {
			return 0, merr.New(merr.IndexNotFound, "index not found with name [%s]", n)
		}
	}
	kept := c.indexes[:0]
	for _, ix := range c.indexes {
		drop := false
		for _, n := range names {
			drop = drop || ix.name == n
		}
		if !drop {
			kept = append(kept, ix)
		}
	}
	c.indexes = kept
	return before, nil
}

// unindex removes r from the index entries of keys that only the gone
// documents had: keys no version r still holds (nor its pending write)
// has. Entries stay a superset of what any snapshot can see, without
// growing for ever. e.mu must be held.
func (c *collection) unindex(r *record, gone ...bson.D) {
	if len(gone) == 0 || len(c.indexes) < 2 {
		return
	}
	var live []bson.D
	if !r.removed {
		for _, v := range r.versions {
			if v.doc != nil {
				live = append(live, v.doc)
			}
		}
		if r.owner != nil {
			if d, _ := r.owner.written(r); d != nil {
				live = append(live, d)
			}
		}
	}
	for _, ix := range c.indexes[1:] {
		kept := map[string]struct{}{}
		for _, d := range live {
			for _, k := range ix.keysOf(d) {
				kept[k] = struct{}{}
			}
		}
		for _, d := range gone {
			for _, k := range ix.keysOf(d) {
				if _, ok := kept[k]; ok {
					continue
				}
				if set := ix.entries[k]; set != nil {
					delete(set, r)
					if len(set) == 0 {
						delete(ix.entries, k)
					}
				}
			}
		}
	}
}

// indexByKeys returns the one index with key pattern keys: none is
// IndexNotFound, more than one (other collations or partial filters) is
// AmbiguousIndexKeyPattern, as in MongoDB.
func (c *collection) indexByKeys(ns Namespace, keys bson.D) (*index, error) {
	var found []*index
	for _, ix := range c.indexes {
		if keysEqual(ix.keys, keys) {
			found = append(found, ix)
		}
	}
	switch len(found) {
	case 0:
		return nil, merr.New(merr.IndexNotFound, "cannot find index %s for ns %s", bsonkit.FormatValue(keys), ns.String())
	case 1:
		return found[0], nil
	}
	return nil, merr.New(merr.AmbiguousIndexKeyPattern, "index keyPattern %s matches %d indexes, must use index name. Conflicting indexes: %s, %s",
		bsonkit.FormatValue(keys), len(found), bsonkit.FormatValue(found[0].spec), bsonkit.FormatValue(found[1].spec))
}

// ModifyIndex changes the index of ns named name (or, with name empty,
// whose key pattern is keys): change gets a copy of its listIndexes spec
// and returns the new one, whose unique and prepareUnique options apply
// to later writes. Making an index unique over documents that share a key
// is CannotConvertIndexToUnique (359), with their ids, and changes
// nothing. A transaction with writes to ns makes it a *Conflict.
func (e *Engine) ModifyIndex(ns Namespace, name string, keys bson.D, change func(spec bson.D) (bson.D, error)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.collFor(ns, nil)
	if c == nil {
		return merr.New(merr.NamespaceNotFound, "ns does not exist: %s", ns.String())
	}
	var ix *index
	if name != "" {
		if ix = c.findIndex(name); ix == nil {
			return merr.New(merr.IndexNotFound, "cannot find index %s for ns %s", name, ns.String())
		}
	} else {
		var err error
		if ix, err = c.indexByKeys(ns, keys); err != nil {
			return err
		}
	}
	if holder := e.userOf(c, nil); holder != nil {
		return &Conflict{holder: holder}
	}
	spec := ix.spec
	if ix.isID() {
		spec = bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}
	}
	next, err := change(bsonkit.CloneDoc(spec))
	if err != nil || ix.isID() {
		return err
	}
	unique, _ := bsonkit.Get(next, "unique")
	prepare, _ := bsonkit.Get(next, "prepareUnique")
	if unique == true && !ix.unique {
		if err := c.checkNoDuplicates(ix); err != nil {
			return err
		}
	}
	ix.spec, ix.unique, ix.prepareUnique = next, unique == true, prepare == true
	return nil
}

// checkNoDuplicates reports the documents that share a key of ix, as
// MongoDB's CannotConvertIndexToUnique: violations [{ids: [...]}, ...].
// No transaction may be writing c. e.mu must be held.
func (c *collection) checkNoDuplicates(ix *index) error {
	byKey := map[string][]any{}
	var order []string
	for _, r := range c.order {
		if r.removed {
			continue
		}
		v, _ := r.latest()
		if v.doc == nil {
			continue
		}
		id, _ := bsonkit.Get(v.doc, "_id")
		for _, k := range ix.keysOf(v.doc) {
			if _, seen := byKey[k]; !seen {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], id)
		}
	}
	violations := bson.A{}
	for _, k := range order {
		if ids := byKey[k]; len(ids) > 1 {
			violations = append(violations, bson.D{{Key: "ids", Value: bson.A(ids)}})
		}
	}
	if len(violations) == 0 {
		return nil
	}
	err := merr.New(merr.CannotConvertIndexToUnique, "Cannot convert the index to unique. Please resolve conflicting documents before running collMod again.")
	err.Extra = bson.D{{Key: "violations", Value: violations}}
	return err
}
