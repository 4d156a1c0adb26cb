package mongotest_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// These tests drive the server only through mongo-driver/v2, the way
// users do, and check what is stored after every write.

// newTestDB starts a server and returns database "db" on it.
func newTestDB(t *testing.T) (context.Context, *mongo.Database) {
	t.Helper()
	srv := mongotest.Start(t)
	return testContext(t), connect(t, srv).Database("db")
}

// fromJSON parses a relaxed Extended JSON document.
func fromJSON(t testing.TB, s string) bson.D {
	t.Helper()
	var d bson.D
	require.NoError(t, bson.UnmarshalExtJSON([]byte(s), false, &d), "parse %s", s)
	return d
}

// fromJSONArray parses a relaxed Extended JSON array of documents.
func fromJSONArray(t testing.TB, s string) []bson.D {
	t.Helper()
	var w struct {
		A []bson.D `bson:"a"`
	}
	require.NoError(t, bson.UnmarshalExtJSON([]byte(`{"a": `+s+`}`), false, &w), "parse %s", s)
	return w.A
}

// toJSON renders v as relaxed Extended JSON, so int32 and int64 compare
// equal while doubles, strings and field order still count.
func toJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(v, false, false)
	require.NoError(t, err)
	return string(b)
}

// canonJSON re-renders JSON text the way toJSON renders documents.
func canonJSON(t testing.TB, s string) string {
	t.Helper()
	return toJSON(t, fromJSON(t, s))
}

// stored returns every document of coll, by _id.
func stored(t testing.TB, ctx context.Context, coll *mongo.Collection) []bson.D {
	t.Helper()
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(t, err)
	var docs []bson.D
	require.NoError(t, cur.All(ctx, &docs))
	return docs
}

// requireStored asserts coll holds exactly want (a JSON array), by _id.
func requireStored(t testing.TB, ctx context.Context, coll *mongo.Collection, want string) {
	t.Helper()
	requireStoredDocs(t, ctx, coll, fromJSONArray(t, want))
}

// requireStoredDocs asserts coll holds exactly want, by _id.
func requireStoredDocs(t testing.TB, ctx context.Context, coll *mongo.Collection, want []bson.D) {
	t.Helper()
	got := stored(t, ctx, coll)
	if got == nil {
		got = []bson.D{}
	}
	if want == nil {
		want = []bson.D{}
	}
	require.Equal(t, toJSON(t, bson.D{{Key: "a", Value: want}}), toJSON(t, bson.D{{Key: "a", Value: got}}))
}

// requireCommandError asserts err is a server CommandError with code and codeName.
func requireCommandError(t testing.TB, err error, code int32, name string) mongo.CommandError {
	t.Helper()
	var ce mongo.CommandError
	require.ErrorAs(t, err, &ce, "got %v", err)
	require.Equal(t, code, ce.Code, "got %v", err)
	require.Equal(t, name, ce.Name, "got %v", err)
	return ce
}

// requireWriteError asserts err is a WriteException with one write error.
func requireWriteError(t testing.TB, err error, code int) mongo.WriteError {
	t.Helper()
	var we mongo.WriteException
	require.ErrorAs(t, err, &we, "got %v", err)
	require.Len(t, we.WriteErrors, 1, "got %v", err)
	require.Equal(t, code, we.WriteErrors[0].Code, "got %v", err)
	return we.WriteErrors[0]
}

// writeExceptionReply returns the server reply behind a WriteException.
func writeExceptionReply(t testing.TB, err error) bson.M {
	t.Helper()
	var we mongo.WriteException
	require.ErrorAs(t, err, &we, "got %v", err)
	var reply bson.M
	require.NoError(t, bson.Unmarshal(we.Raw, &reply))
	return reply
}

func insertJSON(t testing.TB, ctx context.Context, coll *mongo.Collection, docs string) {
	t.Helper()
	var in []any
	for _, d := range fromJSONArray(t, docs) {
		in = append(in, d)
	}
	_, err := coll.InsertMany(ctx, in)
	require.NoError(t, err)
}

func TestHandshakeReplies(t *testing.T) {
	srv := mongotest.Start(t, mongotest.WithReplicaSet("rsx"))
	client := connect(t, srv)
	ctx := testContext(t)

	tests := []struct {
		give        string
		wantPrimary string // the field that says "writable primary"
		wantAbsent  string
	}{
		{give: "hello", wantPrimary: "isWritablePrimary", wantAbsent: "ismaster"},
		{give: "isMaster", wantPrimary: "ismaster", wantAbsent: "isWritablePrimary"},
		{give: "ismaster", wantPrimary: "ismaster", wantAbsent: "isWritablePrimary"},
	}
	for _, tt := range tests {
		t.Run(tt.give+" describes a writable replica-set primary", func(t *testing.T) {
			var got bson.M
			require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: tt.give, Value: 1}}).Decode(&got))

			assert.Equal(t, true, got[tt.wantPrimary])
			assert.NotContains(t, got, tt.wantAbsent)
			assert.Equal(t, false, got["secondary"])
			assert.Equal(t, "rsx", got["setName"])
			assert.EqualValues(t, 1, got["setVersion"])
			assert.Equal(t, srv.Addr(), got["me"])
			assert.Equal(t, srv.Addr(), got["primary"])
			assert.Equal(t, bson.A{srv.Addr()}, got["hosts"])
			assert.EqualValues(t, 16*1024*1024, got["maxBsonObjectSize"])
			assert.EqualValues(t, 48000000, got["maxMessageSizeBytes"])
			assert.EqualValues(t, 100000, got["maxWriteBatchSize"])
			assert.EqualValues(t, 30, got["logicalSessionTimeoutMinutes"])
			assert.EqualValues(t, 0, got["minWireVersion"])
			assert.EqualValues(t, 21, got["maxWireVersion"])
			assert.IsType(t, bson.ObjectID{}, got["electionId"])
			assert.IsType(t, bson.DateTime(0), got["localTime"])
			assert.Contains(t, got, "topologyVersion")
			assert.Contains(t, got, "connectionId")
			assert.EqualValues(t, 1, got["ok"])
		})
	}
}

func TestServerInfoCommands(t *testing.T) {
	ctx, db := newTestDB(t)
	admin := db.Client().Database("admin")

	t.Run("ping answers ok", func(t *testing.T) {
		var got bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Decode(&got))
		assert.EqualValues(t, 1, got["ok"])
	})

	t.Run("buildInfo reports 7.0.0 on any database", func(t *testing.T) {
		var got bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&got))
		assert.Equal(t, "7.0.0", got["version"])
		assert.Equal(t, bson.A{int32(7), int32(0), int32(0), int32(0)}, got["versionArray"])
		assert.EqualValues(t, 16*1024*1024, got["maxBsonObjectSize"])
	})

	t.Run("getParameter returns the named parameters", func(t *testing.T) {
		var got bson.M
		require.NoError(t, admin.RunCommand(ctx, bson.D{{Key: "getParameter", Value: 1}, {Key: "transactionLifetimeLimitSeconds", Value: 1}}).Decode(&got))
		assert.EqualValues(t, 60, got["transactionLifetimeLimitSeconds"])
		assert.NotContains(t, got, "featureCompatibilityVersion")
	})

	t.Run("getParameter star returns all of them", func(t *testing.T) {
		var got bson.M
		require.NoError(t, admin.RunCommand(ctx, bson.D{{Key: "getParameter", Value: "*"}}).Decode(&got))
		assert.Equal(t, canonJSON(t, `{"version": "7.0"}`), toJSON(t, got["featureCompatibilityVersion"]))
		assert.EqualValues(t, 60, got["transactionLifetimeLimitSeconds"])
	})

	t.Run("getParameter of an unknown parameter fails", func(t *testing.T) {
		err := admin.RunCommand(ctx, bson.D{{Key: "getParameter", Value: 1}, {Key: "noSuchParameter", Value: 1}}).Err()
		ce := requireCommandError(t, err, 72, "InvalidOptions")
		assert.Contains(t, ce.Message, "no option found to get")
	})

	t.Run("getParameter outside admin is refused", func(t *testing.T) {
		err := db.RunCommand(ctx, bson.D{{Key: "getParameter", Value: "*"}}).Err()
		ce := requireCommandError(t, err, 13, "Unauthorized")
		assert.Contains(t, ce.Message, "getParameter may only be run against the admin database.")
	})

	t.Run("serverStatus describes the process", func(t *testing.T) {
		var got bson.M
		require.NoError(t, admin.RunCommand(ctx, bson.D{{Key: "serverStatus", Value: 1}}).Decode(&got))
		assert.Equal(t, "7.0.0", got["version"])
		assert.Equal(t, "mongod", got["process"])
		assert.IsType(t, bson.DateTime(0), got["localTime"])
		var conns struct {
			Current int32 `bson:"current"`
		}
		raw, err := bson.Marshal(got["connections"])
		require.NoError(t, err)
		require.NoError(t, bson.Unmarshal(raw, &conns))
		assert.Positive(t, conns.Current)
		assert.Contains(t, got, "transactions")
	})
}

