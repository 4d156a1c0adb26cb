package credits

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

// idemRecord remembers a keyed mutation: which operation, a hash of its
// parameters and its result. A transaction writes it together with the
// mutation's effect. The single-document path writes it first, as a
// claim (Claimed): the key is then taken before anything is applied, and
// the operation is applied exactly when the claimed entry is (embedded in
// its account document or copied out to the entries collection). Either
// way a key is never in neither place. Records are deleted by a TTL index
// on ExpiresAt once the key's retention has passed.
type idemRecord struct {
	Key       string    `bson:"_id"`
	Op        opKind    `bson:"op"`
	Hash      string    `bson:"hash"`
	Result    bson.Raw  `bson:"result"`
	Claimed   bool      `bson:"claimed,omitempty"`
	CreatedAt time.Time `bson:"createdAt"`
	ExpiresAt time.Time `bson:"expiresAt,omitempty"`
}

// expired reports whether the record's retention has passed (the TTL
// monitor deletes it some time later; until then it is treated as gone).
func (r idemRecord) expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now)
}

func (r idemRecord) check(key string, op opKind, hash string) error {
	if r.Op != op || r.Hash != hash {
		return fmt.Errorf("%w: key %q was first used for another %s", ErrIdempotencyConflict, key, r.Op)
	}
	return nil
}

// paramHash hashes an operation's parameters unambiguously (each part is
// length-prefixed).
func paramHash(parts ...any) string {
	h := sha256.New()
	var buf [8]byte
	for _, p := range parts {
		var b []byte
		switch v := p.(type) {
		case string:
			b = []byte(v)
		case opKind:
			b = []byte(v)
		case int64:
			b = binary.BigEndian.AppendUint64(nil, uint64(v))
		case time.Duration:
			b = binary.BigEndian.AppendUint64(nil, uint64(v))
		default:
			panic(fmt.Sprintf("credits: paramHash of %T", p))
		}
		binary.BigEndian.PutUint64(buf[:], uint64(len(b)))
		h.Write(buf[:])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readKey reads key's record; found is false if there is none or its
// retention has passed.
func (s *Service) readKey(ctx context.Context, key string) (rec idemRecord, found bool, err error) {
	err = s.idem.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read idempotency key: %w", err)
	}
	return rec, !rec.expired(s.now()), nil
}

// newRecord returns key's record of an operation with result res.
func (s *Service) newRecord(key string, op opKind, hash string, res any, claimed bool) (idemRecord, error) {
	raw, err := bson.Marshal(res)
	if err != nil {
		return idemRecord{}, fmt.Errorf("encode result: %w", err)
	}
	now := s.now()
	return idemRecord{Key: key, Op: op, Hash: hash, Result: raw, Claimed: claimed, CreatedAt: now, ExpiresAt: now.Add(s.cfg.keyRetention)}, nil
}

// putRecord writes rec in the transaction in ctx; expired tells that an
// expired record of the key exists, which rec replaces.
func (s *Service) putRecord(ctx context.Context, rec idemRecord, expired bool) error {
	var err error
	if expired {
		_, err = s.idem.ReplaceOne(ctx, bson.D{{Key: "_id", Value: rec.Key}}, rec)
	} else {
		_, err = s.idem.InsertOne(ctx, rec)
	}
	if mongo.IsDuplicateKeyError(err) {
		// Another transaction recorded the key after our snapshot began.
		// MongoDB reports that as a WriteConflict, which is retried; if a
		// server says DuplicateKey instead, ask for the same retry, which
		// then finds the record.
		return tx.Retryable(fmt.Errorf("idempotency key %q recorded concurrently: %w", rec.Key, err))
	}
	if err != nil {
		return fmt.Errorf("record idempotency key: %w", err)
	}
	return nil
}

// idempotent runs fn, which must run in the transaction in ctx, at most
// once per key: a repeat with the same op and hash returns the recorded
// result, one with other parameters fails with ErrIdempotencyConflict.
// Without a key it just runs fn.
func idempotent[T any](ctx context.Context, s *Service, key string, op opKind, hash string, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if key == "" {
		return fn(ctx)
	}
	rec, found, err := s.readKey(ctx, key)
	if err != nil {
		return zero, err
	}
	if found {
		if err := rec.check(key, op, hash); err != nil {
			return zero, err
		}
		var res T
		if err := bson.Unmarshal(rec.Result, &res); err != nil {
			return zero, fmt.Errorf("decode result of key %q: %w", key, err)
		}
		return res, nil
	}
	res, err := fn(ctx)
	if err != nil {
		return zero, err
	}
	nrec, err := s.newRecord(key, op, hash, res, false)
	if err != nil {
		return zero, err
	}
	return res, s.putRecord(ctx, nrec, rec.Key != "")
}

// claim takes key for e on the single-document path. mine reports that
// this call wrote the claim; otherwise rec is the key's live record (of
// the same operation and parameters, else the error is
// ErrIdempotencyConflict).
func (s *Service) claim(ctx context.Context, key string, op opKind, hash string, e Entry) (rec idemRecord, mine bool, err error) {
	rec, err = s.newRecord(key, op, hash, e, true)
	if err != nil {
		return rec, false, err
	}
	for range maxTries {
		_, err := s.idem.InsertOne(ctx, rec)
		if err == nil {
			return rec, true, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return rec, false, fmt.Errorf("record idempotency key: %w", err)
		}
		old, found, err := s.readKey(ctx, key)
		switch {
		case err != nil:
			return rec, false, err
		case found && old.Claimed && old.Result.Lookup("_id").StringValue() == e.ID:
			return rec, true, nil // our own insert, resent by the driver
		case found:
			return old, false, old.check(key, op, hash)
		case old.Key == "":
			continue // deleted meanwhile
		}
		// Expired: the key names a new operation now.
		res, err := s.idem.ReplaceOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "expiresAt", Value: old.ExpiresAt}}, rec)
		if err != nil {
			return rec, false, fmt.Errorf("record idempotency key: %w", err)
		}
		if res.MatchedCount == 1 {
			return rec, true, nil
		}
	}
	return rec, false, ErrContended
}
