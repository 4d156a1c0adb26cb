package mongotest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
)

// A reply goes out as its document plus $clusterTime and operationTime,
// each only when the command did not set it: the exact bytes bson.Marshal
// gives for that document.
func TestEncodeReplyAppendsClusterTime(t *testing.T) {
	srv := Start(t, WithoutListener())
	_, nc := newPipe()
	c := srv.newConn(nc)
	own := bson.Timestamp{T: 7, I: 3}
	tests := []struct {
		name string
		give bson.D
	}{
		{name: "a plain reply gets both", give: bson.D{{Key: "n", Value: int32(1)}, {Key: "ok", Value: 1.0}}},
		{name: "an empty reply gets both", give: bson.D{}},
		{name: "a write keeps its own operationTime", give: bson.D{{Key: "ok", Value: 1.0}, {Key: "operationTime", Value: own}}},
		{name: "a reply with both is sent as is", give: bson.D{{Key: "$clusterTime", Value: bson.D{{Key: "clusterTime", Value: own}}}, {Key: "operationTime", Value: own}, {Key: "ok", Value: 1.0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := c.encodeReply(&message{opCode: wiremessage.OpMsg, requestID: 9}, tt.give)
			_, _, responseTo, op, rem, ok := wiremessage.ReadHeader(out)
			require.True(t, ok)
			require.Equal(t, int32(9), responseTo)
			require.Equal(t, wiremessage.OpMsg, op)
			got, _, ok := bsoncore.ReadDocument(rem[5:]) // flags and section kind
			require.True(t, ok)

			now := srv.clusterTime()
			want := append(bson.D(nil), tt.give...)
			if _, has := bsonkit.Get(want, "$clusterTime"); !has {
				want = append(want, bson.E{Key: "$clusterTime", Value: bson.D{
					{Key: "clusterTime", Value: now},
					{Key: "signature", Value: bson.D{
						{Key: "hash", Value: bson.Binary{Subtype: 0, Data: make([]byte, 20)}},
						{Key: "keyId", Value: int64(0)},
					}},
				}})
			}
			if _, has := bsonkit.Get(want, "operationTime"); !has {
				want = append(want, bson.E{Key: "operationTime", Value: now})
			}
			wantBytes, err := bson.Marshal(want)
			require.NoError(t, err)
			require.Equal(t, bson.Raw(wantBytes).String(), bson.Raw(got).String())
			require.Equal(t, wantBytes, []byte(got))
		})
	}
}