func TestListDatabases(t *testing.T) {
	ctx, db := newTestDB(t)
	client := db.Client()
	for _, name := range []string{"alpha", "beta"} {
		_, err := client.Database(name).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
		require.NoError(t, err)
	}

	tests := []struct {
		name   string
		give   bson.D
		want   []string
		absent []string
	}{
		{name: "lists every database with data", give: bson.D{}, want: []string{"alpha", "beta"}, absent: []string{"db"}},
		{name: "filters by name", give: bson.D{{Key: "name", Value: "beta"}}, want: []string{"beta"}, absent: []string{"alpha"}},
		{name: "filters with operators", give: bson.D{{Key: "name", Value: bson.D{{Key: "$regex", Value: "^al"}}}}, want: []string{"alpha"}, absent: []string{"beta"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, err := client.ListDatabaseNames(ctx, tt.give)
			require.NoError(t, err)
			for _, w := range tt.want {
				assert.Contains(t, names, w)
			}
			for _, a := range tt.absent {
				assert.NotContains(t, names, a)
			}
		})
	}

	t.Run("full form reports sizes", func(t *testing.T) {
		res, err := client.ListDatabases(ctx, bson.D{{Key: "name", Value: "alpha"}})
		require.NoError(t, err)
		require.Len(t, res.Databases, 1)
		assert.Equal(t, "alpha", res.Databases[0].Name)
		assert.False(t, res.Databases[0].Empty)
		assert.Positive(t, res.Databases[0].SizeOnDisk)
		assert.Positive(t, res.TotalSize)
	})

	t.Run("nameOnly leaves out the sizes", func(t *testing.T) {
		var got bson.M
		require.NoError(t, client.Database("admin").RunCommand(ctx, bson.D{{Key: "listDatabases", Value: 1}, {Key: "nameOnly", Value: true}, {Key: "filter", Value: bson.D{{Key: "name", Value: "alpha"}}}}).Decode(&got))
		assert.Equal(t, canonJSON(t, `{"a": [{"name": "alpha"}]}`), toJSON(t, bson.D{{Key: "a", Value: got["databases"]}}))
		assert.NotContains(t, got, "totalSize")
	})

	t.Run("dropDatabase removes it and its collections", func(t *testing.T) {
		require.NoError(t, client.Database("alpha").Drop(ctx))
		names, err := client.ListDatabaseNames(ctx, bson.D{})
		require.NoError(t, err)
		assert.NotContains(t, names, "alpha")
		assert.Contains(t, names, "beta")
		colls, err := client.Database("alpha").ListCollectionNames(ctx, bson.D{})
		require.NoError(t, err)
		assert.Empty(t, colls)
		n, err := client.Database("alpha").Collection("c").CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		assert.Zero(t, n)
	})
}

func TestCollectionCatalog(t *testing.T) {
	ctx, db := newTestDB(t)
	for _, name := range []string{"apples", "apricots", "bananas"} {
		require.NoError(t, db.CreateCollection(ctx, name))
	}

	t.Run("create of an existing collection is NamespaceExists", func(t *testing.T) {
		err := db.CreateCollection(ctx, "apples")
		ce := requireCommandError(t, err, 48, "NamespaceExists")
		assert.Contains(t, ce.Message, "db.apples")
	})

	tests := []struct {
		name string
		give bson.D
		want []string
	}{
		{name: "lists every collection", give: bson.D{}, want: []string{"apples", "apricots", "bananas"}},
		{name: "filters by name", give: bson.D{{Key: "name", Value: "bananas"}}, want: []string{"bananas"}},
		{name: "filters with operators", give: bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: bson.A{"apples", "bananas", "cherries"}}}}}, want: []string{"apples", "bananas"}},
		{name: "filters on type", give: bson.D{{Key: "type", Value: "view"}}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run("listCollections "+tt.name, func(t *testing.T) {
			names, err := db.ListCollectionNames(ctx, tt.give)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.want, names)
		})
	}

	t.Run("listCollections reports options, uuid and idIndex", func(t *testing.T) {
		specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "apples"}})
		require.NoError(t, err)
		require.Len(t, specs, 1)
		assert.Equal(t, "collection", specs[0].Type)
		assert.False(t, specs[0].ReadOnly)
		assert.NotNil(t, specs[0].UUID)
		require.NotNil(t, specs[0].IDIndex)
		assert.Equal(t, "_id_", specs[0].IDIndex.Name)
	})

	t.Run("listCollections nameOnly returns only name and type", func(t *testing.T) {
		cur, err := db.ListCollections(ctx, bson.D{{Key: "name", Value: "apples"}}, options.ListCollections().SetNameOnly(true))
		require.NoError(t, err)
		var got []bson.D
		require.NoError(t, cur.All(ctx, &got))
		require.Equal(t, []bson.D{{{Key: "name", Value: "apples"}, {Key: "type", Value: "collection"}}}, got)
	})

	t.Run("create stores the options listCollections reports", func(t *testing.T) {
		engineOpts := bson.D{{Key: "wiredTiger", Value: bson.D{{Key: "configString", Value: "block_compressor=zstd"}}}}
		require.NoError(t, db.CreateCollection(ctx, "zstd", options.CreateCollection().SetStorageEngine(engineOpts)))
		specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "zstd"}})
		require.NoError(t, err)
		require.Len(t, specs, 1)
		var opts struct {
			StorageEngine bson.D `bson:"storageEngine"`
		}
		require.NoError(t, bson.Unmarshal(specs[0].Options, &opts))
		assert.Equal(t, engineOpts, opts.StorageEngine)
	})

	t.Run("drop removes the collection and its documents", func(t *testing.T) {
		coll := db.Collection("apricots")
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		require.NoError(t, err)
		require.NoError(t, coll.Drop(ctx))
		names, err := db.ListCollectionNames(ctx, bson.D{})
		require.NoError(t, err)
		assert.NotContains(t, names, "apricots")
		requireStored(t, ctx, coll, `[]`)
	})

	t.Run("drop of a missing collection succeeds", func(t *testing.T) {
		require.NoError(t, db.Collection("never").Drop(ctx))
	})

	t.Run("drop reports the index count it had", func(t *testing.T) {
		coll := db.Collection("indexed")
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}})
		require.NoError(t, err)
		var got bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "drop", Value: "indexed"}}).Decode(&got))
		assert.EqualValues(t, 2, got["nIndexesWas"])
		assert.Equal(t, "db.indexed", got["ns"])
	})
}

func TestCreateAndListIndexes(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("people")

	names, err := coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)},
		{Keys: bson.D{{Key: "last", Value: 1}, {Key: "first", Value: -1}}},
		{Keys: bson.D{{Key: "nick", Value: 1}}, Options: options.Index().SetSparse(true).SetName("by_nick")},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"email_1", "last_1_first_-1", "by_nick"}, names)

	specs, err := coll.Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	got := map[string]mongo.IndexSpecification{}
	for _, s := range specs {
		got[s.Name] = s
	}
	require.Len(t, got, 4)
	require.Contains(t, got, "_id_")
	assert.Equal(t, canonJSON(t, `{"_id": 1}`), toJSON(t, got["_id_"].KeysDocument))
	assert.Equal(t, canonJSON(t, `{"email": 1}`), toJSON(t, got["email_1"].KeysDocument))
	assert.Equal(t, true, *got["email_1"].Unique)
	assert.Equal(t, canonJSON(t, `{"last": 1, "first": -1}`), toJSON(t, got["last_1_first_-1"].KeysDocument))
	assert.Nil(t, got["last_1_first_-1"].Unique)
	assert.Equal(t, true, *got["by_nick"].Sparse)
	assert.EqualValues(t, 2, got["email_1"].Version)

	t.Run("creating an identical index again is a no-op", func(t *testing.T) {
		var reply bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: "people"}, {Key: "indexes", Value: bson.A{
			bson.D{{Key: "key", Value: bson.D{{Key: "email", Value: 1}}}, {Key: "name", Value: "email_1"}, {Key: "unique", Value: true}},
		}}}).Decode(&reply))
		assert.EqualValues(t, 4, reply["numIndexesBefore"])
		assert.EqualValues(t, 4, reply["numIndexesAfter"])
		assert.Equal(t, "all indexes already exist", reply["note"])
	})

	t.Run("createIndexes on a new collection creates it", func(t *testing.T) {
		var reply bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: "fresh"}, {Key: "indexes", Value: bson.A{
			bson.D{{Key: "key", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "name", Value: "a_1"}},
		}}}).Decode(&reply))
		assert.Equal(t, true, reply["createdCollectionAutomatically"])
		assert.EqualValues(t, 1, reply["numIndexesBefore"])
		assert.EqualValues(t, 2, reply["numIndexesAfter"])
		names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: "fresh"}})
		require.NoError(t, err)
		assert.Equal(t, []string{"fresh"}, names)
	})

	conflicts := []struct {
		name     string
		give     mongo.IndexModel
		wantCode int32
		wantName string
	}{
		{
			name:     "same name with other keys",
			give:     mongo.IndexModel{Keys: bson.D{{Key: "phone", Value: 1}}, Options: options.Index().SetName("email_1")},
			wantCode: 86, wantName: "IndexKeySpecsConflict",
		},
		{
			name: "same name with a partial filter",
			give: mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetName("email_1").SetUnique(true).
				SetPartialFilterExpression(bson.D{{Key: "email", Value: bson.D{{Key: "$exists", Value: true}}}})},
			wantCode: 86, wantName: "IndexKeySpecsConflict",
		},
		{
			name:     "same keys under another name",
			give:     mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetName("other").SetUnique(true)},
			wantCode: 85, wantName: "IndexOptionsConflict",
		},
		{
			name:     "same name and keys with other options",
			give:     mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}},
			wantCode: 85, wantName: "IndexOptionsConflict",
		},
	}
	for _, tt := range conflicts {
		t.Run("an index with the "+tt.name+" is refused", func(t *testing.T) {
			_, err := coll.Indexes().CreateOne(ctx, tt.give)
			requireCommandError(t, err, tt.wantCode, tt.wantName)
			specs, err := coll.Indexes().ListSpecifications(ctx)
			require.NoError(t, err)
			assert.Len(t, specs, 4, "nothing was created")
		})
	}

	t.Run("a unique index over duplicates is refused", func(t *testing.T) {
		dups := db.Collection("dups")
		insertJSON(t, ctx, dups, `[{"_id": 1, "k": "a"}, {"_id": 2, "k": "a"}]`)
		_, err := dups.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}, Options: options.Index().SetUnique(true)})
		ce := requireCommandError(t, err, 11000, "DuplicateKey")
		assert.Contains(t, ce.Message, "E11000 duplicate key error collection: db.dups index: k_1 dup key: { k: \"a\" }")
		specs, err := dups.Indexes().ListSpecifications(ctx)
		require.NoError(t, err)
		assert.Len(t, specs, 1)
	})

	t.Run("listIndexes on a missing collection is NamespaceNotFound", func(t *testing.T) {
		// The driver hides this error from Indexes().List, so ask directly.
		err := db.RunCommand(ctx, bson.D{{Key: "listIndexes", Value: "missing"}}).Err()
		requireCommandError(t, err, 26, "NamespaceNotFound")
	})

	t.Run("bad index specs are refused", func(t *testing.T) {
		tests := []struct {
			name     string
			give     bson.D
			wantCode int32
		}{
			{name: "empty key", give: bson.D{{Key: "key", Value: bson.D{}}, {Key: "name", Value: "x"}}, wantCode: 67},
			{name: "zero direction", give: bson.D{{Key: "key", Value: bson.D{{Key: "a", Value: 0}}}, {Key: "name", Value: "x"}}, wantCode: 67},
			{name: "unknown plugin", give: bson.D{{Key: "key", Value: bson.D{{Key: "a", Value: "nope"}}}, {Key: "name", Value: "x"}}, wantCode: 67},
			{name: "key not a document", give: bson.D{{Key: "key", Value: "a"}, {Key: "name", Value: "x"}}, wantCode: 14},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: "people"}, {Key: "indexes", Value: bson.A{tt.give}}}).Err()
				var ce mongo.CommandError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tt.wantCode, ce.Code, "got %v", err)
			})
		}
	})
}

