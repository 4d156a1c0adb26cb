package credits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/tx"
)

// accountDoc is an account as stored. Balance = sum of the account's
// entries (those in the entries collection and those still embedded in
// Pending), Held = sum of its open holds, Available = Balance - Held ≥ 0.
type accountDoc struct {
	ID        string  `bson:"_id"`
	Balance   int64   `bson:"balance"`
	Held      int64   `bson:"held"`
	Available int64   `bson:"available"`
	Pending   []Entry `bson:"pending,omitempty"`
	// PendingSince is set (by $min) while Pending may be non-empty: the
	// sweeper's sparse index finds such accounts.
	PendingSince *time.Time `bson:"pendingSince,omitempty"`
	CreatedAt    time.Time  `bson:"createdAt"`
	UpdatedAt    time.Time  `bson:"updatedAt"`
}

// maxPending bounds the entries embedded in one account document; a
// fast-path writer that finds it full copies them out first. 512 entries
// stay far below MongoDB's 16 MiB document limit.
const maxPending = 512

// pendingFull is the path that exists only when Pending is full.
var pendingFull = fmt.Sprintf("pending.%d", maxPending-1)

// Add credits amount to account, creating the account on its first credit.
// It fails with [ErrOverflow] if the balance would pass math.MaxInt64.
func (s *Service) Add(ctx context.Context, account string, amount int64, opts ...OpOption) (Entry, error) {
	e, c, err := s.newEntry(account, amount, KindCredit, opts)
	if err != nil {
		return Entry{}, fmt.Errorf("credits: add %d to %q: %w", amount, account, err)
	}
	if c.key == "" && !tx.InTransaction(ctx) {
		e, err = s.fastPost(ctx, e)
	} else {
		hash := paramHash("add", account, amount, c.reason, c.refKind, c.refID)
		e, err = tx.Do(ctx, s.runner, func(ctx context.Context) (Entry, error) {
			return idempotent(ctx, s, c.key, "add", hash, func(ctx context.Context) (Entry, error) {
				if err := s.creditTx(ctx, account, amount, e.CreatedAt); err != nil {
					return Entry{}, err
				}
				return e, s.insertEntries(ctx, e)
			})
		}, tx.WithName("credits.Add"))
	}
	if err != nil {
		return Entry{}, fmt.Errorf("credits: add %d to %s: %w", amount, account, err)
	}
	return e, nil
}

// Deduct debits amount from account. It never overdraws: the write only
// happens if the available balance covers amount, else it fails with
// [ErrInsufficientCredits]. The returned entry's Amount is -amount.
func (s *Service) Deduct(ctx context.Context, account string, amount int64, opts ...OpOption) (Entry, error) {
	e, c, err := s.newEntry(account, amount, KindDebit, opts)
	if err != nil {
		return Entry{}, fmt.Errorf("credits: deduct %d from %q: %w", amount, account, err)
	}
	e.Amount = -amount
	if c.key == "" && !tx.InTransaction(ctx) {
		e, err = s.fastPost(ctx, e)
	} else {
		hash := paramHash("deduct", account, amount, c.reason, c.refKind, c.refID)
		e, err = tx.Do(ctx, s.runner, func(ctx context.Context) (Entry, error) {
			return idempotent(ctx, s, c.key, "deduct", hash, func(ctx context.Context) (Entry, error) {
				inc := bson.D{{Key: "balance", Value: -amount}, {Key: "available", Value: -amount}}
				if err := s.debitTx(ctx, account, amount, inc, e.CreatedAt); err != nil {
					return Entry{}, err
				}
				return e, s.insertEntries(ctx, e)
			})
		}, tx.WithName("credits.Deduct"))
	}
	if err != nil {
		return Entry{}, fmt.Errorf("credits: deduct %d from %s: %w", amount, account, err)
	}
	return e, nil
}

// Transfer moves amount from one account to another: the debit, the
// credit and both entries commit together or not at all. The receiving
// account is created if needed.
func (s *Service) Transfer(ctx context.Context, from, to string, amount int64, opts ...OpOption) (Transfer, error) {
	t, err := s.transfer(ctx, from, to, amount, opts)
	if err != nil {
		return Transfer{}, fmt.Errorf("credits: transfer %d from %.140q to %.140q: %w", amount, from, to, err)
	}
	return t, nil
}

