// Package engine is mongotest's storage: databases, collections and indexes
// over multi-version documents, with snapshot-isolated transactions that
// detect write conflicts the way MongoDB's storage engine does (first
// writer wins, checked at write time).
//
// One mutex guards all state. Operations are short and in memory, so a
// single lock keeps the invariants obvious; readers and writers of different
// transactions still interleave between operations, which is what isolation
// is about.
package engine

import (
	"sort"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// Engine holds every database of one server.
type Engine struct {
	mu     sync.Mutex
	clock  uint64 // timestamp of the last commit
	seq    uint64 // insertion order of records
	dbs    map[string]*database
	active map[*Txn]struct{}

	// Cluster times of commits, for snapshot reads at a cluster time:
	// stamps[i] is the cluster time of commit stampBase+i.
	tick      func() bson.Timestamp
	stamps    []bson.Timestamp
	stampBase uint64
	// horizon is the oldest snapshot still complete: versions older than
	// what the snapshots at or after it see may have been pruned.
	horizon uint64
	pins    map[uint64]int // snapshots kept readable for snapshot sessions
	// history is how many seconds of cluster time stay readable whether
	// or not a reader holds them (minSnapshotHistoryWindowInSeconds).
	history uint32
}

type database struct {
	name  string
	colls map[string]*collection
}

type collection struct {
	db, name string
	uuid     bson.Binary
	options  bson.D
	records  map[string]*record
	order    []*record // natural (insertion) order; holes are compacted lazily
	dead     int       // records in order that were removed from records
	indexes  []*index
	// creator is the open multi-document transaction that created the
	// collection: until it commits, no one else sees the collection.
	creator *Txn
}

type record struct {
	key      string
	seq      uint64
	versions []version // ascending ts; the last is the newest committed
	// first is versions' array while it holds one version: most records
	// never get a second.
	first   [1]version
	owner   *Txn // uncommitted writer, if any
	removed bool
}

// addVersion appends v to r's versions.
func (r *record) addVersion(v version) {
	switch {
	case r.versions == nil:
		r.first[0] = v
		r.versions = r.first[:1:1]
	case len(r.versions) > 0 && &r.versions[0] == &r.first[0]:
		// Moving to an array of its own (cap 1: append copies): clear
		// first, so that it keeps no old document alive.
		r.versions = append(r.versions, v)
		r.first[0] = version{}
	default:
		r.versions = append(r.versions, v)
	}
}

type version struct {
	ts  uint64
	doc bson.D // nil: deleted
}

// New returns an empty engine whose commits are stamped with the cluster
// times tick returns (nil: a counter).
func New(tick func() bson.Timestamp) *Engine {
	if tick == nil {
		var n uint32
		tick = func() bson.Timestamp { n++; return bson.Timestamp{T: 1, I: n} }
	}
	e := &Engine{dbs: map[string]*database{}, active: map[*Txn]struct{}{}, tick: tick, pins: map[uint64]int{}}
	e.stamps = []bson.Timestamp{tick()}
	return e
}

// latest returns the newest committed version.
func (r *record) latest() (version, bool) {
	if len(r.versions) == 0 {
		return version{}, false
	}
	return r.versions[len(r.versions)-1], true
}

// at returns the document visible at snapshot ts (nil if none).
func (r *record) at(ts uint64) bson.D {
	for i := len(r.versions) - 1; i >= 0; i-- {
		if r.versions[i].ts <= ts {
			return r.versions[i].doc
		}
	}
	return nil
}

// Namespace is a database and collection name pair.
type Namespace struct{ DB, Coll string }

// String renders "db.coll".
func (n Namespace) String() string { return n.DB + "." + n.Coll }

func (e *Engine) coll(ns Namespace) *collection {
	d := e.dbs[ns.DB]
	if d == nil {
		return nil
	}
	return d.colls[ns.Coll]
}

// collFor returns ns as t sees it (t nil: outside any transaction). A
// collection created by another transaction that is still open is not
// there yet, as in MongoDB, where DDL in a transaction commits with it.
func (e *Engine) collFor(ns Namespace, t *Txn) *collection {
	c := e.coll(ns)
	if c != nil && c.creator != nil && c.creator != t {
		return nil
	}
	return c
}

// ensureColl returns ns, creating it (and its _id index) when missing.
func (e *Engine) ensureColl(ns Namespace, options bson.D) (*collection, bool) {
	if c := e.coll(ns); c != nil {
		return c, false
	}
	d := e.dbs[ns.DB]
	if d == nil {
		d = &database{name: ns.DB, colls: map[string]*collection{}}
		e.dbs[ns.DB] = d
	}
	c := &collection{db: ns.DB, name: ns.Coll, options: options, records: map[string]*record{}, uuid: newUUID()}
	c.indexes = []*index{{name: "_id_", keys: bson.D{{Key: "_id", Value: int32(1)}}, paths: [][]string{{"_id"}}, entries: map[string]map[*record]struct{}{}}}
	d.colls[ns.Coll] = c
	return c, true
}

// ValidateNamespace checks collection and database names as MongoDB does.
func ValidateNamespace(ns Namespace) error {
	if ns.DB == "" || strings.ContainsAny(ns.DB, "/\\. \"$\x00") || len(ns.DB) > 63 {
		return merr.New(merr.InvalidNamespace, "Invalid database name: '%s'", ns.DB)
	}
	if ns.Coll == "" || strings.Contains(ns.Coll, "$") || strings.Contains(ns.Coll, "\x00") || strings.HasPrefix(ns.Coll, ".") || strings.HasPrefix(ns.Coll, "system.") {
		return merr.New(merr.InvalidNamespace, "Invalid namespace specified '%s'", ns.String())
	}
	return nil
}

// maxNamespaceLen is how long, in bytes, the namespace ("db.coll") of a
// user collection may be (NamespaceString::MaxNsCollectionLen).
const maxNamespaceLen = 255

// CheckCreatable reports whether a collection may exist at ns, as
// MongoDB's userAllowedCreateNS, which its writes and index builds also
// apply up front (userAllowedWriteNS): a valid namespace of at most 255
// bytes.
func CheckCreatable(ns Namespace) error {
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	if len(ns.DB)+1+len(ns.Coll) > maxNamespaceLen {
		return merr.New(merr.InvalidNamespace, "Fully qualified namespace is too long. Namespace: %s Max: %d", ns.String(), maxNamespaceLen)
	}
	return nil
}

// CreateCollection creates ns, or fails with NamespaceExists or a
// *Conflict while another open transaction is creating it.
func (t *Txn) CreateCollection(ns Namespace, options bson.D) error {
	if err := CheckCreatable(ns); err != nil {
		return err
	}
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	if err := t.checkOpen(); err != nil {
		return err
	}
	if _, created, err := t.ensureColl(ns, options); err != nil {
		return err
	} else if !created {
		return merr.New(merr.NamespaceExists, "Collection %s already exists.", ns.String())
	}
	return nil
}

// DropCollection removes ns; it reports whether it existed. While an open
// transaction uses the collection (it read or wrote it), the drop is a
// *Conflict to wait on: MongoDB's drop waits for the transaction's locks.
func (e *Engine) DropCollection(ns Namespace) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.collFor(ns, nil)
	if c == nil {
		return false, nil
	}
	if holder := e.userOf(c, nil); holder != nil {
		return false, &Conflict{holder: holder}
	}
	delete(e.dbs[ns.DB].colls, ns.Coll)
	return true, nil
}