func TestUniqueIndexes(t *testing.T) {
	ctx, db := newTestDB(t)

	t.Run("a duplicate insert is E11000 with keyPattern and keyValue", func(t *testing.T) {
		coll := db.Collection("users")
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)})
		require.NoError(t, err)
		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a@x"}})
		require.NoError(t, err)

		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "a@x"}})

		require.True(t, mongo.IsDuplicateKeyError(err), "got %v", err)
		var se mongo.ServerError
		require.ErrorAs(t, err, &se)
		assert.True(t, se.HasErrorCode(11000))
		we := requireWriteError(t, err, 11000)
		assert.Equal(t, 0, we.Index)
		assert.Equal(t, `E11000 duplicate key error collection: db.users index: email_1 dup key: { email: "a@x" }`, we.Message)
		var raw struct {
			KeyPattern bson.D `bson:"keyPattern"`
			KeyValue   bson.D `bson:"keyValue"`
		}
		require.NoError(t, bson.Unmarshal(we.Raw, &raw))
		assert.Equal(t, canonJSON(t, `{"email": 1}`), toJSON(t, raw.KeyPattern))
		assert.Equal(t, canonJSON(t, `{"email": "a@x"}`), toJSON(t, raw.KeyValue))
		requireStored(t, ctx, coll, `[{"_id": 1, "email": "a@x"}]`)
	})

	t.Run("an update into a duplicate is refused and changes nothing", func(t *testing.T) {
		coll := db.Collection("users")
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "b@x"}})
		require.NoError(t, err)
		_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: "a@x"}}}})
		requireWriteError(t, err, 11000)
		requireStored(t, ctx, coll, `[{"_id": 1, "email": "a@x"}, {"_id": 3, "email": "b@x"}]`)
	})

	t.Run("a duplicate _id is E11000 on the _id_ index", func(t *testing.T) {
		coll := db.Collection("ids")
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}})
		require.NoError(t, err)
		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}})
		we := requireWriteError(t, err, 11000)
		assert.Contains(t, we.Message, "index: _id_ dup key: { _id: \"k\" }")
	})

	tests := []struct {
		name      string
		give      mongo.IndexModel
		giveDocs  string // inserted one by one, in order
		wantDupAt []int  // positions whose insert fails with E11000
	}{
		{
			name:      "compound unique keys are unique as a pair",
			give:      mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}, Options: options.Index().SetUnique(true)},
			giveDocs:  `[{"_id": 1, "a": 1, "b": 1}, {"_id": 2, "a": 1, "b": 2}, {"_id": 3, "a": 2, "b": 1}, {"_id": 4, "a": 1, "b": 1}]`,
			wantDupAt: []int{3},
		},
		{
			name:      "a missing field is indexed as null",
			give:      mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetUnique(true)},
			giveDocs:  `[{"_id": 1}, {"_id": 2}, {"_id": 3, "a": null}]`,
			wantDupAt: []int{1, 2},
		},
		{
			name:      "numbers of different types are the same key",
			give:      mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetUnique(true)},
			giveDocs:  `[{"_id": 1, "a": 1}, {"_id": 2, "a": 1.0}, {"_id": 3, "a": {"$numberLong": "1"}}, {"_id": 4, "a": "1"}]`,
			wantDupAt: []int{1, 2},
		},
		{
			name:      "array elements are each a key",
			give:      mongo.IndexModel{Keys: bson.D{{Key: "tags", Value: 1}}, Options: options.Index().SetUnique(true)},
			giveDocs:  `[{"_id": 1, "tags": ["x", "y"]}, {"_id": 2, "tags": ["z", "y"]}, {"_id": 3, "tags": "x"}, {"_id": 4, "tags": ["w", "w"]}]`,
			wantDupAt: []int{1, 2},
		},
		{
			name:      "a sparse unique index skips documents without the field",
			give:      mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetUnique(true).SetSparse(true)},
			giveDocs:  `[{"_id": 1}, {"_id": 2}, {"_id": 3, "a": 5}, {"_id": 4, "a": 5}, {"_id": 5, "a": null}, {"_id": 6, "a": null}]`,
			wantDupAt: []int{3, 5},
		},
		{
			name: "a partial index with $exists covers only documents that have the field",
			give: mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetUnique(true).
				SetPartialFilterExpression(bson.D{{Key: "a", Value: bson.D{{Key: "$exists", Value: true}}}})},
			giveDocs:  `[{"_id": 1}, {"_id": 2}, {"_id": 3, "a": 5}, {"_id": 4, "a": 5}]`,
			wantDupAt: []int{3},
		},
		{
			name: "a partial index with an equality covers only matching documents",
			give: mongo.IndexModel{Keys: bson.D{{Key: "user", Value: 1}}, Options: options.Index().SetUnique(true).
				SetPartialFilterExpression(bson.D{{Key: "status", Value: "active"}})},
			giveDocs:  `[{"_id": 1, "user": "u", "status": "done"}, {"_id": 2, "user": "u", "status": "done"}, {"_id": 3, "user": "u", "status": "active"}, {"_id": 4, "user": "u", "status": "active"}, {"_id": 5, "user": "v", "status": "active"}]`,
			wantDupAt: []int{3},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			coll := db.Collection("t" + string(rune('a'+i)))
			_, err := coll.Indexes().CreateOne(ctx, tt.give)
			require.NoError(t, err)
			var want []bson.D
			for j, d := range fromJSONArray(t, tt.giveDocs) {
				_, err := coll.InsertOne(ctx, d)
				if slices.Contains(tt.wantDupAt, j) {
					require.True(t, mongo.IsDuplicateKeyError(err), "doc %d: got %v", j, err)
					continue
				}
				require.NoError(t, err, "doc %d", j)
				want = append(want, d)
			}
			requireStoredDocs(t, ctx, coll, want)
		})
	}

	t.Run("a partial index's filter is listed", func(t *testing.T) {
		cur, err := db.Collection("tg").Indexes().List(ctx)
		require.NoError(t, err)
		var specs []bson.M
		require.NoError(t, cur.All(ctx, &specs))
		require.Len(t, specs, 2)
		assert.Equal(t, canonJSON(t, `{"status": "active"}`), toJSON(t, specs[1]["partialFilterExpression"]))
	})
}

func TestConcurrentInsertsOnUniqueIndex(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("race")
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "key", Value: 1}}, Options: options.Index().SetUnique(true)})
	require.NoError(t, err)

	const writers = 16
	errs := make([]error, writers)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			_, errs[i] = coll.InsertOne(ctx, bson.D{{Key: "writer", Value: i}, {Key: "key", Value: "same"}})
		}()
	}
	start.Done()
	wg.Wait()

	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			continue
		}
		require.True(t, mongo.IsDuplicateKeyError(err), "writer %d: %v", i, err)
	}
	require.Equal(t, 1, wins)
	docs := stored(t, ctx, coll)
	require.Len(t, docs, 1)
}

