package credits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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
	// Flushes counts the copies that moved entries out of Pending (see
	// hotWriter); missing is 0.
	Flushes int64 `bson:"flushes"`
	// Incarnation is set when the document is created: a flush count
	// guards writes of this document only (see hotWriter). Accounts
	// created before it existed have none.
	Incarnation bson.ObjectID `bson:"incarnation,omitempty"`
	// Placeholder marks a document that the fence of a credit's unknown
	// outcome created (see hotWriter.resolve). It is no account only as
	// long as nothing has written to it (see isPlaceholder).
	Placeholder bool      `bson:"placeholder,omitempty"`
	CreatedAt   time.Time `bson:"createdAt"`
	// UpdatedAt is set by every write of the position, in every release;
	// the fence leaves it unset on the placeholder it inserts.
	UpdatedAt time.Time `bson:"updatedAt"`
}

// epoch is the epoch acc was read at (see hotWriter).
func (acc accountDoc) epoch() epoch {
	return epoch{incarnation: acc.Incarnation, flushes: acc.Flushes}
}

// maxPending bounds the entries embedded in one account document; a
// single-document writer that finds it full copies them out first. 512 entries
// stay far below MongoDB's 16 MiB document limit.
const maxPending = 512

// pendingFull is the path that exists only when Pending is full.
var pendingFull = fmt.Sprintf("pending.%d", maxPending-1)

// Add credits amount to account, creating the account on its first credit.
// It fails with [ErrOverflow] if the balance would pass math.MaxInt64.
// See the package documentation for how it is written and what a caller
// may do after each error.
func (s *Service) Add(ctx context.Context, account string, amount int64, opts ...OpOption) (Entry, error) {
	e, c, err := s.newEntry(account, amount, KindCredit, opts)
	if err == nil {
		e, err = s.post(ctx, opAdd, e, c)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("credits: add %d to %.140q: %w", amount, account, err)
	}
	return e, nil
}

// Deduct debits amount from account. It never overdraws: the write only
// happens if the available balance covers amount, else it fails with
// [ErrInsufficientCredits]. The returned entry's Amount is -amount.
func (s *Service) Deduct(ctx context.Context, account string, amount int64, opts ...OpOption) (Entry, error) {
	e, c, err := s.newEntry(account, amount, KindDebit, opts)
	if err == nil {
		e.Amount = -amount
		e, err = s.post(ctx, opDeduct, e, c)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("credits: deduct %d from %.140q: %w", amount, account, err)
	}
	return e, nil
}

// post writes e, a credit (Amount > 0) or a debit (Amount < 0), by the
// path pathFor chooses.
//
// With a key, on the single-document path, the key is claimed first for
// e's id (see [Service.claim]). A call that finds the key claimed by
// another call writes the entry the claim names, dated by this call,
// unless it is applied already. Whichever call's send applies it is the
// key's first success: its call reports Replayed false and returns its
// own entry; every other call returns that entry as a replay. So a call
// that failed (whose claim was written, even after it gave up) applied
// nothing and replays nothing: the next call to apply the key's entry is
// its first success, dated when it applied.
func (s *Service) post(ctx context.Context, op opKind, e Entry, c opConfig) (Entry, error) {
	hash := paramHash(op, e.Account, e.Amount, c.reason, c.refKind, c.refID)
	if pathFor(ctx, op) == pathTransaction {
		return inTxOn(ctx, s, op.txName(), []string{e.Account}, func(ctx context.Context) (Entry, error) {
			return s.postTx(ctx, op, hash, e, c.key, c.replayed)
		})
	}
	setReplayed(c.replayed, false)
	// With a key, the count must be observed before the claim is read
	// (see hotWriter).
	epoch, err := s.hot.epoch(ctx, e.Account)
	if err != nil {
		return Entry{}, err
	}
	shared := c.key != ""
	if shared {
		rec, mine, err := s.claim(ctx, c.key, op, hash, e)
		if err != nil {
			return Entry{}, err
		}
		if !mine {
			var first Entry
			if err := rec.Decode(&first); err != nil {
				return Entry{}, err
			}
			if !rec.Claimed {
				setReplayed(c.replayed, true)
				return first, nil // written by a transaction, with its effect
			}
			stored, applied, n, err := s.hot.applied(ctx, first)
			if err != nil {
				return Entry{}, err
			}
			if applied {
				setReplayed(c.replayed, true)
				return stored, nil
			}
			// Not applied: its call failed, or its send is on its way.
			// Send the same id (it cannot apply twice), dated now.
			e.ID, epoch = first.ID, n
		}
	}
	send := sent{Entry: e}
	if shared {
		send.Call = newID() // the calls of a key may share a date
	}
	err = s.hot.post(ctx, send, epoch, shared)
	if errors.Is(err, errAppliedByAnother) {
		stored, applied, _, err := s.hot.applied(ctx, e)
		if err == nil && !applied {
			// A copy moves an entry without a gap: only a read of a
			// replaced database can miss it.
			err = errors.New("entry not found")
		}
		if err != nil {
			return Entry{}, fmt.Errorf("%w: applied by another call with the key, whose entry could not be read: %w", ErrOutcomeUnknown, err)
		}
		setReplayed(c.replayed, true)
		return stored, nil
	}
	if err != nil {
		return Entry{}, err
	}
	return e, nil
}

