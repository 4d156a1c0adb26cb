// Package idempotency makes an operation exactly-once per idempotency key.
// It is the one mechanism behind every key in txkit: the credits ledger's
// (credits.IdempotencyKey) and the HTTP API's (the Idempotency-Key header).
//
// A key's [Record] names the operation that first used it, a hash of that
// operation's parameters and its result. The record's _id is the key, so
// the _id index (which every collection has, even one created implicitly
// after its database was dropped) makes a key recorded at most once; no
// index created at start is needed for correctness. Records expire through
// a TTL index on expiresAt once their retention has passed (until the TTL
// monitor deletes one, an expired record is treated as gone).
//
// Two ways to write a record:
//
//   - [Do], in a transaction: the record is written in the same
//     transaction as the operation's effect, so they commit together or
//     not at all and can never disagree. Concurrent first uses of one key
//     conflict; the runner re-runs the loser, which then replays.
//   - [Store.Claim], for a single-document write that runs without a
//     transaction: the record is written first, as a claim that names the
//     effect about to be applied (by an id), which the caller then applies
//     (at most once, by its own guard) and can later check for. A claim
//     says nothing about whether its effect was applied: it can land
//     after its caller gave up, so a later use that finds the effect
//     unapplied applies it (under the same id) as a first use.
//
// A repeat with the same operation and parameters returns the recorded
// result (replayed); with others it fails with the store's conflict error.
// A repeat whose first attempt ended with its outcome unknown either finds
// the record (it was applied) or applies it now: never twice.
package idempotency

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
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/schema"
	"github.com/txkit/txkit/tx"
)

// Errors a [Store] returns unless its [Config] names its own.
var (
	// ErrConflict: the key was first used for another operation or other
	// parameters. Nothing was applied.
	ErrConflict = errors.New("idempotency: key reused with different parameters")
	// ErrContended: a claim lost to concurrent writers of the key several
	// times in a row. Nothing was applied.
	ErrContended = errors.New("idempotency: key too contended; retry")
)

// Record is what a key remembers.
type Record struct {
	Key    string   `bson:"_id"`
	Op     string   `bson:"op"`
	Hash   string   `bson:"hash"`
	Result bson.Raw `bson:"result"`
	// Claimed marks a record written before its effect (see
	// [Store.Claim]): whether the effect is applied, and as what, is the
	// caller's to check. A record written by [Do] is never claimed: its
	// effect committed with it.
	Claimed   bool      `bson:"claimed,omitempty"`
	CreatedAt time.Time `bson:"createdAt"`
	ExpiresAt time.Time `bson:"expiresAt,omitempty"`
}

// Decode decodes the record's result into v.
func (r Record) Decode(v any) error {
	if err := bson.Unmarshal(r.Result, v); err != nil {
		return fmt.Errorf("decode result of key %q: %w", r.Key, err)
	}
	return nil
}

// expired reports whether the record's retention has passed.
func (r Record) expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now)
}

// Config configures a [Store].
type Config struct {
	// Retention is how long a key is remembered after its first use.
	Retention time.Duration
	// Now is the store's clock; time.Now when nil. Times are stored at
	// BSON's millisecond precision.
	Now func() time.Time
	// Conflict is wrapped by the error of a key reused with other
	// parameters; ErrConflict when nil.
	Conflict error
	// Contended is returned when a claim keeps losing to concurrent
	// writers; ErrContended when nil.
	Contended error
}

// Store keeps the records of one collection. It is safe for concurrent
// use.
type Store struct {
	coll   *mongo.Collection
	cfg    Config
	claims claimQueue // see insertClaim
}

// NewStore returns the store of the records in coll.
func NewStore(coll *mongo.Collection, cfg Config) *Store {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Conflict == nil {
		cfg.Conflict = ErrConflict
	}
	if cfg.Contended == nil {
		cfg.Contended = ErrContended
	}
	return &Store{coll: coll, cfg: cfg}
}

// EnsureSchema creates the collection (outside any transaction: MongoDB
// may refuse to create one inside) and the TTL index that deletes expired
// records. Only expiry depends on the index, never exactly-once.
func (s *Store) EnsureSchema(ctx context.Context) error {
	if err := schema.CreateCollection(ctx, s.coll.Database(), s.coll.Name()); err != nil {
		return fmt.Errorf("create collection %s: %w", s.coll.Name(), err)
	}
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "expiresAt", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(0),
	})
	if err != nil {
		return fmt.Errorf("create indexes on %s: %w", s.coll.Name(), err)
	}
	return nil
}

// Collection returns the collection of the store's records.
func (s *Store) Collection() *mongo.Collection { return s.coll }

func (s *Store) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// Read reads key's record, in the transaction in ctx if there is one.
// found is false when there is none or its retention has passed; an
// expired record is still returned (rec.Key is set), so that a new use can
// replace it.
func (s *Store) Read(ctx context.Context, key string) (rec Record, found bool, err error) {
	err = s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read idempotency key: %w", err)
	}
	return rec, !rec.expired(s.now()), nil
}

// Check returns nil if rec records op with hash, and the store's conflict
// error otherwise.
func (s *Store) Check(rec Record, op, hash string) error {
	if rec.Op != op || rec.Hash != hash {
		return fmt.Errorf("%w: key %q was first used for another %s", s.cfg.Conflict, rec.Key, rec.Op)
	}
	return nil
}

