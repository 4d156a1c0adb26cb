// Package currentop lists the transactions open on a MongoDB server, with
// $currentOp (idle sessions included): the chaos checker's open-transaction
// invariant and the tests of transactions left open read them the same way.
package currentop

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Txn is what is read of one $currentOp document with an open transaction:
// a command running in it (type "op") or a session idle in it (type
// "idleSession").
type Txn struct {
	Type    string `bson:"type"`
	AppName string `bson:"appName"`
	Op      string `bson:"op"`
	NS      string `bson:"ns"`
	LSID    struct {
		ID bson.Binary `bson:"id"`
	} `bson:"lsid"`
	Transaction struct {
		Parameters struct {
			TxnNumber int64 `bson:"txnNumber"`
		} `bson:"parameters"`
		TimeOpenMicros int64  `bson:"timeOpenMicros"`
		ExpiryTime     string `bson:"expiryTime"`
	} `bson:"transaction"`
}

// Session returns the session's id in hex.
func (t Txn) Session() string { return hex.EncodeToString(t.LSID.ID.Data) }

// Number returns the transaction's number on its session.
func (t Txn) Number() int64 { return t.Transaction.Parameters.TxnNumber }

// Open returns how long the transaction has been open.
func (t Txn) Open() time.Duration {
	return time.Duration(t.Transaction.TimeOpenMicros) * time.Microsecond
}

func (t Txn) String() string {
	return fmt.Sprintf("txn %d of session %s (%s %s, open %s)", t.Number(), t.Session(), t.Type, t.Op, t.Open())
}

// Open lists, read on admin (the admin database of a client no fail point
// aims at), the transactions open on the server for longer than
// longerThan (0: all).
func Open(ctx context.Context, admin *mongo.Database, longerThan time.Duration) ([]Txn, error) {
	cur, err := admin.Aggregate(ctx, bson.A{
		bson.D{{Key: "$currentOp", Value: bson.D{{Key: "allUsers", Value: true}, {Key: "idleSessions", Value: true}}}},
		bson.D{{Key: "$match", Value: bson.D{{Key: "transaction.timeOpenMicros", Value: bson.D{{Key: "$gte", Value: longerThan.Microseconds()}}}}}},
	})
	if err != nil {
		return nil, err
	}
	var out []Txn
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}
