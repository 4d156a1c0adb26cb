package mongotest

import (
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/update"
)

func cmdFindAndModify(o *op) (bson.D, error) {
	if o.retry != nil && o.retry.reply != nil {
		return o.retry.reply, nil
	}
	ns, err := o.writeNS()
	if err != nil {
		return nil, err
	}
	vars, err := o.vars()
	if err != nil {
		return nil, err
	}
	// query, sort and fields parse as a find's filter, sort and projection.
	fs, err := parseFind(o.cmd, "query", vars)
	if err != nil {
		return nil, err
	}
	if err := checkHint(o.s.core.engine, ns, field(o.cmd, "hint")); err != nil {
		return nil, err
	}
	filter, f, srt, proj := fs.filter, fs.f, fs.sort, fs.projection
	remove, err := boolField(o.cmd, "remove", false)
	if err != nil {
		return nil, err
	}
	returnNew, err := boolField(o.cmd, "new", false)
	if err != nil {
		return nil, err
	}
	upsert, err := boolField(o.cmd, "upsert", false)
	if err != nil {
		return nil, err
	}
	spec, hasUpdate := bsonkit.Get(o.cmd, "update")
	if remove == hasUpdate {
		return nil, merr.New(merr.FailedToParse, "Either an update or remove=true must be specified")
	}
	if remove && (upsert || returnNew) {
		return nil, merr.New(merr.FailedToParse, "Cannot specify both an update and remove=true")
	}
	filters, err := arrayFilters(o.cmd)
	if err != nil {
		return nil, err
	}
	var u *update.Update
	if hasUpdate {
		fill, err := o.emptyTimestampFiller()
		if err != nil {
			return nil, err
		}
		if u, err = update.CompileVars(fillReplacement(spec, fill), vars); err != nil {
			return nil, err
		}
	}
	var value any
	lastError := bson.D{}
	err = o.atomic(func(t *engine.Txn) error {
		value, lastError = nil, bson.D{}
		limit := 1
		if srt != nil {
			limit = 0
		}
		docs, err := matching(t, &o.s.core.scans, ns, filter, f, limit, nil)
		if err != nil {
			return err
		}
		if srt != nil {
			sort.SliceStable(docs, func(i, j int) bool { return srt.Compare(docs[i], docs[j]) < 0 })
		}
		opts := update.Options{Now: bson.NewDateTimeFromTime(time.Now()), Timestamp: o.s.clusterTime(), ArrayFilters: filters}
		if len(docs) == 0 {
			if remove || !upsert {
				lastError = bson.D{{Key: "n", Value: int32(0)}}
				if !remove {
					lastError = append(lastError, bson.E{Key: "updatedExisting", Value: false})
				}
				return nil
			}
			nd, err := upsertDoc(f, u, opts)
			if err != nil {
				return err
			}
			if err := o.validate(t, ns, nil, nd); err != nil {
				return err
			}
			if err := t.Insert(ns, nd); err != nil {
				return err
			}
			id, _ := bsonkit.Get(nd, "_id")
			lastError = bson.D{{Key: "n", Value: int32(1)}, {Key: "updatedExisting", Value: false}, {Key: "upserted", Value: id}}
			if returnNew {
				value = nd
			}
			return nil
		}
		d := docs[0]
		if remove {
			if err := t.Delete(ns, d); err != nil {
				return err
			}
			lastError = bson.D{{Key: "n", Value: int32(1)}}
			value = d
			return nil
		}
		nd, changed, err := applyMatched(u, f, d, opts)
		if err != nil {
			return err
		}
		if changed {
			if err := checkUpdatedSize(nd); err != nil {
				return err
			}
			if err := o.validate(t, ns, d, nd); err != nil {
				return err
			}
			if err := t.Replace(ns, d, nd); err != nil {
				return err
			}
		}
		lastError = bson.D{{Key: "n", Value: int32(1)}, {Key: "updatedExisting", Value: true}}
		value = d
		if returnNew {
			value = nd
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if d, ok := value.(bson.D); ok && proj != nil {
		value = proj.Apply(d)
	}
	reply := bson.D{{Key: "lastErrorObject", Value: lastError}, {Key: "value", Value: value}, {Key: "ok", Value: 1.0}}
	if o.retry != nil {
		o.retry.reply = reply
	}
	return reply, nil
}