// NewRecord returns key's record of op with result res.
func (s *Store) NewRecord(key, op, hash string, res any, claimed bool) (Record, error) {
	raw, err := bson.Marshal(res)
	if err != nil {
		return Record{}, fmt.Errorf("encode result: %w", err)
	}
	now := s.now()
	return Record{Key: key, Op: op, Hash: hash, Result: raw, Claimed: claimed, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Retention)}, nil
}

// Put writes rec in the transaction in ctx; replace tells that an expired
// record of the key exists, which rec replaces.
func (s *Store) Put(ctx context.Context, rec Record, replace bool) error {
	var err error
	if replace {
		_, err = s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: rec.Key}}, rec)
	} else {
		_, err = s.coll.InsertOne(ctx, rec)
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

// Do runs fn, which must run in the transaction in ctx, at most once per
// key, and records its result (a struct or map: it is stored as a BSON
// document) with the key in that transaction. A repeat
// with the same op and hash returns the recorded result with replayed
// true; one with other parameters fails with the store's conflict error.
// Without a key it just runs fn. An error of fn records nothing: the key
// stays free for a retry. A claimed record (see [Store.Claim]) is not
// Do's to finish: it is returned as a conflict.
func Do[T any](ctx context.Context, s *Store, key, op, hash string, fn func(ctx context.Context) (T, error)) (res T, replayed bool, err error) {
	var zero T
	if key == "" {
		res, err = fn(ctx)
		return res, false, err
	}
	rec, found, err := s.Read(ctx, key)
	if err != nil {
		return zero, false, err
	}
	if found {
		if err := s.Check(rec, op, hash); err != nil {
			return zero, false, err
		}
		if rec.Claimed {
			return zero, false, fmt.Errorf("%w: key %q is claimed by a single-document %s", s.cfg.Conflict, key, rec.Op)
		}
		if err := rec.Decode(&res); err != nil {
			return zero, false, err
		}
		return res, true, nil
	}
	res, err = fn(ctx)
	if err != nil {
		return zero, false, err
	}
	nrec, err := s.NewRecord(key, op, hash, res, false)
	if err != nil {
		return zero, false, err
	}
	return res, false, s.Put(ctx, nrec, rec.Key != "")
}

// maxClaimTries bounds a claim's attempts against records deleted or
// replaced under it.
const maxClaimTries = 8

// Claim writes rec (made by [Store.NewRecord] with claimed true) outside
// any transaction, before its effect is applied. mine reports that the key
// is rec's: written by this call, or by an earlier send of it (resent
// reports, given the live record, whether it is rec resent by the
// driver). Otherwise got is the key's live record, of the same op and hash
// (else the error is the store's conflict error), whose effect the caller
// must look for, and apply if it is not applied: the call that claimed it
// may have failed, its claim written after it gave up. An expired record
// is replaced.
//
// Concurrent claims share one insert (see insertClaim): an error of the
// whole insert is every caller's, and a claim may then be written, as
// after any failed claim. A call whose ctx ends while its claim is queued
// returns ctx's error with nothing sent.
func (s *Store) Claim(ctx context.Context, rec Record, resent func(old Record) bool) (got Record, mine bool, err error) {
	doc, err := bson.Marshal(rec)
	if err != nil {
		return rec, false, fmt.Errorf("encode idempotency record: %w", err)
	}
	for range maxClaimTries {
		err := s.insertClaim(ctx, doc)
		if err == nil {
			return rec, true, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return rec, false, fmt.Errorf("record idempotency key: %w", err)
		}
		old, found, err := s.Read(ctx, rec.Key)
		switch {
		case err != nil:
			return rec, false, err
		case found:
			if err := s.Check(old, rec.Op, rec.Hash); err != nil {
				return old, false, err
			}
			if old.Claimed && resent(old) {
				return rec, true, nil
			}
			return old, false, nil
		case old.Key == "":
			continue // deleted meanwhile
		}
		// Expired: the key names a new operation now.
		res, err := s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: rec.Key}, {Key: "expiresAt", Value: old.ExpiresAt}}, rec)
		if err != nil {
			return rec, false, fmt.Errorf("record idempotency key: %w", err)
		}
		if res.MatchedCount == 1 {
			return rec, true, nil
		}
	}
	return rec, false, s.cfg.Contended
}

// Hash fingerprints an operation's parameters unambiguously: each part is
// length-prefixed. Parts are strings, []byte, int64 or time.Duration.
func Hash(parts ...any) string {
	h := sha256.New()
	var buf [8]byte
	for _, p := range parts {
		var b []byte
		switch v := p.(type) {
		case string:
			b = []byte(v)
		case []byte:
			b = v
		case int64:
			b = binary.BigEndian.AppendUint64(nil, uint64(v))
		case time.Duration:
			b = binary.BigEndian.AppendUint64(nil, uint64(v))
		default:
			panic(fmt.Sprintf("idempotency: Hash of %T", p))
		}
		binary.BigEndian.PutUint64(buf[:], uint64(len(b)))
		h.Write(buf[:])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
