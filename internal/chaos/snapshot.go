package chaos

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
)

// The raw documents, decoded by field name only: the checker shares no
// code with the modules it checks.

// AccountDoc is a raw credits account document.
type AccountDoc struct {
	ID        string     `bson:"_id"`
	Balance   int64      `bson:"balance"`
	Held      int64      `bson:"held"`
	Available int64      `bson:"available"`
	Pending   []EntryDoc `bson:"pending"`
	// Placeholder marks a document that the fence of a credit's unknown
	// outcome inserted; see noAccount.
	Placeholder bool `bson:"placeholder"`
	// UpdatedAt is set by every write of the position; zero if none.
	UpdatedAt time.Time `bson:"updatedAt"`
}

// noAccount reports whether a is a placeholder as the fence left it,
// which the ledger reads as a missing account: marked, never written
// (the fence sets no updatedAt, every credit or debit of any release
// does), empty. A credit by a release that does not know the mark leaves
// it, and makes the document an account all the same, even once debits
// have emptied it. The same rule as credits' Reconcile, written again:
// the checker shares no code with the modules it checks.
func (a AccountDoc) noAccount() bool {
	return a.Placeholder && a.UpdatedAt.IsZero() &&
		a.Balance == 0 && a.Held == 0 && a.Available == 0 && len(a.Pending) == 0
}

// EntryDoc is a raw ledger entry, from the entries collection or embedded
// in an account's pending list.
type EntryDoc struct {
	ID         string `bson:"_id"`
	Account    string `bson:"account"`
	Amount     int64  `bson:"amount"`
	Kind       string `bson:"kind"`
	RefKind    string `bson:"refKind"`
	RefID      string `bson:"refId"`
	HoldID     string `bson:"holdId"`
	TransferID string `bson:"transferId"`
	Key        string `bson:"key"`
}

// HoldDoc is a raw hold.
type HoldDoc struct {
	ID       string    `bson:"_id"`
	Account  string    `bson:"account"`
	Amount   int64     `bson:"amount"`
	Captured int64     `bson:"captured"`
	Status   string    `bson:"status"`
	EntryID  string    `bson:"entryId"`
	RefKind  string    `bson:"refKind"`
	RefID    string    `bson:"refId"`
	Key      string    `bson:"key"`
	Expires  time.Time `bson:"expiresAt"`
}

// PaymentDoc is a raw payment.
type PaymentDoc struct {
	ID            string `bson:"_id"`
	Account       string `bson:"account"`
	Credits       int64  `bson:"credits"`
	Provider      string `bson:"provider"`
	ProviderRef   string `bson:"providerRef"`
	Status        string `bson:"status"`
	CreditEntryID string `bson:"creditEntryId"`
	RefundEntryID string `bson:"refundEntryId"`
}

// Snapshot is the whole ledger at one instant.
type Snapshot struct {
	Accounts []AccountDoc
	// Entries are those of the entries collection; embedded ones are in
	// Accounts[i].Pending.
	Entries  []EntryDoc
	Holds    []HoldDoc
	Payments []PaymentDoc
	// Keys are the _ids of the idempotency records.
	Keys []string
	At   time.Time
}

// Collections names the collections a snapshot reads.
type Collections struct {
	Accounts, Entries, Holds, Idempotency, Payments string
}

// DefaultCollections are the modules' default collection names.
var DefaultCollections = Collections{
	Accounts: "credit_accounts", Entries: "credit_entries", Holds: "credit_holds",
	Idempotency: "credit_idempotency", Payments: "payments",
}

// Read reads a Snapshot of db with the plain driver, in one snapshot
// transaction of its own session, so that every collection is seen at the
// same instant.
func Read(ctx context.Context, db *mongo.Database, c Collections) (Snapshot, error) {
	sess, err := db.Client().StartSession()
	if err != nil {
		return Snapshot{}, fmt.Errorf("chaos: start session: %w", err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	if err := sess.StartTransaction(options.Transaction().SetReadConcern(readconcern.Snapshot())); err != nil {
		return Snapshot{}, fmt.Errorf("chaos: start transaction: %w", err)
	}
	sctx := mongo.NewSessionContext(ctx, sess)
	defer func() { _ = sess.AbortTransaction(context.WithoutCancel(ctx)) }()

	s := Snapshot{At: time.Now()}
	if err := readAll(sctx, db.Collection(c.Accounts), &s.Accounts); err != nil {
		return s, err
	}
	if err := readAll(sctx, db.Collection(c.Entries), &s.Entries); err != nil {
		return s, err
	}
	if err := readAll(sctx, db.Collection(c.Holds), &s.Holds); err != nil {
		return s, err
	}
	if err := readAll(sctx, db.Collection(c.Payments), &s.Payments); err != nil {
		return s, err
	}
	var keys []struct {
		ID string `bson:"_id"`
	}
	if err := readAll(sctx, db.Collection(c.Idempotency), &keys); err != nil {
		return s, err
	}
	for _, k := range keys {
		s.Keys = append(s.Keys, k.ID)
	}
	return s, nil
}

func readAll[T any](ctx context.Context, coll *mongo.Collection, out *[]T) error {
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("chaos: read %s: %w", coll.Name(), err)
	}
	if err := cur.All(ctx, out); err != nil {
		return fmt.Errorf("chaos: read %s: %w", coll.Name(), err)
	}
	return nil
}
