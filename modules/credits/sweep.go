package credits

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// sweepBatch bounds the work of one sweep step.
const sweepBatch = 100

// Sweep does one round of the background sweeper's work: it releases holds
// whose time ran out and copies embedded entries to the entries collection.
// [Service.Start] runs it periodically; call it directly to run it now.
func (s *Service) Sweep(ctx context.Context) error {
	if _, err := s.ReleaseExpired(ctx); err != nil {
		return err
	}
	ids, err := s.pendingAccounts(ctx, bson.D{{Key: "pendingSince", Value: bson.D{{Key: "$lte", Value: s.now()}}}}, sweepBatch)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, s.hot.flushOnce(ctx, id))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("credits: %w", err)
	}
	return nil
}

// Flush copies every account's embedded entries to the entries collection.
// Nothing depends on it for correctness; it is for tests and shutdown.
func (s *Service) Flush(ctx context.Context) error {
	ids, err := s.pendingAccounts(ctx, bson.D{{Key: "pendingSince", Value: bson.D{{Key: "$exists", Value: true}}}}, 0)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.hot.flushOnce(ctx, id); err != nil {
			return fmt.Errorf("credits: %w", err)
		}
	}
	return nil
}

// pendingAccounts returns the ids of up to limit (0: all) accounts
// matching filter.
func (s *Service) pendingAccounts(ctx context.Context, filter bson.D, limit int64) ([]string, error) {
	cur, err := s.accounts.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("credits: find accounts to flush: %w", err)
	}
	var accs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &accs); err != nil {
		return nil, fmt.Errorf("credits: find accounts to flush: %w", err)
	}
	ids := make([]string, len(accs))
	for i, a := range accs {
		ids[i] = a.ID
	}
	return ids, nil
}
