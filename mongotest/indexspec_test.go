package mongotest_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// createIndexes refuses the specifications MongoDB refuses, and builds
// nothing for them:
//   - a partialFilterExpression with an operator other than equality,
//     $exists: true, $gt/$gte/$lt/$lte, $type, $and, $or, $in: "Expression
//     not supported in partial index" (CannotCreateIndex, 67; the manual's
//     "Partial Indexes");
//   - sparse with partialFilterExpression: "cannot mix
//     \"partialFilterExpression\" and \"sparse\" options" (67,
//     src/mongo/db/catalog/index_catalog_impl.cpp);
//   - a $-prefixed key field: "Index key contains an illegal field name:
//     field name starts with '$'." (67, validateKeyPattern in
//     src/mongo/db/index/index_key_validate.cpp);
//   - an index version other than 1 or 2: "cannot create an index with
//     v=3" (67; a non-number: TypeMismatch; validateIndexSpec);
//   - a unique hashed index: "Currently hashed indexes cannot guarantee
//     uniqueness. Use a regular index." (16764).
func TestIndexSpecsMongoDBRefusesAreRefused(t *testing.T) {
	ctx, db := newTestDB(t)
	tests := []struct {
		name  string
		give  bson.D
		codes []int
		want  string
	}{
		{"partial_ne", bson.D{{Key: "key", Value: bson.D{{Key: "p", Value: 1}}}, {Key: "partialFilterExpression", Value: bson.D{{Key: "p", Value: bson.D{{Key: "$ne", Value: 1}}}}}}, []int{67}, "not supported in partial index"},
		{"partial_exists_false", bson.D{{Key: "key", Value: bson.D{{Key: "p", Value: 1}}}, {Key: "partialFilterExpression", Value: bson.D{{Key: "p", Value: bson.D{{Key: "$exists", Value: false}}}}}}, []int{67}, "not supported in partial index"},
		{"partial_nor", bson.D{{Key: "key", Value: bson.D{{Key: "p", Value: 1}}}, {Key: "partialFilterExpression", Value: bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "p", Value: 1}}}}}}}, []int{67}, "not supported in partial index"},
		{"partial_sparse", bson.D{{Key: "key", Value: bson.D{{Key: "q", Value: 1}}}, {Key: "sparse", Value: true}, {Key: "partialFilterExpression", Value: bson.D{{Key: "q", Value: bson.D{{Key: "$gt", Value: 1}}}}}}, []int{67}, "cannot mix"},
		{"key_dollar", bson.D{{Key: "key", Value: bson.D{{Key: "$a", Value: 1}}}}, []int{67}, "starts with '$'"},
		{"key_dollar_part", bson.D{{Key: "key", Value: bson.D{{Key: "a.$b", Value: 1}}}}, []int{67}, "starts with '$'"},
		{"version_3", bson.D{{Key: "key", Value: bson.D{{Key: "v3", Value: 1}}}, {Key: "v", Value: 3}}, []int{67}, "v=3"},
		{"version_string", bson.D{{Key: "key", Value: bson.D{{Key: "vs", Value: 1}}}, {Key: "v", Value: "2"}}, []int{14}, "'v' must be a number"},
		{"hashed_unique", bson.D{{Key: "key", Value: bson.D{{Key: "h", Value: "hashed"}}}, {Key: "unique", Value: true}}, []int{16764}, "hashed indexes cannot guarantee uniqueness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := append(bson.D{{Key: "name", Value: tt.name}}, tt.give...)
			err := db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: bson.A{spec}}}).Err()
			requireArgRefused(t, err, tt.want, tt.codes...)
			specs, err := db.Collection("c").Indexes().ListSpecifications(ctx)
			require.NoError(t, err)
			for _, s := range specs {
				require.NotEqual(t, tt.name, s.Name, "a refused index was built")
			}
		})
	}

	err := db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: bson.A{bson.D{
		{Key: "name", Value: "allowed"}, {Key: "key", Value: bson.D{{Key: "a", Value: 1}}},
		{Key: "partialFilterExpression", Value: bson.D{
			{Key: "a", Value: bson.D{{Key: "$exists", Value: true}, {Key: "$gte", Value: 1}}},
			{Key: "b", Value: "x"},
			{Key: "$or", Value: bson.A{bson.D{{Key: "c", Value: bson.D{{Key: "$in", Value: bson.A{1, 2}}}}}, bson.D{{Key: "d", Value: bson.D{{Key: "$type", Value: "string"}}}}}},
		}},
	}}}}).Err()
	require.NoError(t, err, "equality, $exists: true, ranges, $in, $type, $and, $or are what a partial index supports")
}

// createIndexes' commitQuorum is parsed by CommitQuorumOptions::parse
// (src/mongo/db/catalog/commit_quorum_options.cpp): a number from 0 to 7
// (kMaxVotingMembers) or a non-empty string, else FailedToParse (9). A
// number above the set's data-bearing voting members cannot be satisfied
// (UnsatisfiableCommitQuorum, 278); a string other than "majority" and
// "votingMembers" names a write concern mode of the replica set
// configuration, and ReplSetConfig::findCustomWriteMode refuses one it does
// not have: "No write concern mode named 'bogus' found in replica set
// configuration" (UnknownReplWriteConcern, 79; the message drivers' tests
// pin since 4.4.4). A refused createIndexes builds nothing.
func TestCreateIndexesCommitQuorum(t *testing.T) {
	ctx, db := newTestDB(t)
	coll := db.Collection("c")
	create := func(name string, quorum any) error {
		return db.RunCommand(ctx, bson.D{
			{Key: "createIndexes", Value: "c"},
			{Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: name, Value: 1}}}, {Key: "name", Value: name}}}},
			{Key: "commitQuorum", Value: quorum},
		}).Err()
	}
	for _, c := range []struct {
		quorum any
		want   string
		code   int
	}{
		{"bogus", "No write concern mode named 'bogus' found in replica set configuration", 79},
		{"", "commitQuorum can't be an empty string", 9},
		{true, "commitQuorum has to be a number or a string", 9},
		{bson.D{{Key: "w", Value: 1}}, "commitQuorum has to be a number or a string", 9},
		{int32(-1), "commitQuorum has to be a non-negative number and not greater than 7", 9},
		{int32(8), "commitQuorum has to be a non-negative number and not greater than 7", 9},
		{int32(2), "commit quorum", 278},
	} {
		err := create("refused", c.quorum)
		requireArgRefused(t, err, c.want, c.code)
	}
	for i, q := range []any{int32(0), int32(1), int64(1), 1.0, "majority", "votingMembers"} {
		require.NoError(t, create(fmt.Sprintf("ok%d", i), q), "commitQuorum %v", q)
	}
	specs, err := coll.Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	assert.ElementsMatch(t, []string{"_id_", "ok0", "ok1", "ok2", "ok3", "ok4", "ok5"}, names)
}