// postTx writes e and, with a key, its record in the transaction in ctx.
// A key claimed on the single-document path whose entry is not applied
// is finished here, under the claimed entry's id, dated now: this call is
// the key's first success (as on the single-document path, see post). The
// write raises the account's flush count, so that a send of that entry
// still on its way cannot apply it a second time.
func (s *Service) postTx(ctx context.Context, op opKind, hash string, e Entry, key string, replayed *bool) (Entry, error) {
	setReplayed(replayed, false) // the callback may run more than once
	var fence, expired bool
	if key != "" {
		rec, found, err := s.keys.Read(ctx, key)
		if err != nil {
			return Entry{}, err
		}
		expired = rec.Key != "" && !found
		if found {
			if err := s.keys.Check(rec, string(op), hash); err != nil {
				return Entry{}, err
			}
			var first Entry
			if err := rec.Decode(&first); err != nil {
				return Entry{}, err
			}
			if !rec.Claimed {
				setReplayed(replayed, true)
				return first, nil
			}
			stored, applied, _, err := s.hot.applied(ctx, first)
			if err != nil {
				return Entry{}, err
			}
			if applied {
				setReplayed(replayed, true)
				return stored, nil
			}
			// The record written below replaces the claim in this
			// transaction.
			e.ID, fence, expired = first.ID, true, true
		}
	}
	var err error
	if e.Amount > 0 {
		err = s.creditTx(ctx, e.Account, e.Amount, e.CreatedAt, fence)
	} else {
		inc := bson.D{{Key: "balance", Value: e.Amount}, {Key: "available", Value: e.Amount}}
		if fence {
			inc = append(inc, bson.E{Key: "flushes", Value: int64(1)})
		}
		err = s.debitTx(ctx, e.Account, -e.Amount, inc, e.CreatedAt)
	}
	if err != nil {
		return Entry{}, err
	}
	if err := s.insertEntries(ctx, e); err != nil {
		return Entry{}, err
	}
	if key == "" {
		return e, nil
	}
	rec, err := s.keys.NewRecord(key, string(op), hash, e, false)
	if err != nil {
		return Entry{}, err
	}
	return e, s.keys.Put(ctx, rec, expired)
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

	hash := paramHash(opTransfer, from, to, amount, c.reason, c.refKind, c.refID)
	return inTxOn(ctx, s, "credits.Transfer", []string{from, to}, func(ctx context.Context) (Transfer, error) {
		return idempotent(ctx, s, c.key, opTransfer, hash, c.replayed, func(ctx context.Context) (Transfer, error) {
			inc := bson.D{{Key: "balance", Value: -amount}, {Key: "available", Value: -amount}}
			if err := s.debitTx(ctx, from, amount, inc, t.CreatedAt); err != nil {
				return Transfer{}, err
			}
			if err := s.creditTx(ctx, to, amount, t.CreatedAt, false); err != nil {
				return Transfer{}, err
			}
			return t, s.insertEntries(ctx, debit, credit)
		})
	})
}

func setReplayed(p *bool, v bool) {
	if p != nil {
		*p = v
	}
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
// creating the account if it does not exist (or making a placeholder of
// it one, see isPlaceholder). The update is guarded against overflow;
// only when it matches nothing is the account read, to tell a missing
// account from an overflow. fence also raises the account's flush count
// (see hotWriter).
func (s *Service) creditTx(ctx context.Context, account string, amount int64, now time.Time, fence bool) error {
	inc := bson.D{{Key: "balance", Value: amount}, {Key: "available", Value: amount}}
	if fence {
		inc = append(inc, bson.E{Key: "flushes", Value: int64(1)})
	}
	res, err := s.accounts.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: account}, {Key: "balance", Value: bson.D{{Key: "$lte", Value: math.MaxInt64 - amount}}}},
		bson.D{
			{Key: "$inc", Value: inc},
			{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}},
			clearPlaceholder,
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
	acc := accountDoc{ID: account, Balance: amount, Available: amount, Incarnation: bson.NewObjectID(), CreatedAt: now, UpdatedAt: now}
	if fence {
		acc.Flushes = 1 // a single-document write of the claimed entry may be on its way
	}
	_, err = s.accounts.InsertOne(ctx, acc)
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
			bson.D{{Key: "$inc", Value: inc}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}}, clearPlaceholder})
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

// account reads an account with at most one of its embedded entries
// (enough to tell a placeholder, which is no account, see isPlaceholder).
func (s *Service) account(ctx context.Context, account string) (accountDoc, error) {
	var acc accountDoc
	err := s.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: account}},
		options.FindOne().SetProjection(bson.D{{Key: "pending", Value: bson.D{{Key: "$slice", Value: 1}}}})).Decode(&acc)
	if errors.Is(err, mongo.ErrNoDocuments) || err == nil && acc.isPlaceholder() {
		return accountDoc{}, ErrAccountNotFound
	}
	if err != nil {
		return acc, fmt.Errorf("read account: %w", err)
	}
	return acc, nil
}