func TestDropIndexes(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	_, err := coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "a", Value: 1}}},
		{Keys: bson.D{{Key: "b", Value: 1}}},
		{Keys: bson.D{{Key: "c", Value: -1}}},
		{Keys: bson.D{{Key: "d", Value: 1}}, Options: options.Index().SetUnique(true)},
	})
	require.NoError(t, err)
	indexNames := func() []string {
		specs, err := coll.Indexes().ListSpecifications(ctx)
		require.NoError(t, err)
		var names []string
		for _, s := range specs {
			names = append(names, s.Name)
		}
		return names
	}

	require.NoError(t, coll.Indexes().DropOne(ctx, "a_1"))
	assert.ElementsMatch(t, []string{"_id_", "b_1", "c_-1", "d_1"}, indexNames())

	require.NoError(t, coll.Indexes().DropWithKey(ctx, bson.D{{Key: "c", Value: -1}}))
	assert.ElementsMatch(t, []string{"_id_", "b_1", "d_1"}, indexNames())

	err = coll.Indexes().DropOne(ctx, "nope")
	ce := requireCommandError(t, err, 27, "IndexNotFound")
	assert.Contains(t, ce.Message, "nope")

	err = coll.Indexes().DropWithKey(ctx, bson.D{{Key: "zz", Value: 1}})
	requireCommandError(t, err, 27, "IndexNotFound")

	err = coll.Indexes().DropOne(ctx, "_id_")
	requireCommandError(t, err, 72, "InvalidOptions")

	t.Run("a dropped unique index no longer applies", func(t *testing.T) {
		require.NoError(t, coll.Indexes().DropOne(ctx, "d_1"))
		insertJSON(t, ctx, coll, `[{"_id": 1, "d": 1}, {"_id": 2, "d": 1}]`)
		requireStored(t, ctx, coll, `[{"_id": 1, "d": 1}, {"_id": 2, "d": 1}]`)
	})

	require.NoError(t, coll.Indexes().DropAll(ctx))
	assert.Equal(t, []string{"_id_"}, indexNames())

	err = db.Collection("missing").Indexes().DropOne(ctx, "a_1")
	requireCommandError(t, err, 26, "NamespaceNotFound")
}

func TestInsert(t *testing.T) {
	ctx, db := newTestDB(t)

	t.Run("InsertOne assigns an ObjectID _id first", func(t *testing.T) {
		coll := db.Collection("auto")
		res, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
		require.NoError(t, err)
		id, ok := res.InsertedID.(bson.ObjectID)
		require.True(t, ok, "got %T", res.InsertedID)
		docs := stored(t, ctx, coll)
		require.Len(t, docs, 1)
		assert.Equal(t, bson.D{{Key: "_id", Value: id}, {Key: "x", Value: int32(1)}}, docs[0])
	})

	t.Run("a raw insert without _id gets one put first", func(t *testing.T) {
		coll := db.Collection("raw")
		var reply bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "insert", Value: "raw"}, {Key: "documents", Value: bson.A{
			bson.D{{Key: "x", Value: 1}, {Key: "y", Value: "z"}},
		}}}).Decode(&reply))
		assert.EqualValues(t, 1, reply["n"])
		docs := stored(t, ctx, coll)
		require.Len(t, docs, 1)
		assert.Equal(t, "_id", docs[0][0].Key)
		assert.IsType(t, bson.ObjectID{}, docs[0][0].Value)
	})

	t.Run("an _id not first is moved first", func(t *testing.T) {
		coll := db.Collection("order")
		_, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}, {Key: "_id", Value: 7}})
		require.NoError(t, err)
		requireStored(t, ctx, coll, `[{"_id": 7, "x": 1}]`)
	})

	t.Run("an ordered batch stops at the first error", func(t *testing.T) {
		coll := db.Collection("ordered")
		_, err := coll.InsertMany(ctx, []any{
			bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 3}},
		})
		var bwe mongo.BulkWriteException
		require.ErrorAs(t, err, &bwe)
		require.Len(t, bwe.WriteErrors, 1)
		assert.Equal(t, 2, bwe.WriteErrors[0].Index)
		assert.Equal(t, 11000, bwe.WriteErrors[0].Code)
		requireStored(t, ctx, coll, `[{"_id": 1}, {"_id": 2}]`)
	})

	t.Run("an unordered batch reports every error and inserts the rest", func(t *testing.T) {
		coll := db.Collection("unordered")
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 0}})
		require.NoError(t, err)
		_, err = coll.InsertMany(ctx, []any{
			bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 0}}, bson.D{{Key: "_id", Value: 2}},
			bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: bson.A{1}}}, bson.D{{Key: "_id", Value: 3}},
		}, options.InsertMany().SetOrdered(false))
		var bwe mongo.BulkWriteException
		require.ErrorAs(t, err, &bwe)
		var got [][2]int
		for _, we := range bwe.WriteErrors {
			got = append(got, [2]int{we.Index, we.Code})
		}
		assert.Equal(t, [][2]int{{1, 11000}, {3, 11000}, {4, 53}}, got)
		requireStored(t, ctx, coll, `[{"_id": 0}, {"_id": 1}, {"_id": 2}, {"_id": 3}]`)
	})

	t.Run("a raw insert reply counts what was inserted", func(t *testing.T) {
		err := db.RunCommand(ctx, bson.D{{Key: "insert", Value: "rawcount"}, {Key: "ordered", Value: false}, {Key: "documents", Value: bson.A{
			bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}},
		}}}).Err()
		reply := writeExceptionReply(t, err)
		assert.EqualValues(t, 2, reply["n"])
		werrs, ok := reply["writeErrors"].(bson.A)
		require.True(t, ok, "reply: %v", reply)
		require.Len(t, werrs, 1)
		var we struct {
			Index  int32  `bson:"index"`
			Code   int32  `bson:"code"`
			ErrMsg string `bson:"errmsg"`
		}
		raw, err := bson.Marshal(werrs[0])
		require.NoError(t, err)
		require.NoError(t, bson.Unmarshal(raw, &we))
		assert.Equal(t, int32(1), we.Index)
		assert.Equal(t, int32(11000), we.Code)
		assert.Contains(t, we.ErrMsg, "E11000 duplicate key error collection: db.rawcount index: _id_")
	})

	t.Run("ids that are arrays or regexes are refused", func(t *testing.T) {
		coll := db.Collection("badid")
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.A{1, 2}}})
		we := requireWriteError(t, err, 53)
		assert.Contains(t, we.Message, "The '_id' value cannot be of type array")
		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.Regex{Pattern: "a"}}})
		requireWriteError(t, err, 53)
		requireStored(t, ctx, coll, `[]`)
	})
}

