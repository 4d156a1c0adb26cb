// Package example is a small credits ledger made transactional by a
// decorator that cmd/txdecorate generates: the example of
// docs/decorators.md, and the test bed of the generator.
package example

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

//go:generate go run github.com/txkit/txkit/cmd/txdecorate -type Ledger -constructor Transactional

// Ledger keeps credit balances. Transactional makes every method that
// takes a ctx and returns an error run in a transaction, as the directives
// below say.
//
//txkit:timeout=10s
//txkit:max_attempts=5
type Ledger interface {
	// Open creates an account with an opening balance.
	Open(ctx context.Context, account string, balance int64) error

	// Transfer moves amount between two accounts and returns the id of the
	// ledger entry that records it.
	Transfer(ctx context.Context, from, to string, amount int64) (string, error)

	// Balance reads an account's balance. One read needs no transaction.
	//
	//txkit:none
	Balance(ctx context.Context, account string) (int64, error)

	// Audit writes an audit line that stays even if the caller's
	// transaction rolls back.
	//
	//txkit:propagation=requires_new
	//txkit:name=ledger.audit
	Audit(ctx context.Context, line string) error

	// Name says which ledger this is. It takes no ctx: it passes through.
	Name() string
}

var (
	// ErrInsufficientCredits is returned by Transfer when the source
	// account's balance is below the amount.
	ErrInsufficientCredits = errors.New("insufficient credits")
	// ErrNoAccount is returned for an account that does not exist.
	ErrNoAccount = errors.New("no such account")
)

// Store is the Ledger on MongoDB. Its methods do not start transactions:
// they use whatever session ctx carries, which is what the decorator is
// for.
type Store struct {
	accounts *mongo.Collection
	entries  *mongo.Collection
	audit    *mongo.Collection
}

var _ Ledger = (*Store)(nil)

// NewStore returns a Store on db.
func NewStore(db *mongo.Database) *Store {
	return &Store{accounts: db.Collection("accounts"), entries: db.Collection("entries"), audit: db.Collection("audit")}
}

// Open implements Ledger.
func (s *Store) Open(ctx context.Context, account string, balance int64) error {
	_, err := s.accounts.InsertOne(ctx, bson.D{{Key: "_id", Value: account}, {Key: "balance", Value: balance}})
	return err
}

// Transfer implements Ledger. Three writes that must commit together: the
// debit (guarded by the balance), the credit and the entry.
func (s *Store) Transfer(ctx context.Context, from, to string, amount int64) (string, error) {
	if amount <= 0 {
		return "", fmt.Errorf("transfer %d: amount must be positive", amount)
	}
	res, err := s.accounts.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: from}, {Key: "balance", Value: bson.D{{Key: "$gte", Value: amount}}}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -amount}}}})
	if err != nil {
		return "", err
	}
	if res.MatchedCount == 0 {
		return "", fmt.Errorf("transfer from %s: %w", from, ErrInsufficientCredits)
	}
	res, err = s.accounts.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: to}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: amount}}}})
	if err != nil {
		return "", err
	}
	if res.MatchedCount == 0 {
		return "", fmt.Errorf("transfer to %s: %w", to, ErrNoAccount)
	}
	id := bson.NewObjectID().Hex()
	_, err = s.entries.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "from", Value: from}, {Key: "to", Value: to}, {Key: "amount", Value: amount}})
	if err != nil {
		return "", err
	}
	return id, nil
}

// Balance implements Ledger.
func (s *Store) Balance(ctx context.Context, account string) (int64, error) {
	var acc struct {
		Balance int64 `bson:"balance"`
	}
	err := s.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: account}}).Decode(&acc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, fmt.Errorf("balance of %s: %w", account, ErrNoAccount)
	}
	return acc.Balance, err
}

// Audit implements Ledger.
func (s *Store) Audit(ctx context.Context, line string) error {
	_, err := s.audit.InsertOne(ctx, bson.D{{Key: "line", Value: line}})
	return err
}

// Name implements Ledger.
func (s *Store) Name() string { return "mongo" }
