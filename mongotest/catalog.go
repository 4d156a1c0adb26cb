package mongotest

import (
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
	"github.com/txkit/txkit/mongotest/internal/query"
)

func cmdCreate(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	options := bson.D{}
	for _, e := range o.cmd[1:] {
		switch e.Key {
		case "lsid", "txnNumber", "autocommit", "startTransaction", "writeConcern", "readConcern", "comment", "maxTimeMS":
			continue
		}
		if strings.HasPrefix(e.Key, "$") {
			continue
		}
		options = append(options, e)
	}
	options, err = checkCreateOptions(o, options)
	if err != nil {
		return nil, err
	}
	if o.txn != nil && o.s.core.engine.HasCollection(ns) {
		return nil, merr.New(merr.NamespaceExists, "Collection %s already exists.", ns.String())
	}
	if err := o.atomic(func(t *engine.Txn) error { return t.CreateCollection(ns, options) }); err != nil {
		return nil, err
	}
	return ok1(), nil
}

func cmdDrop(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	idx, _ := o.s.core.engine.ListIndexes(ns)
	if err := o.waitFor(func() error { _, err := o.s.core.engine.DropCollection(ns); return err }); err != nil {
		return nil, err
	}
	return ok1(bson.E{Key: "nIndexesWas", Value: int32(len(idx))}, bson.E{Key: "ns", Value: ns.String()}), nil
}

func cmdDropDatabase(o *op) (bson.D, error) {
	if err := o.waitFor(func() error { return o.s.core.engine.DropDatabase(o.db) }); err != nil {
		return nil, err
	}
	return ok1(bson.E{Key: "dropped", Value: o.db}), nil
}

// waitFor runs a catalog change, waiting out the open transactions that
// use what it changes (bounded by maxTimeMS), as MongoDB waits for their
// locks.
func (o *op) waitFor(change func() error) error {
	for {
		err := change()
		var c *engine.Conflict
		if !errors.As(err, &c) {
			return err
		}
		if err := o.waitOut(c); err != nil {
			return err
		}
	}
}

func cmdListCollections(o *op) (bson.D, error) {
	filter, err := docField(o.cmd, "filter")
	if err != nil {
		return nil, err
	}
	f, err := query.Compile(filter)
	if err != nil {
		return nil, err
	}
	nameOnly, err := boolField(o.cmd, "nameOnly", false)
	if err != nil {
		return nil, err
	}
	var docs []bson.D
	for _, c := range o.s.core.engine.Collections(o.db) {
		options := c.Options
		if options == nil {
			options = bson.D{}
		}
		d := bson.D{{Key: "name", Value: c.Name}, {Key: "type", Value: "collection"}}
		if _, isView := bsonkit.Get(options, "viewOn"); isView {
			d[1].Value = "view"
			if !nameOnly {
				d = append(d, bson.E{Key: "options", Value: options}, bson.E{Key: "info", Value: bson.D{{Key: "readOnly", Value: true}}})
			}
		} else if !nameOnly {
			d = append(d,
				bson.E{Key: "options", Value: options},
				bson.E{Key: "info", Value: bson.D{{Key: "readOnly", Value: false}, {Key: "uuid", Value: c.UUID}}},
				bson.E{Key: "idIndex", Value: bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}},
			)
		}
		if f.Match(d) {
			docs = append(docs, d)
		}
	}
	bs, err := cursorBatchSize(o.cmd)
	if err != nil {
		return nil, err
	}
	reply, _ := o.s.core.cursors.open(o, o.db+".$cmd.listCollections", docs, bs, false)
	return reply, nil
}

func cmdListDatabases(o *op) (bson.D, error) {
	filter, err := docField(o.cmd, "filter")
	if err != nil {
		return nil, err
	}
	f, err := query.Compile(filter)
	if err != nil {
		return nil, err
	}
	nameOnly, err := boolField(o.cmd, "nameOnly", false)
	if err != nil {
		return nil, err
	}
	dbs := bson.A{}
	var total int64
	for _, d := range o.s.core.engine.Databases() {
		doc := bson.D{{Key: "name", Value: d.Name}}
		if !nameOnly {
			doc = append(doc, bson.E{Key: "sizeOnDisk", Value: d.Size}, bson.E{Key: "empty", Value: d.Empty})
		}
		if f.Match(doc) {
			dbs = append(dbs, doc)
			total += d.Size
		}
	}
	if nameOnly {
		return ok1(bson.E{Key: "databases", Value: dbs}), nil
	}
	return ok1(bson.E{Key: "databases", Value: dbs}, bson.E{Key: "totalSize", Value: total}, bson.E{Key: "totalSizeMb", Value: total / (1 << 20)}), nil
}

func cmdCollStats(o *op) (bson.D, error) {
	ns, err := o.ns()
	if err != nil {
		return nil, err
	}
	var n int32
	var size int64
	_ = o.read(func(t *engine.Txn) {
		t.Scan(ns, func(d bson.D) bool {
			n++
			sz, _ := bsonkit.Size(d)
			size += int64(sz)
			return true
		})
	})
	idx, _ := o.s.core.engine.ListIndexes(ns)
	return ok1(bson.E{Key: "ns", Value: ns.String()}, bson.E{Key: "count", Value: n}, bson.E{Key: "size", Value: size}, bson.E{Key: "nindexes", Value: int32(len(idx))}), nil
}

func cmdDBStats(o *op) (bson.D, error) {
	colls := o.s.core.engine.Collections(o.db)
	return ok1(bson.E{Key: "db", Value: o.db}, bson.E{Key: "collections", Value: int32(len(colls))}), nil
}
