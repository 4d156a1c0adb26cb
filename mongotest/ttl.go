package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/query"
)

// ttlIndex is a TTL index: documents whose field holds a date (or an array
// with a date) older than expireAfterSeconds are deleted.
type ttlIndex struct {
	field   string
	after   time.Duration
	partial *query.Filter // nil: every document
}

// expireTTL deletes the documents TTL indexes have expired, as MongoDB's
// TTL monitor does every ttlMonitorSleepSecs (60 s); setParameter
// ttlMonitorEnabled: false stops it, as on MongoDB.
// A document a transaction holds is left for a later tick, as are the
// others of its collection: the deletions of one collection commit
// together or not at all.
func (c *core) expireTTL(now time.Time) {
	for _, db := range c.engine.Databases() {
		for _, coll := range c.engine.Collections(db.Name) {
			ns := engine.Namespace{DB: db.Name, Coll: coll.Name}
			specs, err := c.engine.ListIndexes(ns)
			if err != nil {
				continue
			}
			for _, spec := range specs {
				if ttl, ok := ttlOf(spec); ok {
					c.expire(ns, ttl, now)
				}
			}
		}
	}
}

// ttlOf recognises a TTL index spec: one field and expireAfterSeconds.
func ttlOf(spec bson.D) (ttlIndex, bool) {
	secs, ok := bsonkit.ToFloat(field(spec, "expireAfterSeconds"))
	keys, _ := field(spec, "key").(bson.D)
	if !ok || len(keys) != 1 || keys[0].Key == "_id" {
		return ttlIndex{}, false
	}
	ttl := ttlIndex{field: keys[0].Key, after: time.Duration(secs * float64(time.Second))}
	if pfe, ok := field(spec, "partialFilterExpression").(bson.D); ok {
		f, err := query.Compile(pfe)
		if err != nil {
			return ttlIndex{}, false
		}
		ttl.partial = f
	}
	return ttl, true
}

func (c *core) expire(ns engine.Namespace, ttl ttlIndex, now time.Time) {
	cutoff := now.Add(-ttl.after)
	t := c.engine.Begin()
	var victims []bson.D
	t.Scan(ns, func(d bson.D) bool {
		if ttl.expired(d, cutoff) {
			victims = append(victims, d)
		}
		return true
	})
	for _, d := range victims {
		if err := t.Delete(ns, d); err != nil {
			t.Abort()
			return
		}
	}
	if len(victims) == 0 {
		t.Abort()
		return
	}
	t.Commit()
}

// expired reports whether d's indexed date, or the earliest date of an
// array there, is before cutoff.
func (ttl ttlIndex) expired(d bson.D, cutoff time.Time) bool {
	if ttl.partial != nil && !ttl.partial.Match(d) {
		return false
	}
	vals, _ := query.Lookup(d, ttl.field)
	var earliest *time.Time
	consider := func(v any) {
		if dt, ok := v.(bson.DateTime); ok {
			if t := dt.Time(); earliest == nil || t.Before(*earliest) {
				earliest = &t
			}
		}
	}
	for _, v := range vals {
		if a, ok := v.(bson.A); ok {
			for _, x := range a {
				consider(x)
			}
			continue
		}
		consider(v)
	}
	return earliest != nil && earliest.Before(cutoff)
}
