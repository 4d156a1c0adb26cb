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
)

// idemRecord remembers a keyed mutation: which operation, a hash of its
// parameters and its result. It is written in the same transaction as the
// mutation's effect, so the two exist together or not at all.
type idemRecord struct {
	Key       string    `bson:"_id"`
	Op        string    `bson:"op"`
	Hash      string    `bson:"hash"`
	Result    bson.Raw  `bson:"result"`
	CreatedAt time.Time `bson:"createdAt"`
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

// idempotent runs fn, which must run in the transaction in ctx, at most
// once per key: a repeat with the same op and hash returns the recorded
// result, one with other parameters fails with ErrIdempotencyConflict.
// Without a key it just runs fn.
func idempotent[T any](ctx context.Context, s *Service, key, op, hash string, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if key == "" {
		return fn(ctx)
	}
	var rec idemRecord
	err := s.idem.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&rec)
	switch {
	case err == nil:
		if rec.Op != op || rec.Hash != hash {
			return zero, fmt.Errorf("%w: key %q was first used for another %s", ErrIdempotencyConflict, key, rec.Op)
		}
		var res T
		if err := bson.Unmarshal(rec.Result, &res); err != nil {
			return zero, fmt.Errorf("credits: decode result of key %q: %w", key, err)
		}
		return res, nil
	case !errors.Is(err, mongo.ErrNoDocuments):
		return zero, fmt.Errorf("credits: read idempotency key: %w", err)
	}
	res, err := fn(ctx)
	if err != nil {
		return zero, err
	}
	raw, err := bson.Marshal(res)
	if err != nil {
		return zero, fmt.Errorf("credits: encode result: %w", err)
	}
	_, err = s.idem.InsertOne(ctx, idemRecord{Key: key, Op: op, Hash: hash, Result: raw, CreatedAt: s.now()})
	if mongo.IsDuplicateKeyError(err) {
		// Another transaction recorded the key after our snapshot began.
		// MongoDB reports that as a WriteConflict, which is retried; if a
		// server says DuplicateKey instead, ask for the same retry, which
		// then finds the record.
		return zero, transientError{fmt.Errorf("credits: idempotency key %q recorded concurrently: %w", key, err)}
	}
	if err != nil {
		return zero, fmt.Errorf("credits: record idempotency key: %w", err)
	}
	return res, nil
}

// transientError labels err TransientTransactionError, so that the
// transaction runner re-runs the whole transaction.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// HasErrorLabel implements mongo.LabeledError.
func (e transientError) HasErrorLabel(label string) bool {
	return label == "TransientTransactionError"
}
