package credits

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/zap"
)

// noteWrite counts a fast-path write on account and, every flushEvery
// writes of its stripe, copies the account's embedded entries out.
func (s *Service) noteWrite(ctx context.Context, account string) {
	if s.writes[s.stripe(account)].Add(1)%s.cfg.flushEvery != 0 {
		return
	}
	if _, busy := s.flushing.LoadOrStore(account, struct{}{}); busy {
		return
	}
	defer s.flushing.Delete(account)
	// Best effort: the write itself has committed, and what is not copied
	// now is copied by the next flush or the sweeper.
	if err := s.flush(ctx, account); err != nil {
		s.cfg.log.Debug("credits: copying entries out failed; the sweeper will retry", zap.String("account", account), zap.Error(err))
	}
}

// stripe maps account to one of 64 stripes.
func (s *Service) stripe(account string) uint64 {
	return maphash.String(s.seed, account) % 64
}

// flush copies the entries embedded in account's document to the entries
// collection, then removes them from the document. It is idempotent and
// safe to run concurrently: entries are inserted under their own ids
// (duplicates are ignored) before they are pulled, so an entry is always
// in the document, in the collection, or briefly in both — never in
// neither. Readers merge both and drop duplicates.
func (s *Service) flush(ctx context.Context, account string) error {
	var acc struct {
		Pending []Entry `bson:"pending"`
	}
	err := s.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: account}},
		options.FindOne().SetProjection(bson.D{{Key: "pending", Value: 1}})).Decode(&acc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pending entries of %s: %w", account, err)
	}
	if len(acc.Pending) > 0 {
		docs := make([]any, len(acc.Pending))
		ids := make(bson.A, len(acc.Pending))
		for i, e := range acc.Pending {
			docs[i], ids[i] = e, e.ID
		}
		_, err := s.entries.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		if err != nil && !onlyDuplicates(err) {
			return fmt.Errorf("copy entries of %s: %w", account, err)
		}
		_, err = s.accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: account}},
			bson.D{{Key: "$pull", Value: bson.D{{Key: "pending", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}}}}})
		if err != nil {
			return fmt.Errorf("remove copied entries of %s: %w", account, err)
		}
	}
	// Leave the sweeper's index only if no writer embedded a new entry
	// meanwhile.
	_, err = s.accounts.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: account}, {Key: "pending", Value: bson.D{{Key: "$size", Value: 0}}}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "pendingSince", Value: ""}}}})
	if err != nil {
		return fmt.Errorf("mark %s flushed: %w", account, err)
	}
	return nil
}

// flushBounded is flush counted among the fast-path writes: its plain
// writes to the account document may wait for transactions too.
func (s *Service) flushBounded(ctx context.Context, account string) error {
	select {
	case s.fast <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.fast }()
	return s.flush(ctx, account)
}

// onlyDuplicates reports whether every write error in err is a duplicate
// key: entries that an earlier copy already inserted.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return false
		}
	}
	return true
}

// sweepBatch bounds the work of one sweep step.
const sweepBatch = 100

// Sweep does one round of the background sweeper's work: it releases holds
// whose time ran out and copies embedded entries to the entries collection.
// [Service.Start] runs it periodically; call it directly to run it now.
func (s *Service) Sweep(ctx context.Context) error {
	if _, err := s.ReleaseExpired(ctx); err != nil {
		return err
	}
	cur, err := s.accounts.Find(ctx,
		bson.D{{Key: "pendingSince", Value: bson.D{{Key: "$lte", Value: s.now()}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(sweepBatch))
	if err != nil {
		return fmt.Errorf("credits: find accounts to flush: %w", err)
	}
	var accs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &accs); err != nil {
		return fmt.Errorf("credits: find accounts to flush: %w", err)
	}
	var errs []error
	for _, a := range accs {
		if _, busy := s.flushing.LoadOrStore(a.ID, struct{}{}); busy {
			continue
		}
		errs = append(errs, s.flushBounded(ctx, a.ID))
		s.flushing.Delete(a.ID)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("credits: %w", err)
	}
	return nil
}

// Flush copies every account's embedded entries to the entries collection.
// Nothing depends on it for correctness; it is for tests and shutdown.
func (s *Service) Flush(ctx context.Context) error {
	cur, err := s.accounts.Find(ctx, bson.D{{Key: "pendingSince", Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return fmt.Errorf("credits: find accounts to flush: %w", err)
	}
	var accs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &accs); err != nil {
		return fmt.Errorf("credits: find accounts to flush: %w", err)
	}
	for _, a := range accs {
		if err := s.flushBounded(ctx, a.ID); err != nil {
			return fmt.Errorf("credits: %w", err)
		}
	}
	return nil
}