// DropDatabase removes a database and everything in it, or returns a
// *Conflict while an open transaction uses one of its collections.
func (e *Engine) DropDatabase(db string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d := e.dbs[db]; d != nil {
		for _, c := range d.colls {
			if holder := e.userOf(c, nil); holder != nil {
				return &Conflict{holder: holder}
			}
		}
	}
	delete(e.dbs, db)
	return nil
}

// userOf returns an open transaction other than self (which may be nil)
// that uses c, if any: one that creates it, read or wrote it (a
// multi-document transaction keeps its collection locks until it ends) or
// is writing one of its documents. e.mu is held.
func (e *Engine) userOf(c *collection, self *Txn) *Txn {
	if c.creator != nil && c.creator != self {
		return c.creator
	}
	for t := range e.active {
		if _, ok := t.touched[c]; ok && t != self {
			return t
		}
	}
	for _, r := range c.records {
		if r.owner != nil && r.owner != self {
			return r.owner
		}
	}
	return nil
}

// CollectionInfo describes a collection for listCollections.
type CollectionInfo struct {
	Name    string
	UUID    bson.Binary
	Options bson.D
}

// Collections lists a database's collections by name.
func (e *Engine) Collections(db string) []CollectionInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.dbs[db]
	if d == nil {
		return nil
	}
	out := make([]CollectionInfo, 0, len(d.colls))
	for _, c := range d.colls {
		if c.creator != nil {
			continue
		}
		out = append(out, CollectionInfo{Name: c.name, UUID: c.uuid, Options: c.options})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DatabaseInfo describes a database for listDatabases.
type DatabaseInfo struct {
	Name  string
	Size  int64
	Empty bool
}

// Databases lists databases that hold at least one collection.
func (e *Engine) Databases() []DatabaseInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []DatabaseInfo
	for name, d := range e.dbs {
		if len(d.colls) == 0 {
			continue
		}
		var size int64
		visible := 0
		for _, c := range d.colls {
			if c.creator != nil {
				continue
			}
			visible++
			for _, r := range c.records {
				if v, ok := r.latest(); ok && v.doc != nil {
					size += docSize(v.doc)
				}
			}
		}
		if visible == 0 {
			continue
		}
		out = append(out, DatabaseInfo{Name: name, Size: size, Empty: size == 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HasCollection reports whether ns exists.
func (e *Engine) HasCollection(ns Namespace) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.collFor(ns, nil) != nil
}

func docSize(d bson.D) int64 {
	n, err := bsonkit.Size(d)
	if err != nil {
		return 0
	}
	return int64(n)
}

func newUUID() bson.Binary {
	id := bson.NewObjectID()
	id2 := bson.NewObjectID()
	data := make([]byte, 16)
	copy(data, id[:])
	copy(data[12:], id2[8:12])
	data[6] = (data[6] & 0x0f) | 0x40
	data[8] = (data[8] & 0x3f) | 0x80
	return bson.Binary{Subtype: 4, Data: data}
}

// oldestSnapshot is the lowest snapshot any open transaction, pinned
// session or read within the history window may need.
func (e *Engine) oldestSnapshot() uint64 {
	oldest := min(e.clock, e.windowSnapshot())
	for t := range e.active {
		if t.snap < oldest {
			oldest = t.snap
		}
	}
	for ts := range e.pins {
		if ts < oldest {
			oldest = ts
		}
	}
	return oldest
}

// prune drops versions no snapshot can see any more.
func (e *Engine) prune(c *collection, r *record, oldest uint64) {
	// Keep the newest version at or below oldest, and everything after it.
	keep := 0
	for i := len(r.versions) - 1; i >= 0; i-- {
		if r.versions[i].ts <= oldest {
			keep = i
			break
		}
	}
	var gone []bson.D
	if keep > 0 {
		for _, v := range r.versions[:keep] {
			gone = append(gone, v.doc)
		}
		r.versions = append(r.versions[:0], r.versions[keep:]...)
	}
	e.advanceHorizon(oldest)
	defer c.unindex(r, gone...)
	if len(r.versions) == 1 && r.versions[0].doc == nil && r.owner == nil && r.versions[0].ts <= oldest {
		delete(c.records, r.key)
		r.removed = true
		c.dead++
		if c.dead > 64 && c.dead > len(c.order)/2 {
			live := c.order[:0]
			for _, x := range c.order {
				if !x.removed {
					live = append(live, x)
				}
			}
			clear(c.order[len(live):])
			c.order = live
			c.dead = 0
		}
	}
}

// idKey returns the record key of a document's _id.
func idKey(doc bson.D) (string, any, bool) {
	id, ok := bsonkit.Get(doc, "_id")
	if !ok {
		return "", nil, false
	}
	return keyOf(id), id, true
}

// CollectionOptions returns the options ns was created with, as t sees
// the catalog, and whether ns exists.
func (t *Txn) CollectionOptions(ns Namespace) (bson.D, bool) {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	c := t.e.collFor(ns, t)
	if c == nil {
		return nil, false
	}
	return c.options, true
}

// CollectionOptions returns the options of ns outside any transaction, and
// whether ns exists.
func (e *Engine) CollectionOptions(ns Namespace) (bson.D, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.collFor(ns, nil)
	if c == nil {
		return nil, false
	}
	return c.options, true
}

// SetCollectionOptions replaces the options of ns (collMod). It fails with
// NamespaceNotFound when ns does not exist and is a *Conflict while an open
// transaction uses the collection, as collMod waits for its locks.
func (e *Engine) SetCollectionOptions(ns Namespace, options bson.D) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.collFor(ns, nil)
	if c == nil {
		return merr.New(merr.NamespaceNotFound, "ns does not exist: %s", ns.String())
	}
	if holder := e.userOf(c, nil); holder != nil {
		return &Conflict{holder: holder}
	}
	c.options = options
	return nil
}
