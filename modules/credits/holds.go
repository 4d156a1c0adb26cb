package credits

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Reserve holds amount of account's available balance for ttl, for
// spending whose final cost is known later: [Service.Capture] spends up to
// the held amount and releases the rest, [Service.Release] releases it
// all. A hold not closed within ttl expires and is released.
func (s *Service) Reserve(ctx context.Context, account string, amount int64, ttl time.Duration, opts ...OpOption) (Hold, error) {
	h, err := s.reserve(ctx, account, amount, ttl, opts)
	if err != nil {
		return Hold{}, fmt.Errorf("credits: reserve %d on %.140q: %w", amount, account, err)
	}
	return h, nil
}

func (s *Service) reserve(ctx context.Context, account string, amount int64, ttl time.Duration, opts []OpOption) (Hold, error) {
	e, c, err := s.newEntry(account, amount, "", opts)
	if err != nil {
		return Hold{}, err
	}
	if ttl <= 0 {
		return Hold{}, fmt.Errorf("%w: hold TTL %v is not positive", ErrInvalidOption, ttl)
	}
	h := Hold{
		ID: newID(), Account: account, Amount: amount, Status: HoldOpen,
		Reason: c.reason, RefKind: c.refKind, RefID: c.refID, IdempotencyKey: c.key,
		CreatedAt: e.CreatedAt, ExpiresAt: e.CreatedAt.Add(ttl).Truncate(time.Millisecond),
	}
	hash := paramHash(opReserve, account, amount, ttl, c.reason, c.refKind, c.refID)
	return inTxOn(ctx, s, "credits.Reserve", []string{account}, func(ctx context.Context) (Hold, error) {
		return idempotent(ctx, s, c.key, opReserve, hash, c.replayed, func(ctx context.Context) (Hold, error) {
			inc := bson.D{{Key: "held", Value: amount}, {Key: "available", Value: -amount}}
			if err := s.debitTx(ctx, account, amount, inc, h.CreatedAt); err != nil {
				return Hold{}, err
			}
			if _, err := s.holds.InsertOne(ctx, h); err != nil {
				return Hold{}, fmt.Errorf("insert hold: %w", err)
			}
			return h, nil
		})
	})
}

// Capture spends amount (at most the held amount) of an open hold and
// releases the rest, writing one entry of kind [KindCapture]. A hold past
// its expiry fails with [ErrHoldExpired] (and is released); a captured or
// released one with [ErrHoldClosed].
func (s *Service) Capture(ctx context.Context, holdID string, amount int64, opts ...OpOption) (Entry, error) {
	e, err := s.capture(ctx, holdID, amount, opts)
	if errors.Is(err, ErrHoldExpired) && !inTransaction(ctx) {
		// The failed transaction could not release it; do it now, in a
		// transaction of its own (the sweeper would, later).
		if _, rerr := s.closeHold(ctx, holdID, HoldExpired); rerr != nil && !isHoldState(rerr) {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return Entry{}, fmt.Errorf("credits: capture %d of hold %.140q: %w", amount, holdID, err)
	}
	return e, nil
}

func (s *Service) capture(ctx context.Context, holdID string, amount int64, opts []OpOption) (Entry, error) {
	c, err := opConfigOf(opts)
	if err != nil {
		return Entry{}, err
	}
	if amount <= 0 {
		return Entry{}, fmt.Errorf("%w: %d is not positive", ErrInvalidAmount, amount)
	}
	if !idPattern.MatchString(holdID) {
		return Entry{}, ErrHoldNotFound
	}
	hash := paramHash(opCapture, holdID, amount, c.reason, c.refKind, c.refID)
	return inTx(ctx, s.runner, "credits.Capture", func(ctx context.Context) (Entry, error) {
		return idempotent(ctx, s, c.key, opCapture, hash, c.replayed, func(ctx context.Context) (Entry, error) {
			now := s.now()
			h, err := s.openHold(ctx, holdID, now)
			if err != nil {
				return Entry{}, err
			}
			if amount > h.Amount {
				return Entry{}, fmt.Errorf("%w: capture %d exceeds the hold's %d", ErrInvalidAmount, amount, h.Amount)
			}
			e := Entry{
				ID: newID(), Account: h.Account, Amount: -amount, Kind: KindCapture, HoldID: h.ID,
				Reason: c.reason, RefKind: c.refKind, RefID: c.refID, IdempotencyKey: c.key, CreatedAt: now,
			}
			if e.Reason == "" {
				e.Reason = h.Reason
			}
			if e.RefKind == "" {
				e.RefKind, e.RefID = h.RefKind, h.RefID
			}
			if err := s.setHoldClosed(ctx, h, HoldCaptured, amount, e.ID, now); err != nil {
				return Entry{}, err
			}
			// balance ≥ held ≥ h.Amount ≥ amount, so this cannot overdraw;
			// the guard says so to the server too.
			res, err := s.accounts.UpdateOne(ctx,
				bson.D{{Key: "_id", Value: h.Account}, {Key: "held", Value: bson.D{{Key: "$gte", Value: h.Amount}}}, {Key: "balance", Value: bson.D{{Key: "$gte", Value: amount}}}},
				bson.D{
					{Key: "$inc", Value: bson.D{{Key: "balance", Value: -amount}, {Key: "held", Value: -h.Amount}, {Key: "available", Value: h.Amount - amount}}},
					{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}},
				})
			if err != nil {
				return Entry{}, fmt.Errorf("debit account: %w", err)
			}
			if res.MatchedCount != 1 {
				return Entry{}, fmt.Errorf("credits: account %s holds less than its open hold %s: ledger corrupt", h.Account, h.ID)
			}
			return e, s.insertEntries(ctx, e)
		})
	})
}

