package testenv

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDBNamesAreValidAndUnique(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_]{1,63}$`)
	long := strings.Repeat("TestSomething/with spaces.and$odd\"chars", 5)
	a, b := dbName(long), dbName(long)
	assert.Regexp(t, valid, a)
	assert.NotEqual(t, a, b)
}

func TestWithAppName(t *testing.T) {
	tests := []struct {
		name string
		give bson.D
		want bson.D
	}{
		{
			name: "data gets the app name",
			give: bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "data", Value: bson.D{{Key: "errorCode", Value: 1}}}},
			want: bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "data", Value: bson.D{{Key: "errorCode", Value: 1}, {Key: "appName", Value: "app"}}}},
		},
		{
			name: "an explicit app name is kept",
			give: bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "data", Value: bson.D{{Key: "appName", Value: "other"}}}},
			want: bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "data", Value: bson.D{{Key: "appName", Value: "other"}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, withAppName(tt.give, "app"))
		})
	}
}

func TestFailCommandHitsOnlyItsClient(t *testing.T) {
	uri := URI(t)
	a, b := Connect(t, uri), Connect(t, uri)
	ctx := context.Background()
	FailCommand(t, a, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 2}}},
	})

	db := NewDB(t, b)
	_, err := b.Database(db.Name()).Collection("c").InsertOne(ctx, bson.D{})
	require.NoError(t, err, "b is spared")
	_, err = a.Database(db.Name()).Collection("c").InsertOne(ctx, bson.D{})
	require.Error(t, err, "a is hit")
}

func TestClientsOfAMongotestServerConnectInMemory(t *testing.T) {
	if Real() {
		t.Skip("only a mongotest server has an in-process dialer")
	}
	client := Client(t)
	var reply bson.M
	require.NoError(t, client.Database("admin").RunCommand(context.Background(), bson.D{{Key: "whatsmyuri", Value: 1}}).Decode(&reply))
	assert.Equal(t, "pipe", reply["you"], "the server sees an in-memory connection, not a TCP peer")
}
