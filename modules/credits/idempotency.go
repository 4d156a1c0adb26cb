package credits

import (
	"context"

	"github.com/txkit/txkit/internal/idempotency"
)

// Keys are recorded by package internal/idempotency, the one mechanism
// behind every idempotency key in txkit, in the credit_idempotency
// collection. A transaction writes a key's record together with the
// mutation's effect ([idempotency.Do]). The single-document path writes
// it first, as a claim ([idempotency.Store.Claim]): the key is then taken
// before anything is applied, and the operation is applied exactly when
// an entry of the claimed id is (embedded in its account document or
// copied out to the entries collection). Either way a key is never in
// neither place. Which call's entry that is, and so which call is the
// key's first success, is decided by the write that applies it, not by
// the claim (see Service.post).

// newKeyStore returns the store of the service's idempotency records.
func newKeyStore(s *Service) *idempotency.Store {
	return idempotency.NewStore(s.idem, idempotency.Config{
		Retention: s.cfg.keyRetention,
		Now:       s.now,
		Conflict:  ErrIdempotencyConflict,
		Contended: ErrContended,
	})
}

// idempotent runs fn, which must run in the transaction in ctx, at most
// once per key (see [idempotency.Do]) and reports whether it replayed to
// replayed (see [Replayed]).
func idempotent[T any](ctx context.Context, s *Service, key string, op opKind, hash string, replayed *bool, fn func(ctx context.Context) (T, error)) (T, error) {
	setReplayed(replayed, false) // the callback may run more than once
	res, again, err := idempotency.Do(ctx, s.keys, key, string(op), hash, fn)
	setReplayed(replayed, again && err == nil)
	return res, err
}

// paramHash hashes an operation's parameters (see [idempotency.Hash]).
func paramHash(op opKind, parts ...any) string {
	return idempotency.Hash(append([]any{string(op)}, parts...)...)
}

// claim takes key for e on the single-document path. mine reports that
// this call wrote the claim; otherwise rec is the key's live record (of
// the same operation and parameters, else the error is
// ErrIdempotencyConflict).
func (s *Service) claim(ctx context.Context, key string, op opKind, hash string, e Entry) (rec idempotency.Record, mine bool, err error) {
	rec, err = s.keys.NewRecord(key, string(op), hash, e, true)
	if err != nil {
		return rec, false, err
	}
	return s.keys.Claim(ctx, rec, func(old idempotency.Record) bool {
		id, ok := old.Result.Lookup("_id").StringValueOK()
		return ok && id == e.ID // our own insert, resent by the driver
	})
}
