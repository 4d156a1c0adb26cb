package bsonkit

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Every command repeats values: its database, its collection, its
// session's id, the $clusterTime signature. Decoding them anew costs two
// allocations each (the bytes, then the interface holding them), a good
// part of a small command's. The caches below keep the values decoded
// lately, boxed, so that the next decode of the same bytes returns them
// as they are. Values are immutable, so sharing them is safe. A cache slot
// holds one value; a new one replaces it (a miss costs nothing more than
// the decode it replaces).

// maxCached is the longest string or binary worth caching: commands'
// names, namespaces and 16-byte session ids, not documents' contents.
const maxCached = 32

// cacheSlots is a power of two: a slot is picked by the low bits of a hash.
const (
	cacheBits  = 10
	cacheSlots = 1 << cacheBits
)

var cacheSeed = maphash.MakeSeed()

// valueCache caches boxed values of one Go type (an atomic.Value refuses
// another): a slot's Load returns the very interface stored, so a hit
// allocates nothing.
type valueCache struct {
	slots [cacheSlots]atomic.Value
}

func (c *valueCache) slot(b []byte) *atomic.Value {
	return &c.slots[maphash.Bytes(cacheSeed, b)&(cacheSlots-1)]
}

var (
	stringCache valueCache // strings
	int32Cache  valueCache // int32s
	binaryCache valueCache // bson.Binary values
	keyCache    keyStrings
)

// readStringValue decodes the string value val, boxed.
func readStringValue(val []byte) (any, error) {
	b, ok := stringBytes(val)
	if !ok {
		return nil, errMalformed
	}
	if len(b) > maxCached {
		return string(b), nil
	}
	slot := stringCache.slot(b)
	if v := slot.Load(); v != nil && v.(string) == string(b) {
		return v, nil
	}
	var v any = string(b)
	slot.Store(v)
	return v, nil
}

// String returns s boxed, shared with the decoded copies of it when it is
// short (a namespace, a name): boxing it anew costs an allocation.
func String(s string) any {
	if len(s) > maxCached {
		return s
	}
	slot := &stringCache.slots[maphash.String(cacheSeed, s)&(cacheSlots-1)]
	if v := slot.Load(); v != nil && v.(string) == s {
		return v
	}
	var v any = s
	slot.Store(v)
	return v
}

// int32Value returns n boxed, shared with the decoded copies of it seen
// lately: a find or update by the _id just inserted decodes the same
// number again.
func int32Value(n int32) any {
	if n >= 0 && n < 256 {
		return n // Go boxes these without allocating
	}
	// The top bits of a multiplicative hash pick one of cacheSlots.
	slot := &int32Cache.slots[uint32(n)*2654435761>>(32-cacheBits)]
	if v := slot.Load(); v != nil && v.(int32) == n {
		return v
	}
	var v any = n
	slot.Store(v)
	return v
}

// binaryValue returns the binary of subtype sub holding a copy of data
// (never nil, as the driver's), boxed.
func binaryValue(sub byte, data []byte) any {
	if len(data) > maxCached {
		return bson.Binary{Subtype: sub, Data: bytes.Clone(data)} // data is not empty: never nil
	}
	slot := binaryCache.slot(data)
	if v := slot.Load(); v != nil {
		if b := v.(bson.Binary); b.Subtype == sub && bytes.Equal(b.Data, data) {
			return v
		}
	}
	b := make([]byte, len(data))
	copy(b, data)
	var v any = bson.Binary{Subtype: sub, Data: b}
	slot.Store(v)
	return v
}

// keyStrings caches field names as strings.
type keyStrings struct {
	slots [cacheSlots]atomic.Pointer[string]
}

func (c *keyStrings) get(key []byte) string {
	if len(key) > maxCached {
		return string(key)
	}
	slot := &c.slots[maphash.Bytes(cacheSeed, key)&(cacheSlots-1)]
	if p := slot.Load(); p != nil && *p == string(key) {
		return *p
	}
	s := string(key)
	slot.Store(&s)
	return s
}