func TestUpdate(t *testing.T) {
	ctx, db := newTestDB(t)

	t.Run("UpdateOne changes one matching document", func(t *testing.T) {
		coll := db.Collection("one")
		insertJSON(t, ctx, coll, `[{"_id": 1, "g": "a", "n": 1}, {"_id": 2, "g": "a", "n": 1}]`)
		res, err := coll.UpdateOne(ctx, bson.D{{Key: "g", Value: "a"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
		require.NoError(t, err)
		assert.Equal(t, int64(1), res.MatchedCount)
		assert.Equal(t, int64(1), res.ModifiedCount)
		assert.Nil(t, res.UpsertedID)
		requireStored(t, ctx, coll, `[{"_id": 1, "g": "a", "n": 2}, {"_id": 2, "g": "a", "n": 1}]`)
	})

	t.Run("UpdateMany changes every match and counts only real changes", func(t *testing.T) {
		coll := db.Collection("many")
		insertJSON(t, ctx, coll, `[{"_id": 1, "s": "new"}, {"_id": 2, "s": "old"}, {"_id": 3, "s": "old"}, {"_id": 4, "s": "new", "skip": true}]`)
		res, err := coll.UpdateMany(ctx, bson.D{{Key: "skip", Value: bson.D{{Key: "$exists", Value: false}}}}, bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: "new"}}}})
		require.NoError(t, err)
		assert.Equal(t, int64(3), res.MatchedCount)
		assert.Equal(t, int64(2), res.ModifiedCount, "a $set to the same value is not a modification")
		requireStored(t, ctx, coll, `[{"_id": 1, "s": "new"}, {"_id": 2, "s": "new"}, {"_id": 3, "s": "new"}, {"_id": 4, "s": "new", "skip": true}]`)
	})

	t.Run("no match without upsert changes nothing", func(t *testing.T) {
		coll := db.Collection("nomatch")
		insertJSON(t, ctx, coll, `[{"_id": 1}]`)
		res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}})
		require.NoError(t, err)
		assert.Zero(t, res.MatchedCount)
		assert.Zero(t, res.ModifiedCount)
		requireStored(t, ctx, coll, `[{"_id": 1}]`)
	})

	upserts := []struct {
		name       string
		giveFilter string
		giveUpdate string
		wantDoc    string // without _id when wantID is empty
		wantID     any
	}{
		{
			name:       "seeds equality fields and applies the update",
			giveFilter: `{"name": "x", "n": {"$gt": 1}, "a.b": 2, "tag": {"$eq": "t"}}`,
			giveUpdate: `{"$set": {"c": 1}, "$setOnInsert": {"created": true}}`,
			// Seeded in path order (MongoDB's EqualityMatches is a map by path).
			wantDoc: `{"a": {"b": 2}, "name": "x", "tag": "t", "c": 1, "created": true}`,
		},
		{
			name:       "uses the filter's _id",
			giveFilter: `{"_id": "k", "v": 1}`,
			giveUpdate: `{"$inc": {"v": 2}}`,
			wantDoc:    `{"_id": "k", "v": 3}`,
			wantID:     "k",
		},
		{
			name:       "seeds from $and equalities",
			giveFilter: `{"$and": [{"a": 1}, {"b": {"$eq": 2}}, {"c": {"$gt": 0}}]}`,
			giveUpdate: `{"$set": {"c": 3}}`,
			wantDoc:    `{"a": 1, "b": 2, "c": 3}`,
		},
	}
	for i, tt := range upserts {
		t.Run("upsert "+tt.name, func(t *testing.T) {
			coll := db.Collection("upsert" + string(rune('a'+i)))
			res, err := coll.UpdateOne(ctx, fromJSON(t, tt.giveFilter), fromJSON(t, tt.giveUpdate), options.UpdateOne().SetUpsert(true))
			require.NoError(t, err)
			assert.Zero(t, res.MatchedCount)
			assert.Zero(t, res.ModifiedCount)
			assert.Equal(t, int64(1), res.UpsertedCount)
			require.NotNil(t, res.UpsertedID)
			docs := stored(t, ctx, coll)
			require.Len(t, docs, 1)
			assert.Equal(t, "_id", docs[0][0].Key)
			assert.Equal(t, res.UpsertedID, docs[0][0].Value)
			got := docs[0]
			if tt.wantID != nil {
				assert.Equal(t, tt.wantID, res.UpsertedID)
			} else {
				assert.IsType(t, bson.ObjectID{}, res.UpsertedID)
				got = got[1:]
			}
			assert.Equal(t, canonJSON(t, tt.wantDoc), toJSON(t, got))
		})
	}

	t.Run("upsert with a match updates and leaves $setOnInsert alone", func(t *testing.T) {
		coll := db.Collection("upsertmatch")
		insertJSON(t, ctx, coll, `[{"_id": 1, "k": "a", "n": 1}]`)
		res, err := coll.UpdateOne(ctx, bson.D{{Key: "k", Value: "a"}},
			fromJSON(t, `{"$inc": {"n": 1}, "$setOnInsert": {"created": true}}`), options.UpdateOne().SetUpsert(true))
		require.NoError(t, err)
		assert.Equal(t, int64(1), res.MatchedCount)
		assert.Nil(t, res.UpsertedID)
		requireStored(t, ctx, coll, `[{"_id": 1, "k": "a", "n": 2}]`)
	})

	t.Run("ReplaceOne replaces the body and keeps _id", func(t *testing.T) {
		coll := db.Collection("replace")
		insertJSON(t, ctx, coll, `[{"_id": 1, "a": 1, "b": 2}]`)
		res, err := coll.ReplaceOne(ctx, bson.D{{Key: "a", Value: 1}}, bson.D{{Key: "c", Value: 3}})
		require.NoError(t, err)
		assert.Equal(t, int64(1), res.ModifiedCount)
		requireStored(t, ctx, coll, `[{"_id": 1, "c": 3}]`)
	})

	t.Run("ReplaceOne upsert takes _id from the filter", func(t *testing.T) {
		coll := db.Collection("replaceupsert")
		res, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 9}, {Key: "ignored", Value: 1}}, bson.D{{Key: "c", Value: 3}}, options.Replace().SetUpsert(true))
		require.NoError(t, err)
		assert.EqualValues(t, 9, res.UpsertedID)
		requireStored(t, ctx, coll, `[{"_id": 9, "c": 3}]`)
	})

	immutable := []struct {
		name string
		give func(coll *mongo.Collection) error
	}{
		{name: "$set of _id", give: func(coll *mongo.Collection) error {
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: 2}}}})
			return err
		}},
		{name: "a replacement with another _id", give: func(coll *mongo.Collection) error {
			_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: 1}})
			return err
		}},
		{name: "$unset of _id", give: func(coll *mongo.Collection) error {
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "_id", Value: ""}}}})
			return err
		}},
	}
	for _, tt := range immutable {
		t.Run(tt.name+" is ImmutableField", func(t *testing.T) {
			coll := db.Collection("immutable")
			_, _ = coll.DeleteMany(ctx, bson.D{})
			insertJSON(t, ctx, coll, `[{"_id": 1, "a": 0}]`)
			we := requireWriteError(t, tt.give(coll), 66)
			assert.Contains(t, we.Message, "_id")
			requireStored(t, ctx, coll, `[{"_id": 1, "a": 0}]`)
		})
	}

	t.Run("$set of _id to the same value is allowed", func(t *testing.T) {
		coll := db.Collection("sameid")
		insertJSON(t, ctx, coll, `[{"_id": 1, "a": 0}]`)
		res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}}}})
		require.NoError(t, err)
		assert.Equal(t, int64(1), res.ModifiedCount)
		requireStored(t, ctx, coll, `[{"_id": 1, "a": 1}]`)
	})

	t.Run("an unordered raw update batch reports each failed statement", func(t *testing.T) {
		coll := db.Collection("rawupdate")
		insertJSON(t, ctx, coll, `[{"_id": 1, "n": 1}, {"_id": 2, "n": "x"}]`)
		err := db.RunCommand(ctx, bson.D{{Key: "update", Value: "rawupdate"}, {Key: "ordered", Value: false}, {Key: "updates", Value: bson.A{
			bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}},
			bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}},
			bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 3}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 0}}}}}, {Key: "upsert", Value: true}},
		}}}).Err()
		reply := writeExceptionReply(t, err)
		assert.EqualValues(t, 2, reply["n"])
		assert.EqualValues(t, 1, reply["nModified"])
		assert.Equal(t, canonJSON(t, `{"a": [{"index": 2, "_id": 3}]}`), toJSON(t, bson.D{{Key: "a", Value: reply["upserted"]}}))
		werrs, ok := reply["writeErrors"].(bson.A)
		require.True(t, ok, "reply: %v", reply)
		require.Len(t, werrs, 1)
		assert.Equal(t, canonJSON(t, `{"index": 0, "code": 14}`), toJSON(t, bson.D(werrs[0].(bson.D)[:2])))
		requireStored(t, ctx, coll, `[{"_id": 1, "n": 2}, {"_id": 2, "n": "x"}, {"_id": 3, "n": 0}]`)
	})

	t.Run("a multi replacement is refused", func(t *testing.T) {
		err := db.RunCommand(ctx, bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
			bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "multi", Value: true}},
		}}}).Err()
		var we mongo.WriteException
		require.ErrorAs(t, err, &we, "got %v", err)
		require.Len(t, we.WriteErrors, 1)
		assert.Equal(t, 9, we.WriteErrors[0].Code)
	})
}