func (s *Service) transfer(ctx context.Context, from, to string, amount int64, opts []OpOption) (Transfer, error) {
	debit, c, err := s.newEntry(from, amount, KindTransferOut, opts)
	if err != nil {
		return Transfer{}, err
	}
	if err := ValidateAccount(to); err != nil {
		return Transfer{}, err
	}
	if from == to {
		return Transfer{}, fmt.Errorf("%w: cannot transfer to the same account", ErrInvalidAccount)
	}
	t := Transfer{ID: newID(), From: from, To: to, Amount: amount, CreatedAt: debit.CreatedAt}
	debit.Amount, debit.TransferID = -amount, t.ID
	credit := debit
	credit.ID, credit.Account, credit.Amount, credit.Kind = newID(), to, amount, KindTransferIn
	t.Debit, t.Credit = debit, credit

	hash := paramHash("transfer", from, to, amount, c.reason, c.refKind, c.refID)
	return tx.Do(ctx, s.runner, func(ctx context.Context) (Transfer, error) {
		return idempotent(ctx, s, c.key, "transfer", hash, func(ctx context.Context) (Transfer, error) {
			inc := bson.D{{Key: "balance", Value: -amount}, {Key: "available", Value: -amount}}
			if err := s.debitTx(ctx, from, amount, inc, t.CreatedAt); err != nil {
				return Transfer{}, err
			}
			if err := s.creditTx(ctx, to, amount, t.CreatedAt); err != nil {
				return Transfer{}, err
			}
			return t, s.insertEntries(ctx, debit, credit)
		})
	}, tx.WithName("credits.Transfer"))
}

// newEntry validates a mutation's arguments and returns its entry.
func (s *Service) newEntry(account string, amount int64, kind Kind, opts []OpOption) (Entry, opConfig, error) {
	if err := ValidateAccount(account); err != nil {
		return Entry{}, opConfig{}, err
	}
	if amount <= 0 {
		return Entry{}, opConfig{}, fmt.Errorf("%w: %d is not positive", ErrInvalidAmount, amount)
	}
	c, err := opConfigOf(opts)
	if err != nil {
		return Entry{}, c, err
	}
	return Entry{
		ID: newID(), Account: account, Amount: amount, Kind: kind,
		Reason: c.reason, RefKind: c.refKind, RefID: c.refID, IdempotencyKey: c.key,
		CreatedAt: s.now(),
	}, c, nil
}

func (s *Service) insertEntries(ctx context.Context, es ...Entry) error {
	docs := make([]any, len(es))
	for i, e := range es {
		docs[i] = e
	}
	if _, err := s.entries.InsertMany(ctx, docs); err != nil {
		return fmt.Errorf("insert entries: %w", err)
	}
	return nil
}

// creditTx adds amount to account's balance in the transaction in ctx,
// creating the account if it does not exist. The update is guarded
// against overflow; only when it matches nothing is the account read, to
// tell a missing account from an overflow.
func (s *Service) creditTx(ctx context.Context, account string, amount int64, now time.Time) error {
	res, err := s.accounts.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: account}, {Key: "balance", Value: bson.D{{Key: "$lte", Value: math.MaxInt64 - amount}}}},
		bson.D{
			{Key: "$inc", Value: bson.D{{Key: "balance", Value: amount}, {Key: "available", Value: amount}}},
			{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}},
		})
	if err != nil {
		return fmt.Errorf("credit account: %w", err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	n, err := s.accounts.CountDocuments(ctx, bson.D{{Key: "_id", Value: account}})
	if err != nil {
		return fmt.Errorf("read account: %w", err)
	}
	if n > 0 {
		return ErrOverflow
	}
	_, err = s.accounts.InsertOne(ctx, accountDoc{ID: account, Balance: amount, Available: amount, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

// debitTx applies inc to account in the transaction in ctx if its
// available balance is at least amount. On a shortfall it releases the
// account's expired holds (in the same transaction) and tries once more.
func (s *Service) debitTx(ctx context.Context, account string, amount int64, inc bson.D, now time.Time) error {
	for try := 0; ; try++ {
		res, err := s.accounts.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: account}, {Key: "available", Value: bson.D{{Key: "$gte", Value: amount}}}},
			bson.D{{Key: "$inc", Value: inc}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}}})
		if err != nil {
			return fmt.Errorf("debit account: %w", err)
		}
		if res.MatchedCount == 1 {
			return nil
		}
		acc, err := s.account(ctx, account)
		if err != nil {
			return err
		}
		if try == 0 && acc.Held > 0 {
			n, err := s.releaseExpiredTx(ctx, account)
			if err != nil {
				return err
			}
			if n > 0 {
				continue
			}
		}
		return fmt.Errorf("%w: available %d, asked %d", ErrInsufficientCredits, acc.Available, amount)
	}
}

