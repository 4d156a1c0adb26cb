package bsonkit

import "go.mongodb.org/mongo-driver/v2/bson"

// Get returns the value of d's top-level field key.
func Get(d bson.D, key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// Set replaces d's field key in place, or appends it, and returns d.
func Set(d bson.D, key string, v any) bson.D {
	for i := range d {
		if d[i].Key == key {
			d[i].Value = v
			return d
		}
	}
	return append(d, bson.E{Key: key, Value: v})
}

// Delete removes d's field key and returns the shortened document.
func Delete(d bson.D, key string) bson.D {
	for i := range d {
		if d[i].Key == key {
			return append(d[:i:i], d[i+1:]...)
		}
	}
	return d
}

// Clone deep-copies documents and arrays; other values are immutable.
func Clone(v any) any {
	switch x := v.(type) {
	case bson.D:
		return CloneDoc(x)
	case bson.A:
		out := make(bson.A, len(x))
		for i, e := range x {
			out[i] = Clone(e)
		}
		return out
	case bson.Binary:
		return bson.Binary{Subtype: x.Subtype, Data: append([]byte(nil), x.Data...)}
	}
	return v
}

// CloneDoc deep-copies a document.
func CloneDoc(d bson.D) bson.D {
	if d == nil {
		return nil
	}
	out := make(bson.D, len(d))
	for i, e := range d {
		out[i] = bson.E{Key: e.Key, Value: Clone(e.Value)}
	}
	return out
}