func TestDelete(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[{"_id": 1, "g": "a"}, {"_id": 2, "g": "a"}, {"_id": 3, "g": "b"}, {"_id": 4, "g": "a"}, {"_id": 5, "g": "c"}]`)

	res, err := coll.DeleteOne(ctx, bson.D{{Key: "g", Value: "a"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.DeletedCount)
	requireStored(t, ctx, coll, `[{"_id": 2, "g": "a"}, {"_id": 3, "g": "b"}, {"_id": 4, "g": "a"}, {"_id": 5, "g": "c"}]`)

	res, err = coll.DeleteMany(ctx, bson.D{{Key: "g", Value: "a"}})
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.DeletedCount)
	requireStored(t, ctx, coll, `[{"_id": 3, "g": "b"}, {"_id": 5, "g": "c"}]`)

	res, err = coll.DeleteMany(ctx, bson.D{{Key: "g", Value: "zzz"}})
	require.NoError(t, err)
	assert.Zero(t, res.DeletedCount)

	res, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 5}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.DeletedCount)
	requireStored(t, ctx, coll, `[{"_id": 3, "g": "b"}]`)

	t.Run("a limit other than 0 or 1 is refused", func(t *testing.T) {
		err := db.RunCommand(ctx, bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{
			bson.D{{Key: "q", Value: bson.D{}}, {Key: "limit", Value: 2}},
		}}}).Err()
		require.Error(t, err)
		requireStored(t, ctx, coll, `[{"_id": 3, "g": "b"}]`)
	})

	res, err = coll.DeleteMany(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.DeletedCount)
	requireStored(t, ctx, coll, `[]`)
}

func TestFind(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[
		{"_id": 1, "a": 2, "b": "x", "sub": {"p": 1, "q": 2}},
		{"_id": 2, "a": 1, "b": "y", "sub": {"p": 3, "q": 4}},
		{"_id": 3, "a": 2, "b": "z"},
		{"_id": 4, "a": 3, "b": "x"},
		{"_id": 5, "a": 1, "b": "w"}
	]`)

	tests := []struct {
		name string
		give *options.FindOptionsBuilder
		filt string
		want string
	}{
		{name: "filter selects matching documents in natural order", filt: `{"b": "x"}`, want: `[1, 4]`},
		{name: "sort ascending", give: options.Find().SetSort(bson.D{{Key: "b", Value: 1}}), want: `[5, 1, 4, 2, 3]`},
		{name: "compound sort with mixed directions", give: options.Find().SetSort(bson.D{{Key: "a", Value: 1}, {Key: "b", Value: -1}}), want: `[2, 5, 3, 1, 4]`},
		{name: "skip and limit after sort", give: options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetSkip(1).SetLimit(2), want: `[4, 3]`},
		{name: "skip past the end is empty", give: options.Find().SetSkip(10), want: `[]`},
		{name: "a negative limit is a single batch of that many", give: options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(-2), want: `[1, 2]`},
		{name: "limit without sort", filt: `{"a": {"$gte": 2}}`, give: options.Find().SetLimit(2), want: `[1, 3]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filter := bson.D{}
			if tt.filt != "" {
				filter = fromJSON(t, tt.filt)
			}
			opts := tt.give
			if opts == nil {
				opts = options.Find()
			}
			cur, err := coll.Find(ctx, filter, opts.SetProjection(bson.D{{Key: "_id", Value: 1}}))
			require.NoError(t, err)
			var docs []bson.D
			require.NoError(t, cur.All(ctx, &docs))
			ids := bson.A{}
			for _, d := range docs {
				ids = append(ids, d[0].Value)
			}
			assert.Equal(t, canonJSON(t, `{"a": `+tt.want+`}`), toJSON(t, bson.D{{Key: "a", Value: ids}}))
		})
	}

	projections := []struct {
		name string
		give string
		want string
	}{
		{name: "inclusion keeps _id", give: `{"b": 1}`, want: `{"_id": 1, "b": "x"}`},
		{name: "inclusion can drop _id", give: `{"b": 1, "_id": 0}`, want: `{"b": "x"}`},
		{name: "exclusion keeps the rest", give: `{"sub": 0, "a": 0}`, want: `{"_id": 1, "b": "x"}`},
		{name: "_id alone can be excluded", give: `{"_id": 0}`, want: `{"a": 2, "b": "x", "sub": {"p": 1, "q": 2}}`},
		{name: "dotted inclusion", give: `{"sub.q": 1}`, want: `{"_id": 1, "sub": {"q": 2}}`},
		{name: "dotted exclusion", give: `{"sub.q": 0, "a": 0}`, want: `{"_id": 1, "b": "x", "sub": {"p": 1}}`},
	}
	for _, tt := range projections {
		t.Run("projection "+tt.name, func(t *testing.T) {
			var got bson.D
			require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}, options.FindOne().SetProjection(fromJSON(t, tt.give))).Decode(&got))
			assert.Equal(t, canonJSON(t, tt.want), toJSON(t, got))
		})
	}

	t.Run("a projection mixing inclusion and exclusion is refused", func(t *testing.T) {
		err := coll.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 0}})).Err()
		var ce mongo.CommandError
		require.ErrorAs(t, err, &ce, "got %v", err)
		assert.Equal(t, int32(31254), ce.Code)
	})

	t.Run("FindOne with no match is ErrNoDocuments", func(t *testing.T) {
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 99}}).Err()
		require.ErrorIs(t, err, mongo.ErrNoDocuments)
	})

	t.Run("find on a missing collection is empty", func(t *testing.T) {
		requireStored(t, ctx, db.Collection("missing"), `[]`)
	})
}

func TestFindSortsMixedTypesInBSONOrder(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	oid := bson.NewObjectID()
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "date"}, {Key: "v", Value: bson.DateTime(0)}},
		bson.D{{Key: "_id", Value: "true"}, {Key: "v", Value: true}},
		bson.D{{Key: "_id", Value: "oid"}, {Key: "v", Value: oid}},
		bson.D{{Key: "_id", Value: "doc"}, {Key: "v", Value: bson.D{{Key: "a", Value: 1}}}},
		bson.D{{Key: "_id", Value: "str"}, {Key: "v", Value: "a"}},
		bson.D{{Key: "_id", Value: "double"}, {Key: "v", Value: 2.5}},
		bson.D{{Key: "_id", Value: "long"}, {Key: "v", Value: int64(3)}},
		bson.D{{Key: "_id", Value: "int"}, {Key: "v", Value: int32(1)}},
		bson.D{{Key: "_id", Value: "null"}, {Key: "v", Value: nil}},
		bson.D{{Key: "_id", Value: "minkey"}, {Key: "v", Value: bson.MinKey{}}},
		bson.D{{Key: "_id", Value: "maxkey"}, {Key: "v", Value: bson.MaxKey{}}},
		bson.D{{Key: "_id", Value: "false"}, {Key: "v", Value: false}},
		bson.D{{Key: "_id", Value: "bin"}, {Key: "v", Value: bson.Binary{Data: []byte{1}}}},
		bson.D{{Key: "_id", Value: "arr"}, {Key: "v", Value: bson.A{"b", "c"}}},
	})
	require.NoError(t, err)

	tests := []struct {
		name string
		give int
		want []string
	}{
		{
			name: "ascending",
			give: 1,
			// An array sorts ascending by its smallest element ("b", a string).
			want: []string{"minkey", "null", "int", "double", "long", "str", "arr", "doc", "bin", "oid", "false", "true", "date", "maxkey"},
		},
		{
			name: "descending",
			give: -1,
			// ... and descending by its largest ("c").
			want: []string{"maxkey", "date", "true", "false", "oid", "bin", "doc", "arr", "str", "long", "double", "int", "null", "minkey"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "v", Value: tt.give}}))
			require.NoError(t, err)
			var docs []struct {
				ID string `bson:"_id"`
			}
			require.NoError(t, cur.All(ctx, &docs))
			var got []string
			for _, d := range docs {
				got = append(got, d.ID)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// commandLog records the commands a client sends and the replies it gets.
type commandLog struct {
	mu       sync.Mutex
	started  []string
	replies  map[string][]bson.Raw
	requests map[string][]bson.Raw
}

func newLoggedClient(t *testing.T) (*mongo.Client, *commandLog) {
	t.Helper()
	srv := mongotest.Start(t)
	log := &commandLog{replies: map[string][]bson.Raw{}, requests: map[string][]bson.Raw{}}
	mon := &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			log.mu.Lock()
			defer log.mu.Unlock()
			log.started = append(log.started, e.CommandName)
			log.requests[e.CommandName] = append(log.requests[e.CommandName], e.Command)
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			log.mu.Lock()
			defer log.mu.Unlock()
			log.replies[e.CommandName] = append(log.replies[e.CommandName], e.Reply)
		},
	}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetMonitor(mon))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Disconnect(context.Background())) })
	return client, log
}

func (l *commandLog) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.started {
		if s == name {
			n++
		}
	}
	return n
}

func (l *commandLog) reply(name string, i int) bson.Raw {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.replies[name][i]
}

func TestCursors(t *testing.T) {
	client, log := newLoggedClient(t)
	ctx := testContext(t)
	db := client.Database("db")
	coll := db.Collection("c")
	var docs []any
	for i := range 10 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}})
	}
	_, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)

	t.Run("batchSize splits the result across getMores until exhausted", func(t *testing.T) {
		before := log.count("getMore")
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(3).SetSort(bson.D{{Key: "_id", Value: 1}}))
		require.NoError(t, err)
		assert.NotZero(t, cur.ID(), "a cursor stays open after the first batch")
		assert.Equal(t, 3, cur.RemainingBatchLength())
		var ids []int32
		for cur.Next(ctx) {
			ids = append(ids, cur.Current.Lookup("_id").Int32())
		}
		require.NoError(t, cur.Err())
		assert.Equal(t, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ids)
		assert.Zero(t, cur.ID(), "an exhausted cursor is closed by the server")
		assert.Equal(t, 3, log.count("getMore")-before, "batches of 3, 3, 3, 1")
		require.NoError(t, cur.Close(ctx))
	})

	t.Run("limit with batchSize returns only limit documents", func(t *testing.T) {
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(2).SetLimit(5))
		require.NoError(t, err)
		var got []bson.D
		require.NoError(t, cur.All(ctx, &got))
		assert.Len(t, got, 5)
	})

	t.Run("batchSize 0 returns an empty first batch and a cursor", func(t *testing.T) {
		// The driver stops at an empty first batch, so page by hand.
		var first struct {
			Cursor struct {
				FirstBatch []bson.D `bson:"firstBatch"`
				ID         int64    `bson:"id"`
				NS         string   `bson:"ns"`
			} `bson:"cursor"`
		}
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 0}}).Decode(&first))
		assert.Empty(t, first.Cursor.FirstBatch)
		assert.Equal(t, "db.c", first.Cursor.NS)
		require.NotZero(t, first.Cursor.ID)
		var next struct {
			Cursor struct {
				NextBatch []bson.D `bson:"nextBatch"`
				ID        int64    `bson:"id"`
			} `bson:"cursor"`
		}
		// RunCommand adds maxTimeMS from a context deadline, which MongoDB
		// refuses on a getMore of a non-awaitData cursor (the driver's own
		// cursors omit it): send these without a deadline.
		noDeadline := context.WithoutCancel(ctx)
		require.NoError(t, db.RunCommand(noDeadline, bson.D{{Key: "getMore", Value: first.Cursor.ID}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: 4}}).Decode(&next))
		assert.Len(t, next.Cursor.NextBatch, 4)
		assert.Equal(t, first.Cursor.ID, next.Cursor.ID)
		require.NoError(t, db.RunCommand(noDeadline, bson.D{{Key: "getMore", Value: first.Cursor.ID}, {Key: "collection", Value: "c"}}).Decode(&next))
		assert.Len(t, next.Cursor.NextBatch, 6)
		assert.Zero(t, next.Cursor.ID, "the last batch closes the cursor")
	})

	t.Run("a result that fits one batch opens no cursor", func(t *testing.T) {
		cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 3}}}}, options.Find().SetBatchSize(5))
		require.NoError(t, err)
		assert.Zero(t, cur.ID())
		require.NoError(t, cur.Close(ctx))
	})

	t.Run("closing an open cursor kills it", func(t *testing.T) {
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(2))
		require.NoError(t, err)
		id := cur.ID()
		require.NotZero(t, id)
		require.True(t, cur.Next(ctx))
		before := log.count("killCursors")
		require.NoError(t, cur.Close(ctx))
		require.Equal(t, before+1, log.count("killCursors"))
		var killed struct {
			Killed   []int64 `bson:"cursorsKilled"`
			NotFound []int64 `bson:"cursorsNotFound"`
		}
		require.NoError(t, bson.Unmarshal(log.reply("killCursors", before), &killed))
		assert.Equal(t, []int64{id}, killed.Killed)
		assert.Empty(t, killed.NotFound)

		err = db.RunCommand(ctx, bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}}).Err()
		requireCommandError(t, err, 43, "CursorNotFound")

		var again bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "killCursors", Value: "c"}, {Key: "cursors", Value: bson.A{id}}}).Decode(&again))
		assert.Equal(t, bson.A{id}, again["cursorsNotFound"])
	})

	t.Run("getMore on another namespace is refused", func(t *testing.T) {
		cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(2))
		require.NoError(t, err)
		defer cur.Close(ctx)
		err = db.RunCommand(ctx, bson.D{{Key: "getMore", Value: cur.ID()}, {Key: "collection", Value: "other"}}).Err()
		requireCommandError(t, err, 13, "Unauthorized")
	})

	t.Run("aggregate and listIndexes cursors page too", func(t *testing.T) {
		cur, err := coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$sort", Value: bson.D{{Key: "_id", Value: -1}}}}}, options.Aggregate().SetBatchSize(4))
		require.NoError(t, err)
		var got []struct {
			ID int32 `bson:"_id"`
		}
		require.NoError(t, cur.All(ctx, &got))
		require.Len(t, got, 10)
		assert.Equal(t, int32(9), got[0].ID)
		assert.Equal(t, int32(0), got[9].ID)
	})
}

func TestFindOneAndModify(t *testing.T) {
	ctx, db := newTestDB(t)
	seed := `[{"_id": 1, "g": "a", "n": 1}, {"_id": 2, "g": "a", "n": 3}, {"_id": 3, "g": "a", "n": 2}, {"_id": 4, "g": "b", "n": 9}]`
	fresh := func(t *testing.T, name string) *mongo.Collection {
		coll := db.Collection(name)
		insertJSON(t, ctx, coll, seed)
		return coll
	}

	t.Run("FindOneAndUpdate returns the document before by default, after the sort", func(t *testing.T) {
		coll := fresh(t, "before")
		var got bson.D
		err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "g", Value: "a"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 10}}}},
			options.FindOneAndUpdate().SetSort(bson.D{{Key: "n", Value: -1}})).Decode(&got)
		require.NoError(t, err)
		assert.Equal(t, canonJSON(t, `{"_id": 2, "g": "a", "n": 3}`), toJSON(t, got))
		requireStored(t, ctx, coll, `[{"_id": 1, "g": "a", "n": 1}, {"_id": 2, "g": "a", "n": 13}, {"_id": 3, "g": "a", "n": 2}, {"_id": 4, "g": "b", "n": 9}]`)
	})

	t.Run("FindOneAndUpdate with ReturnDocument After and a projection", func(t *testing.T) {
		coll := fresh(t, "after")
		var got bson.D
		err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "g", Value: "a"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}},
			options.FindOneAndUpdate().SetSort(bson.D{{Key: "n", Value: 1}}).SetReturnDocument(options.After).SetProjection(bson.D{{Key: "n", Value: 0}})).Decode(&got)
		require.NoError(t, err)
		assert.Equal(t, canonJSON(t, `{"_id": 1, "g": "a", "done": true}`), toJSON(t, got))
		requireStored(t, ctx, coll, `[{"_id": 1, "g": "a", "n": 1, "done": true}, {"_id": 2, "g": "a", "n": 3}, {"_id": 3, "g": "a", "n": 2}, {"_id": 4, "g": "b", "n": 9}]`)
	})

	t.Run("FindOneAndUpdate upsert returns the new document", func(t *testing.T) {
		coll := fresh(t, "upsert")
		var got bson.D
		err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "g", Value: "c"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 0}}}},
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After).SetProjection(bson.D{{Key: "_id", Value: 0}})).Decode(&got)
		require.NoError(t, err)
		assert.Equal(t, canonJSON(t, `{"g": "c", "n": 0}`), toJSON(t, got))
		n, err := coll.CountDocuments(ctx, bson.D{{Key: "g", Value: "c"}, {Key: "n", Value: 0}})
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
	})

	t.Run("FindOneAndUpdate upsert returning before has no document", func(t *testing.T) {
		coll := fresh(t, "upsertbefore")
		err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 7}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 0}}}},
			options.FindOneAndUpdate().SetUpsert(true)).Err()
		require.ErrorIs(t, err, mongo.ErrNoDocuments)
		var got bson.D
		require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 7}}).Decode(&got))
		assert.Equal(t, canonJSON(t, `{"_id": 7, "n": 0}`), toJSON(t, got))
	})

	t.Run("FindOneAndUpdate with no match is ErrNoDocuments and changes nothing", func(t *testing.T) {
		coll := fresh(t, "nomatch")
		err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "g", Value: "zzz"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 0}}}}).Err()
		require.ErrorIs(t, err, mongo.ErrNoDocuments)
		requireStored(t, ctx, coll, seed)
	})

	t.Run("FindOneAndUpdate applies array filters", func(t *testing.T) {
		coll := db.Collection("arrayfilters")
		insertJSON(t, ctx, coll, `[{"_id": 1, "a": [1, 5, 2, 7]}]`)
		var got bson.D
		err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, fromJSON(t, `{"$set": {"a.$[big]": 0}}`),
			options.FindOneAndUpdate().SetArrayFilters([]any{fromJSON(t, `{"big": {"$gt": 4}}`)}).SetReturnDocument(options.After)).Decode(&got)
		require.NoError(t, err)
		assert.Equal(t, canonJSON(t, `{"_id": 1, "a": [1, 0, 2, 0]}`), toJSON(t, got))
		requireStored(t, ctx, coll, `[{"_id": 1, "a": [1, 0, 2, 0]}]`)
	})

	t.Run("FindOneAndReplace replaces the first by sort", func(t *testing.T) {
		coll := fresh(t, "replace")
		var got bson.D
		err := coll.FindOneAndReplace(ctx, bson.D{{Key: "g", Value: "a"}}, bson.D{{Key: "replaced", Value: true}},
			options.FindOneAndReplace().SetSort(bson.D{{Key: "n", Value: 1}}).SetReturnDocument(options.After)).Decode(&got)
		require.NoError(t, err)
		assert.Equal(t, canonJSON(t, `{"_id": 1, "replaced": true}`), toJSON(t, got))
		requireStored(t, ctx, coll, `[{"_id": 1, "replaced": true}, {"_id": 2, "g": "a", "n": 3}, {"_id": 3, "g": "a", "n": 2}, {"_id": 4, "g": "b", "n": 9}]`)
	})

	t.Run("FindOneAndReplace upsert inserts the replacement", func(t *testing.T) {
		coll := fresh(t, "replaceupsert")
		var got bson.D
		err := coll.FindOneAndReplace(ctx, bson.D{{Key: "_id", Value: 8}}, bson.D{{Key: "r", Value: 1}},
			options.FindOneAndReplace().SetUpsert(true).SetReturnDocument(options.After)).Decode(&got)
		require.NoError(t, err)
		assert.Equal(t, canonJSON(t, `{"_id": 8, "r": 1}`), toJSON(t, got))
	})

	t.Run("FindOneAndDelete deletes the first by sort and returns it", func(t *testing.T) {
		coll := fresh(t, "delete")
		var got bson.D
		err := coll.FindOneAndDelete(ctx, bson.D{{Key: "g", Value: "a"}},
			options.FindOneAndDelete().SetSort(bson.D{{Key: "n", Value: -1}}).SetProjection(bson.D{{Key: "n", Value: 1}})).Decode(&got)
		require.NoError(t, err)
		assert.Equal(t, canonJSON(t, `{"_id": 2, "n": 3}`), toJSON(t, got))
		requireStored(t, ctx, coll, `[{"_id": 1, "g": "a", "n": 1}, {"_id": 3, "g": "a", "n": 2}, {"_id": 4, "g": "b", "n": 9}]`)
	})

	t.Run("FindOneAndDelete with no match is ErrNoDocuments", func(t *testing.T) {
		coll := fresh(t, "deletenone")
		err := coll.FindOneAndDelete(ctx, bson.D{{Key: "g", Value: "zzz"}}).Err()
		require.ErrorIs(t, err, mongo.ErrNoDocuments)
		requireStored(t, ctx, coll, seed)
	})

	t.Run("findAndModify reports lastErrorObject", func(t *testing.T) {
		fresh(t, "raw")
		var reply struct {
			LastError bson.M `bson:"lastErrorObject"`
			Value     bson.M `bson:"value"`
		}
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "findAndModify", Value: "raw"}, {Key: "query", Value: bson.D{{Key: "_id", Value: 50}}},
			{Key: "update", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}}, {Key: "upsert", Value: true}, {Key: "new", Value: true}}).Decode(&reply))
		assert.EqualValues(t, 1, reply.LastError["n"])
		assert.Equal(t, false, reply.LastError["updatedExisting"])
		assert.EqualValues(t, 50, reply.LastError["upserted"])
		assert.EqualValues(t, 50, reply.Value["_id"])

		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "findAndModify", Value: "raw"}, {Key: "query", Value: bson.D{{Key: "_id", Value: 50}}},
			{Key: "update", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 2}}}}}}).Decode(&reply))
		assert.Equal(t, true, reply.LastError["updatedExisting"])
		assert.EqualValues(t, 1, reply.Value["x"], "the document before the update")
	})

	t.Run("findAndModify with both remove and update is refused", func(t *testing.T) {
		err := db.RunCommand(ctx, bson.D{{Key: "findAndModify", Value: "raw"}, {Key: "query", Value: bson.D{}}, {Key: "remove", Value: true},
			{Key: "update", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}}}).Err()
		var ce mongo.CommandError
		require.ErrorAs(t, err, &ce, "got %v", err)
		assert.Equal(t, int32(9), ce.Code)
	})
}

func TestCountAndDistinct(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	insertJSON(t, ctx, coll, `[
		{"_id": 1, "k": "a", "tags": ["x", "y"], "n": 1},
		{"_id": 2, "k": "b", "tags": ["y", "z"], "n": 2},
		{"_id": 3, "k": "a", "tags": "x", "n": 1.0},
		{"_id": 4, "k": null, "n": {"$numberLong": "1"}},
		{"_id": 5, "n": "1"}
	]`)

	counts := []struct {
		name string
		give string
		opts *options.CountOptionsBuilder
		want int64
	}{
		{name: "everything", give: `{}`, want: 5},
		{name: "a filter", give: `{"k": "a"}`, want: 2},
		{name: "null matches missing", give: `{"k": null}`, want: 2},
		{name: "skip", give: `{}`, opts: options.Count().SetSkip(2), want: 3},
		{name: "limit", give: `{}`, opts: options.Count().SetLimit(2), want: 2},
		{name: "skip past the end", give: `{}`, opts: options.Count().SetSkip(9), want: 0},
	}
	for _, tt := range counts {
		t.Run("CountDocuments counts "+tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts == nil {
				opts = options.Count()
			}
			n, err := coll.CountDocuments(ctx, fromJSON(t, tt.give), opts)
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
		})
	}

	t.Run("EstimatedDocumentCount counts the collection", func(t *testing.T) {
		n, err := coll.EstimatedDocumentCount(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(5), n)
		n, err = db.Collection("missing").EstimatedDocumentCount(ctx)
		require.NoError(t, err)
		assert.Zero(t, n)
	})

	t.Run("count with a query", func(t *testing.T) {
		var reply bson.M
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "count", Value: "c"}, {Key: "query", Value: bson.D{{Key: "n", Value: 1}}}}).Decode(&reply))
		assert.EqualValues(t, 3, reply["n"], "1, 1.0 and 1L are equal; \"1\" is not")
	})

	distincts := []struct {
		name       string
		giveKey    string
		giveFilter string
		want       []any
	}{
		{name: "flattens arrays", giveKey: "tags", giveFilter: `{}`, want: []any{"x", "y", "z"}},
		{name: "applies the filter", giveKey: "tags", giveFilter: `{"k": "b"}`, want: []any{"y", "z"}},
		{name: "keeps null but not missing", giveKey: "k", giveFilter: `{}`, want: []any{nil, "a", "b"}},
		{name: "treats equal numbers as one", giveKey: "n", giveFilter: `{"_id": {"$lte": 4}}`, want: []any{int32(1), int32(2)}},
	}
	for _, tt := range distincts {
		t.Run("Distinct "+tt.name, func(t *testing.T) {
			res := coll.Distinct(ctx, tt.giveKey, fromJSON(t, tt.giveFilter))
			require.NoError(t, res.Err())
			var got []any
			require.NoError(t, res.Decode(&got))
			assert.ElementsMatch(t, tt.want, got)
		})
	}
}

func TestCommandErrors(t *testing.T) {
	ctx, db := newTestDB(t)
	_, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)

	t.Run("an unknown command is CommandNotFound", func(t *testing.T) {
		err := db.RunCommand(ctx, bson.D{{Key: "frobnicate", Value: 1}}).Err()
		ce := requireCommandError(t, err, 59, "CommandNotFound")
		assert.Equal(t, "no such command: 'frobnicate'", ce.Message)
	})

	tests := []struct {
		name     string
		give     bson.D
		wantCode int32
		wantName string
	}{
		{name: "find filter not a document", give: bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: "x"}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "find sort not a document", give: bson.D{{Key: "find", Value: "c"}, {Key: "sort", Value: 1}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "find limit not a number", give: bson.D{{Key: "find", Value: "c"}, {Key: "limit", Value: "ten"}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "find skip negative", give: bson.D{{Key: "find", Value: "c"}, {Key: "skip", Value: -1}}, wantCode: 2, wantName: "BadValue"},
		{name: "find batchSize negative", give: bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: -1}}, wantCode: 2, wantName: "BadValue"},
		{name: "insert documents not an array", give: bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.D{}}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "insert without documents", give: bson.D{{Key: "insert", Value: "c"}}, wantCode: 40414, wantName: "Location40414"},
		{name: "aggregate without pipeline", give: bson.D{{Key: "aggregate", Value: "c"}, {Key: "cursor", Value: bson.D{}}}, wantCode: 40414, wantName: "Location40414"},
		{name: "update updates not an array", give: bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: 1}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "delete deletes not an array", give: bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: "x"}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "ordered not a boolean", give: bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{}}}, {Key: "ordered", Value: "yes"}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "distinct key not a string", give: bson.D{{Key: "distinct", Value: "c"}, {Key: "key", Value: 1}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "count query not a document", give: bson.D{{Key: "count", Value: "c"}, {Key: "query", Value: 1}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "aggregate pipeline not an array", give: bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.D{}}, {Key: "cursor", Value: bson.D{}}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "aggregate without cursor", give: bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{}}}, wantCode: 9, wantName: "FailedToParse"},
		{name: "createIndexes indexes not an array", give: bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: "x"}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "collection name not a string", give: bson.D{{Key: "find", Value: 5}}, wantCode: 73, wantName: "InvalidNamespace"},
		{name: "empty collection name", give: bson.D{{Key: "insert", Value: ""}, {Key: "documents", Value: bson.A{bson.D{}}}}, wantCode: 73, wantName: "InvalidNamespace"},
		{name: "collection name with a dollar", give: bson.D{{Key: "create", Value: "a$b"}}, wantCode: 73, wantName: "InvalidNamespace"},
		{name: "getMore id not a long", give: bson.D{{Key: "getMore", Value: "x"}, {Key: "collection", Value: "c"}}, wantCode: 14, wantName: "TypeMismatch"},
		{name: "getMore on an unknown cursor", give: bson.D{{Key: "getMore", Value: int64(12345)}, {Key: "collection", Value: "c"}}, wantCode: 43, wantName: "CursorNotFound"},
		{name: "unknown query operator", give: bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$nope", Value: 1}}}}}}, wantCode: 2, wantName: "BadValue"},
		{name: "unknown aggregation stage", give: bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$nope", Value: bson.D{}}}}}, {Key: "cursor", Value: bson.D{}}}, wantCode: 40324},
		{name: "unsupported aggregation stage", give: bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$graphLookup", Value: bson.D{}}}}}, {Key: "cursor", Value: bson.D{}}}, wantCode: 20, wantName: "IllegalOperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			err := db.RunCommand(ctx, tt.give).Err()
			var ce mongo.CommandError
			require.ErrorAs(t, err, &ce, "got %v", err)
			assert.Equal(t, tt.wantCode, ce.Code, "got %v", err)
			if tt.wantName != "" {
				assert.Equal(t, tt.wantName, ce.Name, "got %v", err)
			}
		})
	}
	requireStored(t, ctx, db.Collection("c"), `[{"_id": 1}]`)

	t.Run("the driver's invalid namespaces are refused", func(t *testing.T) {
		_, err := db.Collection("bad$name").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
		requireCommandError(t, err, 73, "InvalidNamespace")
		_, err = db.Client().Database("bad.db").Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
		requireCommandError(t, err, 73, "InvalidNamespace")
	})
}

func TestDocumentSizeLimit(t *testing.T) {
	_, db := newTestDB(t)
	// 16 MiB documents under -race on a loaded machine take seconds each:
	// a deadline here would measure the machine, not the server.
	ctx := t.Context()
	coll := db.Collection("c")
	big := strings.Repeat("x", 16*1024*1024)

	t.Run("a document over 16 MiB is not inserted", func(t *testing.T) {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "big", Value: big}})
		require.Error(t, err)
		requireStored(t, ctx, coll, `[]`)
	})

	t.Run("an update that grows a document past 16 MiB is refused", func(t *testing.T) {
		half := big[:9*1024*1024]
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: half}})
		require.NoError(t, err)
		_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: half}}}})
		var se mongo.ServerError
		require.ErrorAs(t, err, &se, "got %v", err)
		assert.True(t, se.HasErrorCode(17419), "got %v", err)
		n, err := coll.CountDocuments(ctx, bson.D{{Key: "b", Value: bson.D{{Key: "$exists", Value: true}}}})
		require.NoError(t, err)
		assert.Zero(t, n)
	})

	t.Run("a document just under the limit is stored", func(t *testing.T) {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "big", Value: big[:16*1024*1024-100]}})
		require.NoError(t, err)
		n, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: 3}})
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
	})
}
