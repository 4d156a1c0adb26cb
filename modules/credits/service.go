package credits

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/zap"

	"github.com/txkit/txkit/internal/idempotency"
	"github.com/txkit/txkit/internal/schema"
	"github.com/txkit/txkit/tx"
)

// Service is the credits ledger. Create it with [NewService] (or get it
// from [Module]); it is safe for concurrent use.
type Service struct {
	db       *mongo.Database
	runner   *tx.Runner
	cfg      config
	accounts *mongo.Collection
	entries  *mongo.Collection
	holds    *mongo.Collection
	idem     *mongo.Collection
	keys     *idempotency.Store // the records in idem

	// hot is the single-document write engine (see hotwriter.go).
	hot *hotWriter

	mu   sync.Mutex
	stop context.CancelFunc // stops the sweeper
	done chan struct{}      // closed when the sweeper has returned
}

// NewService returns a ledger stored in db that runs its transactions with
// r. Call [Service.EnsureSchema] once before use, and [Service.Start] to
// run the background sweeper ([Module] does both).
func NewService(db *mongo.Database, r *tx.Runner, opts ...Option) *Service {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	s := &Service{
		db:       db,
		runner:   r,
		cfg:      cfg,
		accounts: db.Collection(cfg.prefix + "accounts"),
		entries:  db.Collection(cfg.prefix + "entries"),
		holds:    db.Collection(cfg.prefix + "holds"),
		idem:     db.Collection(cfg.prefix + "idempotency"),
	}
	s.keys = newKeyStore(s)
	s.hot = newHotWriter(s.accounts, s.entries, cfg, s.releaseExpired)
	return s
}

// IdempotencyKeys returns the collection that records the ledger's
// idempotency keys (credit_idempotency by default) and how long a key is
// remembered. A module that wants its own keys in the ledger's key space,
// so that one key used by it and by the ledger is a conflict rather than
// two requests, records them there in the same format (the HTTP API of
// app/api does).
func (s *Service) IdempotencyKeys() (*mongo.Collection, time.Duration) {
	return s.idem, s.cfg.keyRetention
}

// EnsureSchema creates the service's collections and indexes. It is
// idempotent. Collections are created up front because MongoDB may refuse
// to create one inside a transaction.
func (s *Service) EnsureSchema(ctx context.Context) error {
	if err := s.keys.EnsureSchema(ctx); err != nil {
		return fmt.Errorf("credits: %w", err)
	}
	for _, c := range []*mongo.Collection{s.accounts, s.entries, s.holds} {
		if err := schema.CreateCollection(ctx, s.db, c.Name()); err != nil {
			return fmt.Errorf("credits: create collection %s: %w", c.Name(), err)
		}
	}
	indexes := []struct {
		coll   *mongo.Collection
		models []mongo.IndexModel
	}{
		{s.entries, []mongo.IndexModel{
			{Keys: bson.D{{Key: "account", Value: 1}, {Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}},
		}},
		{s.holds, []mongo.IndexModel{
			{Keys: bson.D{{Key: "status", Value: 1}, {Key: "expiresAt", Value: 1}}},
			{Keys: bson.D{{Key: "account", Value: 1}, {Key: "status", Value: 1}}},
		}},
		{s.accounts, []mongo.IndexModel{
			// Only accounts with entries still embedded are indexed: the
			// sweeper's work list.
			{Keys: bson.D{{Key: "pendingSince", Value: 1}}, Options: options.Index().SetSparse(true)},
		}},
	}
	for _, ix := range indexes {
		if _, err := ix.coll.Indexes().CreateMany(ctx, ix.models); err != nil {
			return fmt.Errorf("credits: create indexes on %s: %w", ix.coll.Name(), err)
		}
	}
	return nil
}

// Start starts the background sweeper, which releases expired holds and
// copies embedded entries to the entries collection every sweep interval
// (see [WithSweepInterval]). It does nothing if the sweeper already runs.
// Stop it with [Service.Stop].
func (s *Service) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.sweepLoop(ctx, s.done)
}

// Stop stops the sweeper and waits for it to return; a sweep in progress
// is interrupted. It does nothing if the sweeper is not running.
func (s *Service) Stop() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
}

func (s *Service) sweepLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.cfg.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.cfg.log.Warn("credits: sweep failed", zap.Error(err))
			}
		}
	}
}

// now returns the service clock's time at BSON's millisecond precision, so
// that a result equals what a later read of it returns.
func (s *Service) now() time.Time {
	return s.cfg.now().UTC().Truncate(time.Millisecond)
}

func newID() string { return bson.NewObjectID().Hex() }
