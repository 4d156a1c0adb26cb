package example

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

//go:generate go run github.com/txkit/txkit/cmd/txdecorate -type Orders

// Orders places orders and pays for them through a Ledger: a decorated
// service that calls another. Its decorator starts the transaction; the
// Ledger's joins it, and its own max_attempts and timeout give way to the
// owner's, so the order and its payment commit together or not at all.
//
//txkit:max_attempts=3
type Orders interface {
	// Place records an order and pays amount from one account to another.
	Place(ctx context.Context, order, from, to string, amount int64) error
}

// OrderStore is the Orders on MongoDB.
type OrderStore struct {
	orders *mongo.Collection
	ledger Ledger
}

var _ Orders = (*OrderStore)(nil)

// NewOrderStore returns an OrderStore on db that pays through ledger.
func NewOrderStore(db *mongo.Database, ledger Ledger) *OrderStore {
	return &OrderStore{orders: db.Collection("orders"), ledger: ledger}
}

// Place implements Orders.
func (s *OrderStore) Place(ctx context.Context, order, from, to string, amount int64) error {
	if _, err := s.orders.InsertOne(ctx, bson.D{{Key: "_id", Value: order}, {Key: "amount", Value: amount}}); err != nil {
		return err
	}
	_, err := s.ledger.Transfer(ctx, from, to, amount)
	return err
}