// Release releases an open hold: its whole amount becomes available again.
// Releasing a hold that is already released or expired returns it
// unchanged; a captured hold fails with [ErrHoldClosed].
func (s *Service) Release(ctx context.Context, holdID string) (Hold, error) {
	h, err := s.closeHold(ctx, holdID, HoldReleased)
	if err != nil {
		return Hold{}, fmt.Errorf("credits: release hold %.140q: %w", holdID, err)
	}
	return h, nil
}

// GetHold returns a hold.
func (s *Service) GetHold(ctx context.Context, holdID string) (Hold, error) {
	if !idPattern.MatchString(holdID) {
		return Hold{}, ErrHoldNotFound
	}
	h, err := s.hold(ctx, holdID)
	if err != nil {
		return Hold{}, fmt.Errorf("credits: get hold %.140q: %w", holdID, err)
	}
	return h, nil
}

// ReleaseExpired releases every open hold whose time ran out (in batches of
// one transaction per hold) and returns how many it released. The sweeper
// calls it; so may a cron job.
func (s *Service) ReleaseExpired(ctx context.Context) (int, error) {
	released := 0
	for {
		ids, err := s.expiredHolds(ctx, bson.D{})
		if err != nil {
			return released, fmt.Errorf("credits: %w", err)
		}
		for _, id := range ids {
			if _, err := s.closeHold(ctx, id, HoldExpired); err != nil && !isHoldState(err) {
				return released, fmt.Errorf("credits: expire hold %s: %w", id, err)
			}
			released++
		}
		if len(ids) < sweepBatch {
			return released, nil
		}
	}
}

// releaseExpired releases account's expired holds, each in its own
// transaction (a failed caller must not roll the releases back).
func (s *Service) releaseExpired(ctx context.Context, account string) (int, error) {
	ids, err := s.expiredHolds(ctx, bson.D{{Key: "account", Value: account}})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if _, err := s.closeHold(ctx, id, HoldExpired); err != nil && !isHoldState(err) {
			return n, err
		}
		n++
	}
	return n, nil
}

// releaseExpiredTx releases account's expired holds in the transaction in
// ctx and returns how many.
func (s *Service) releaseExpiredTx(ctx context.Context, account string) (int, error) {
	ids, err := s.expiredHolds(ctx, bson.D{{Key: "account", Value: account}})
	if err != nil {
		return 0, err
	}
	now := s.now()
	for _, id := range ids {
		h, err := s.hold(ctx, id)
		if err != nil {
			return 0, err
		}
		if err := s.releaseHoldTx(ctx, h, HoldExpired, now); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func (s *Service) expiredHolds(ctx context.Context, filter bson.D) ([]string, error) {
	filter = append(filter,
		bson.E{Key: "status", Value: HoldOpen},
		bson.E{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: s.now()}}})
	cur, err := s.holds.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(sweepBatch))
	if err != nil {
		return nil, fmt.Errorf("find expired holds: %w", err)
	}
	var hs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &hs); err != nil {
		return nil, fmt.Errorf("find expired holds: %w", err)
	}
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.ID
	}
	return ids, nil
}