// account reads an account without its embedded entries.
func (s *Service) account(ctx context.Context, account string) (accountDoc, error) {
	var acc accountDoc
	err := s.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: account}},
		options.FindOne().SetProjection(bson.D{{Key: "pending", Value: 0}})).Decode(&acc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return acc, ErrAccountNotFound
	}
	if err != nil {
		return acc, fmt.Errorf("read account: %w", err)
	}
	return acc, nil
}

// errAgain asks fastPost to try its write again.
var errAgain = errors.New("credits: try again")

// fastPost applies e, a credit (Amount > 0) or a debit (Amount < 0), with
// one guarded single-document write that also embeds e in the account
// document: the balance and its entry change atomically without a
// transaction, so concurrent writers on a hot account never conflict.
// The entry is copied to the entries collection later (see flush).
func (s *Service) fastPost(ctx context.Context, e Entry) (Entry, error) {
	select {
	case s.fast <- struct{}{}:
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
	defer func() { <-s.fast }()
	for try := 0; ; try++ {
		err := s.combinedWrite(ctx, e)
		if err == nil {
			s.noteWrite(ctx, e.Account)
			return e, nil
		}
		if !errors.Is(err, errAgain) {
			return Entry{}, err
		}
		if try == 4 {
			return Entry{}, ErrContended
		}
	}
}

func (s *Service) fastWrite(ctx context.Context, e Entry) error {
	amount := e.Amount
	filter := bson.D{
		{Key: "_id", Value: e.Account},
		// A resent write (the driver retries once on a network error)
		// must not apply twice.
		{Key: "pending._id", Value: bson.D{{Key: "$ne", Value: e.ID}}},
		{Key: pendingFull, Value: bson.D{{Key: "$exists", Value: false}}},
	}
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "balance", Value: amount}, {Key: "available", Value: amount}}},
		{Key: "$push", Value: bson.D{{Key: "pending", Value: e}}},
		{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: e.CreatedAt}}},
		{Key: "$min", Value: bson.D{{Key: "pendingSince", Value: e.CreatedAt}}},
	}
	if amount > 0 {
		filter = append(filter, bson.E{Key: "balance", Value: bson.D{{Key: "$lte", Value: math.MaxInt64 - amount}}})
		update = append(update, bson.E{Key: "$setOnInsert", Value: bson.D{{Key: "held", Value: int64(0)}, {Key: "createdAt", Value: e.CreatedAt}}})
	} else {
		filter = append(filter, bson.E{Key: "available", Value: bson.D{{Key: "$gte", Value: -amount}}})
	}
	res, err := s.accounts.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(amount > 0))
	if err == nil && (res.MatchedCount == 1 || res.UpsertedCount == 1) {
		return nil
	}
	if err != nil && !mongo.IsDuplicateKeyError(err) { // a duplicate: the account exists but the guard failed
		return fmt.Errorf("write account: %w", err)
	}

	// The guard failed: find out why. These reads only explain the
	// failure; they never decide a write.
	var acc accountDoc
	err = s.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: e.Account}}).Decode(&acc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		if amount > 0 {
			return errAgain
		}
		return ErrAccountNotFound
	case err != nil:
		return fmt.Errorf("read account: %w", err)
	case slices.ContainsFunc(acc.Pending, func(p Entry) bool { return p.ID == e.ID }):
		return nil // applied by an earlier send of this write
	case len(acc.Pending) >= maxPending:
		if err := s.flush(ctx, e.Account); err != nil {
			return err
		}
		return errAgain
	}
	if n, err := s.entries.CountDocuments(ctx, bson.D{{Key: "_id", Value: e.ID}}); err != nil {
		return fmt.Errorf("read entry: %w", err)
	} else if n > 0 {
		return nil // applied, and already copied out
	}
	switch {
	case amount > 0 && acc.Balance > math.MaxInt64-amount:
		return ErrOverflow
	case amount > 0, acc.Available >= -amount:
		return errAgain // changed since the write
	case acc.Held > 0:
		n, err := s.releaseExpired(ctx, e.Account)
		if err != nil {
			return err
		}
		if n > 0 {
			return errAgain
		}
	}
	return fmt.Errorf("%w: available %d, asked %d", ErrInsufficientCredits, acc.Available, -amount)
}
