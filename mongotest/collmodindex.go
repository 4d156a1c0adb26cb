package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// indexChange is a parsed collMod index option: which index and what to
// change. A nil field is left as it is.
type indexChange struct {
	name          string
	keys          bson.D
	expireAfter   *int64
	hidden        *bool
	unique        *bool
	prepareUnique *bool
}

// parseIndexChange reads collMod's index option as MongoDB 7.0's
// parseCollModRequest does.
func parseIndexChange(v any) (indexChange, error) {
	var ch indexChange
	d, ok := v.(bson.D)
	if !ok {
		return ch, typeErr("collMod.index", v, "object")
	}
	n := 0
	for _, e := range d {
		switch e.Key {
		case "name":
			s, ok := e.Value.(string)
			if !ok {
				return ch, typeErr("collMod.index.name", e.Value, "string")
			}
			ch.name = s
		case "keyPattern":
			k, ok := e.Value.(bson.D)
			if !ok {
				return ch, typeErr("collMod.index.keyPattern", e.Value, "object")
			}
			ch.keys = k
		case "expireAfterSeconds":
			secs, _, err := intField(d, e.Key)
			if err != nil {
				return ch, err
			}
			if secs < 0 || secs > 2147483647 {
				return ch, merr.New(merr.InvalidOptions, "TTL index 'expireAfterSeconds' option must be within an acceptable range, try a lower number")
			}
			ch.expireAfter = &secs
			n++
		case "hidden", "unique", "prepareUnique":
			b, err := boolField(d, e.Key, false)
			if err != nil {
				return ch, err
			}
			switch e.Key {
			case "hidden":
				ch.hidden = &b
			case "unique":
				ch.unique = &b
			default:
				ch.prepareUnique = &b
			}
			n++
		case "forceNonUnique":
			return ch, merr.New(merr.NotImplemented, "mongotest does not implement the 'forceNonUnique' option of collMod.index")
		default:
			return ch, merr.New(merr.Location40415, "BSON field 'collMod.index.%s' is an unknown field.", e.Key)
		}
	}
	switch {
	case ch.name != "" && ch.keys != nil:
		return ch, merr.New(merr.InvalidOptions, "Cannot specify both key pattern and name.")
	case ch.name == "" && ch.keys == nil:
		return ch, merr.New(merr.InvalidOptions, "Must specify either index name or key pattern.")
	case n == 0:
		return ch, merr.New(merr.InvalidOptions, "no expireAfterSeconds, hidden, unique, or prepareUnique field")
	case ch.prepareUnique != nil && n > 1:
		return ch, merr.New(merr.InvalidOptions, "prepareUnique cannot be combined with any other modification.")
	case ch.unique != nil && !*ch.unique:
		return ch, merr.New(merr.BadValue, "Cannot make index non-unique")
	}
	return ch, nil
}

// apply returns spec changed by ch and the reply fields MongoDB's
// processCollModIndexRequest adds, in its order. Setting a value an index
// already has changes nothing and reports nothing, as there.
func (ch indexChange) apply(spec bson.D) (bson.D, bson.D, error) {
	isID := field(spec, "name") == "_id_"
	key, _ := field(spec, "key").(bson.D)
	var reply bson.D
	if ch.expireAfter != nil {
		old, has := bsonkit.Get(spec, "expireAfterSeconds")
		switch {
		case !has && isID:
			return nil, nil, merr.New(merr.InvalidOptions, "the _id field does not support TTL indexes")
		case !has && len(key) != 1:
			return nil, nil, merr.New(merr.InvalidOptions, "TTL indexes are single-field indexes, compound indexes do not support TTL")
		case has && !bsonkit.IsNumber(old):
			return nil, nil, merr.New(merr.InvalidOptions, "existing expireAfterSeconds field is not a number")
		}
		if has {
			n, _ := bsonkit.ToInt64(old)
			reply = append(reply, bson.E{Key: "expireAfterSeconds_old", Value: n})
		}
		reply = append(reply, bson.E{Key: "expireAfterSeconds_new", Value: *ch.expireAfter})
		spec = setOption(spec, "expireAfterSeconds", *ch.expireAfter)
	}
	unique, _ := field(spec, "unique").(bool)
	prepared, _ := field(spec, "prepareUnique").(bool)
	convert := false
	if ch.unique != nil && !unique {
		if !prepared {
			return nil, nil, merr.New(merr.InvalidOptions, "Cannot make index unique with 'prepareUnique=false'. Run collMod to set it first.")
		}
		convert = true
	}
	if ch.hidden != nil {
		if isID {
			return nil, nil, merr.New(merr.BadValue, "can't hide _id index")
		}
		if old, _ := field(spec, "hidden").(bool); old != *ch.hidden {
			reply = append(reply, bson.E{Key: "hidden_old", Value: old}, bson.E{Key: "hidden_new", Value: *ch.hidden})
			spec = withFlag(spec, "hidden", *ch.hidden)
		}
	}
	if convert {
		reply = append(reply, bson.E{Key: "unique_new", Value: true})
		spec = withFlag(withFlag(spec, "unique", true), "prepareUnique", false)
	}
	if ch.prepareUnique != nil && !isID && !unique && prepared != *ch.prepareUnique {
		reply = append(reply, bson.E{Key: "prepareUnique_old", Value: prepared}, bson.E{Key: "prepareUnique_new", Value: *ch.prepareUnique})
		spec = withFlag(spec, "prepareUnique", *ch.prepareUnique)
	}
	return spec, reply, nil
}

// withFlag sets a boolean index option, or removes it when false, as
// MongoDB's catalog keeps hidden and prepareUnique only when true.
func withFlag(spec bson.D, key string, on bool) bson.D {
	if on {
		return setOption(spec, key, true)
	}
	out := spec[:0:0]
	for _, e := range spec {
		if e.Key != key {
			out = append(out, e)
		}
	}
	return out
}