// closeHold releases an open hold with status (released or expired) in
// the caller's transaction or its own. A hold already released or expired
// is returned as it is.
func (s *Service) closeHold(ctx context.Context, holdID string, status HoldStatus) (Hold, error) {
	if !idPattern.MatchString(holdID) {
		return Hold{}, ErrHoldNotFound
	}
	return inTx(ctx, s.runner, "credits.Release", func(ctx context.Context) (Hold, error) {
		now := s.now()
		h, err := s.hold(ctx, holdID)
		if err != nil {
			return Hold{}, err
		}
		switch h.Status {
		case HoldReleased, HoldExpired:
			return h, nil
		case HoldCaptured:
			return Hold{}, fmt.Errorf("%w: captured at %s", ErrHoldClosed, h.ClosedAt.Format(time.RFC3339))
		}
		if status == HoldExpired && h.ExpiresAt.After(now) {
			return Hold{}, errHoldOpen
		}
		if !h.ExpiresAt.After(now) {
			status = HoldExpired
		}
		if err := s.releaseHoldTx(ctx, h, status, now); err != nil {
			return Hold{}, err
		}
		h.Status, h.ClosedAt = status, now
		return h, nil
	})
}

// errHoldOpen: a hold to expire has not expired (its expiry was read
// before a clock moved backwards, or the caller was wrong).
var errHoldOpen = errors.New("credits: hold has not expired")

// isHoldState reports errors that only say a hold was not in the state
// expected, which a sweeper can ignore.
func isHoldState(err error) bool {
	return errors.Is(err, ErrHoldClosed) || errors.Is(err, ErrHoldNotFound) || errors.Is(err, errHoldOpen)
}

// releaseHoldTx closes the open hold h with status and gives its amount
// back to the account's available balance.
func (s *Service) releaseHoldTx(ctx context.Context, h Hold, status HoldStatus, now time.Time) error {
	if err := s.setHoldClosed(ctx, h, status, 0, "", now); err != nil {
		return err
	}
	res, err := s.accounts.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: h.Account}, {Key: "held", Value: bson.D{{Key: "$gte", Value: h.Amount}}}},
		bson.D{
			{Key: "$inc", Value: bson.D{{Key: "held", Value: -h.Amount}, {Key: "available", Value: h.Amount}}},
			{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}},
		})
	if err != nil {
		return fmt.Errorf("release held amount: %w", err)
	}
	if res.MatchedCount != 1 {
		return fmt.Errorf("credits: account %s holds less than its open hold %s: ledger corrupt", h.Account, h.ID)
	}
	return nil
}

// setHoldClosed moves h from open to status with a guarded write.
func (s *Service) setHoldClosed(ctx context.Context, h Hold, status HoldStatus, captured int64, entryID string, now time.Time) error {
	set := bson.D{{Key: "status", Value: status}, {Key: "closedAt", Value: now}, {Key: "captured", Value: captured}}
	if entryID != "" {
		set = append(set, bson.E{Key: "entryId", Value: entryID})
	}
	res, err := s.holds.UpdateOne(ctx, bson.D{{Key: "_id", Value: h.ID}, {Key: "status", Value: HoldOpen}}, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return fmt.Errorf("close hold: %w", err)
	}
	if res.MatchedCount != 1 {
		return fmt.Errorf("%w: closed concurrently", ErrHoldClosed)
	}
	return nil
}

func (s *Service) hold(ctx context.Context, holdID string) (Hold, error) {
	var h Hold
	err := s.holds.FindOne(ctx, bson.D{{Key: "_id", Value: holdID}}).Decode(&h)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return h, ErrHoldNotFound
	}
	if err != nil {
		return h, fmt.Errorf("read hold: %w", err)
	}
	return h, nil
}

// openHold reads a hold that must be open and unexpired.
func (s *Service) openHold(ctx context.Context, holdID string, now time.Time) (Hold, error) {
	h, err := s.hold(ctx, holdID)
	if err != nil {
		return h, err
	}
	switch {
	case h.Status == HoldExpired:
		return h, fmt.Errorf("%w at %s", ErrHoldExpired, h.ExpiresAt.Format(time.RFC3339))
	case h.Status != HoldOpen:
		return h, fmt.Errorf("%w: %s", ErrHoldClosed, h.Status)
	case !h.ExpiresAt.After(now):
		return h, fmt.Errorf("%w at %s", ErrHoldExpired, h.ExpiresAt.Format(time.RFC3339))
	}
	return h, nil
}
