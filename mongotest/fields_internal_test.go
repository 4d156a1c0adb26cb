package mongotest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// fieldCase is where a table of fields applies: a valid command, and a way
// to put one more field into it (at the top or in a nested document).
type fieldCase struct {
	table fields
	db    string
	base  func() bson.D
	with  func(cmd bson.D, f bson.E) bson.D
}

func top(cmd bson.D, f bson.E) bson.D { return append(cmd, f) }

// in adds f to the document at cmd[key][0].
func in(key string) func(bson.D, bson.E) bson.D {
	return func(cmd bson.D, f bson.E) bson.D {
		for i, e := range cmd {
			if e.Key == key {
				switch v := e.Value.(type) {
				case bson.A:
					v[0] = append(v[0].(bson.D), f)
				case bson.D:
					cmd[i].Value = append(v, f)
				}
			}
		}
		return cmd
	}
}

func fieldCases() map[string]fieldCase {
	doc := func(kv ...any) bson.D {
		var d bson.D
		for i := 0; i < len(kv); i += 2 {
			d = append(d, bson.E{Key: kv[i].(string), Value: kv[i+1]})
		}
		return d
	}
	return map[string]fieldCase{
		"insert": {table: insertFields, base: func() bson.D {
			return doc("insert", "c", "documents", bson.A{doc("_id", "new")})
		}, with: top},
		"update": {table: updateFields, base: func() bson.D {
			return doc("update", "c", "updates", bson.A{doc("q", doc("_id", 1), "u", doc("$set", doc("x", 2)))})
		}, with: top},
		"update.updates": {table: updateStmtFields, base: func() bson.D {
			return doc("update", "c", "updates", bson.A{doc("q", doc("_id", 1), "u", doc("$set", doc("x", 2)))})
		}, with: in("updates")},
		"delete": {table: deleteFields, base: func() bson.D {
			return doc("delete", "c", "deletes", bson.A{doc("q", doc("_id", 1), "limit", 1)})
		}, with: top},
		"delete.deletes": {table: deleteStmtFields, base: func() bson.D {
			return doc("delete", "c", "deletes", bson.A{doc("q", doc("_id", 1), "limit", 1)})
		}, with: in("deletes")},
		"find":     {table: findFields, base: func() bson.D { return doc("find", "c", "filter", doc()) }, with: top},
		"count":    {table: countFields, base: func() bson.D { return doc("count", "c") }, with: top},
		"distinct": {table: distinctFields, base: func() bson.D { return doc("distinct", "c", "key", "x") }, with: top},
		"aggregate": {table: aggregateFields, base: func() bson.D {
			return doc("aggregate", "c", "pipeline", bson.A{}, "cursor", doc())
		}, with: top},
		"aggregate.cursor": {table: cursorFields, base: func() bson.D {
			return doc("aggregate", "c", "pipeline", bson.A{}, "cursor", doc())
		}, with: in("cursor")},
		"findAndModify": {table: findAndModifyFields, base: func() bson.D {
			return doc("findAndModify", "c", "query", doc("_id", 1), "update", doc("$set", doc("x", 2)))
		}, with: top},
		"create": {table: createFields, base: func() bson.D { return doc("create", "fresh") }, with: top},
		"createIndexes.indexes": {table: indexSpecFields, base: func() bson.D {
			return doc("createIndexes", "c", "indexes", bson.A{doc("key", doc("y", 1), "name", "y_1")})
		}, with: in("indexes")},
		"listCollections": {table: listCollectionsFields, base: func() bson.D { return doc("listCollections", 1) }, with: top},
		"listDatabases":   {table: listDatabasesFields, db: "admin", base: func() bson.D { return doc("listDatabases", 1) }, with: top},
	}
}

// Every option mongotest does not implement is refused with MongoDB's error
// shape (code, codeName, a message naming the option), and the refused
// command changes nothing. The cases come from the field tables
// themselves, so an option added to a table as notImplemented is covered
// by this test at once.
func TestEveryUnimplementedOptionIsRefused(t *testing.T) {
	ctx := context.Background()
	srv := Start(t, WithoutListener())
	client, err := mongo.Connect(srv.ClientOptions())
	require.NoError(t, err)
	defer func() { _ = client.Disconnect(ctx) }()
	db := client.Database("db")
	_, err = db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "x", Value: 1}})
	require.NoError(t, err)

	state := func() string {
		var docs []bson.D
		cur, err := db.Collection("c").Find(ctx, bson.D{})
		require.NoError(t, err)
		require.NoError(t, cur.All(ctx, &docs))
		names, err := db.ListCollectionNames(ctx, bson.D{})
		require.NoError(t, err)
		sort.Strings(names)
		idx, err := db.Collection("c").Indexes().ListSpecifications(ctx)
		require.NoError(t, err)
		return fmt.Sprint(docs, names, len(idx))
	}
	before := state()

	cases := fieldCases()
	covered := map[string]bool{}
	for path, fc := range cases {
		covered[fmt.Sprintf("%p", fc.table)] = true
		var refused []string
		for name, rule := range fc.table {
			if rule == notImplemented {
				refused = append(refused, name)
			}
		}
		sort.Strings(refused)
		for _, name := range refused {
			t.Run(path+"."+name, func(t *testing.T) {
				dbName := "db"
				if fc.db != "" {
					dbName = fc.db
				}
				cmd := fc.with(fc.base(), bson.E{Key: name, Value: bson.D{{Key: "x", Value: 1}}})
				err := client.Database(dbName).RunCommand(ctx, cmd).Err()
				var ce mongo.CommandError
				if !assertCommandError(t, err, &ce) {
					// a write statement's refusal is a write error
					var we mongo.WriteException
					require.ErrorAs(t, err, &we, "%s with %s was not refused", path, name)
					require.Len(t, we.WriteErrors, 1)
					assert.Equal(t, 238, we.WriteErrors[0].Code)
					assert.Contains(t, we.WriteErrors[0].Message, "'"+name+"'")
					assert.Equal(t, before, state(), "a refused statement changes nothing")
					return
				}
				assert.EqualValues(t, 238, ce.Code)
				assert.Equal(t, "NotImplemented", ce.Name)
				assert.Contains(t, ce.Message, "'"+name+"'")
				assert.Equal(t, before, state(), "a refused command changes nothing")
			})
		}
		t.Run(path+" refuses an unknown field", func(t *testing.T) {
			cmd := fc.with(fc.base(), bson.E{Key: "noSuchOption", Value: true})
			dbName := "db"
			if fc.db != "" {
				dbName = fc.db
			}
			err := client.Database(dbName).RunCommand(ctx, cmd).Err()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "BSON field '"+path+".noSuchOption' is an unknown field.")
			assert.Equal(t, before, state())
		})
	}
	// Every table with a refused entry has a case here.
	for _, tbl := range []fields{insertFields, updateFields, updateStmtFields, deleteFields, deleteStmtFields,
		findFields, countFields, distinctFields, aggregateFields, cursorFields, findAndModifyFields, createFields,
		indexSpecFields, listCollectionsFields, listDatabasesFields} {
		assert.True(t, covered[fmt.Sprintf("%p", tbl)], "a field table has no case")
	}
}

// assertCommandError reports whether err is a command error (filling ce).
func assertCommandError(t *testing.T, err error, ce *mongo.CommandError) bool {
	t.Helper()
	require.Error(t, err)
	if e, ok := err.(mongo.CommandError); ok {
		*ce = e
		return true
	}
	if strings.Contains(err.Error(), "write exception") {
		return false
	}
	require.ErrorAs(t, err, ce)
	return true
}
