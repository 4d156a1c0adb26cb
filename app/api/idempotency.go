package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/idempotency"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// Idempotency of the HTTP API is internal/idempotency's, the mechanism
// behind the ledger's own keys, and its keys live in the ledger's key
// space (credits.Service.IdempotencyKeys): the Idempotency-Key header
// becomes the key "http:<key>" of the operation it names, whatever the
// route, so one key names one request:
//
//   - credits, debits, transfers, holds and captures pass it to the ledger
//     (credits.IdempotencyKey): the ledger records it with the operation's
//     effect, and a repeat returns the recorded result (credits.Replayed),
//     which renders the identical response;
//   - releases and payments (operations without a ledger key) record it,
//     with the response, in the same collection and in the transaction of
//     the operation ([api.recorded]).
//
// Either way a record and its effect commit together, a repeat with the
// same request replays, and a repeat with another request (on any route)
// is idempotency_conflict. Records that earlier versions kept in
// http_idempotency are still replayed until they expire.

// legacyCollection held the HTTP keys of releases and payments before
// they moved to the ledger's key space; its records are read (replayed,
// or a conflict) until they expire.
const legacyCollection = "http_idempotency"

// HTTP headers of idempotent requests.
const (
	// HeaderIdempotencyKey names the request header every money-changing
	// route requires.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderReplayed is "true" on a response replayed for a repeated key.
	HeaderReplayed = "Idempotent-Replayed"
)

// validIdempotencyKey is what a key may look like: printable ASCII without
// spaces, up to 200 characters (a UUID, a ULID, "order-42/attempt-1" …).
var validIdempotencyKey = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)

// ledgerKey is the ledger idempotency key of an HTTP key. The prefix keeps
// clients' keys apart from those the modules use themselves (a payment's
// completion credits its account under a key of its own).
func ledgerKey(key string) string { return "http:" + key }

// recordedResponse is the result that http_idempotency records.
type recordedResponse struct {
	Status int    `bson:"status"`
	Body   []byte `bson:"body"`
}

// legacyResponse is a response stored, keyed by route and key, by the
// versions before internal/idempotency. It is replayed (or is a conflict)
// until it expires, 24 h after it was stored.
type legacyResponse struct {
	RequestHash string `bson:"request_hash"`
	Status      int    `bson:"status"`
	Body        []byte `bson:"body"`
}

// newResponseStore returns the store of the HTTP keys of releases and
// payments: the ledger's, so that their keys and the ledger routes' are
// one key space.
func newResponseStore(c *credits.Service) *idempotency.Store {
	coll, retention := c.IdempotencyKeys()
	return idempotency.NewStore(coll, idempotency.Config{Retention: retention})
}

// newLegacyStore returns the store of http_idempotency (see
// legacyCollection).
func newLegacyStore(db *mongo.Database) *idempotency.Store {
	return idempotency.NewStore(db.Collection(legacyCollection), idempotency.Config{Retention: credits.DefaultKeyRetention})
}

// scopeOptions names a request's transaction and bounds it, commit
// included, by the request's deadline: a commit that cannot finish in the
// request's time ends with tx.ErrCommitUnknown, answered as
// outcome_unknown, instead of holding the request.
func scopeOptions(ctx context.Context, name string) []tx.Option {
	return []tx.Option{tx.WithName(name), tx.WithDeadlineOf(ctx)}
}

// operation performs a mutation in the transaction of ctx and returns the
// response. It may run more than once (transaction retries).
type operation func(ctx context.Context) (status int, body any, err error)

// idempotencyKeyOf returns the request's Idempotency-Key, or the problem of
// a missing or malformed one.
func idempotencyKeyOf(r *http.Request) (string, error) {
	key := r.Header.Get(HeaderIdempotencyKey)
	if key == "" {
		return "", errBadRequest(codeMissingIdempotencyKey, "this request changes money and needs an Idempotency-Key header (e.g. a UUID), reused for its retries")
	}
	if !validIdempotencyKey.MatchString(key) {
		return "", errBadRequest(codeInvalidIdempotencyKey, "Idempotency-Key must be 1 to 200 printable ASCII characters without spaces")
	}
	return key, nil
}

// requestHash fingerprints what a request asks for: its path (which holds
// the account or id) and its decoded body, so that formatting does not
// matter but every parameter does.
func requestHash(path string, req any) string {
	b, _ := json.Marshal(req) // request types always marshal
	h := sha256.New()
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// recorded runs a money-moving request whose operation has no ledger
// key: Idempotency-Key required, the operation and its key's record (with
// the response) in one transaction bounded by the request, a repeat
// replayed.
func (a *api) recorded(w http.ResponseWriter, r *http.Request, req any, op operation) error {
	key, err := idempotencyKeyOf(r)
	if err != nil {
		return err
	}
	hash := requestHash(r.URL.Path, req)
	var replayed bool
	res, err := tx.Do(r.Context(), a.runner, func(ctx context.Context) (recordedResponse, error) {
		if res, found, err := a.legacyResponse(ctx, r.Pattern, key, hash); found || err != nil {
			replayed = true
			return res, err
		}
		if res, found, err := a.legacyRecord(ctx, r.Pattern, key, hash); found || err != nil {
			replayed = true
			return res, err
		}
		res, again, err := idempotency.Do(ctx, a.responses, ledgerKey(key), r.Pattern, hash, func(ctx context.Context) (recordedResponse, error) {
			status, v, err := op(ctx)
			if err != nil {
				return recordedResponse{}, err
			}
			body, err := json.Marshal(v)
			if err != nil {
				return recordedResponse{}, fmt.Errorf("marshal response: %w", err)
			}
			return recordedResponse{Status: status, Body: body}, nil
		})
		replayed = again
		return res, err
	}, scopeOptions(r.Context(), "http.idempotent")...)
	if err != nil {
		return err // the transaction's: nothing applied unless tx.ErrCommitUnknown
	}
	if replayed {
		w.Header().Set(HeaderReplayed, "true")
	}
	writeRaw(w, res.Status, "application/json", res.Body)
	return nil
}

// legacyResponse finds a response stored by an earlier version for the
// same route and key (see [legacyResponse]).
func (a *api) legacyResponse(ctx context.Context, route, key, hash string) (recordedResponse, bool, error) {
	var old legacyResponse
	err := a.legacy.Collection().FindOne(ctx, bson.D{{Key: "_id", Value: route + "|" + key}}).Decode(&old)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return recordedResponse{}, false, nil
	case err != nil:
		return recordedResponse{}, false, fmt.Errorf("read stored response: %w", err)
	case old.RequestHash != hash:
		return recordedResponse{}, true, fmt.Errorf("%w: key %q was first used for another request", idempotency.ErrConflict, key)
	}
	return recordedResponse{Status: old.Status, Body: old.Body}, true, nil
}

// legacyRecord finds the record of key that the version before the shared
// key space kept in http_idempotency (see legacyCollection).
func (a *api) legacyRecord(ctx context.Context, route, key, hash string) (recordedResponse, bool, error) {
	rec, found, err := a.legacy.Read(ctx, ledgerKey(key))
	if !found || err != nil {
		return recordedResponse{}, false, err
	}
	if err := a.legacy.Check(rec, route, hash); err != nil {
		return recordedResponse{}, true, err
	}
	var res recordedResponse
	return res, true, rec.Decode(&res)
}

// loadLegacyHorizon reads, once at start, until when a record of
// http_idempotency can be live: earlier versions wrote them, this one does
// not, so after that instant the ledger routes need not look there (see
// refuseLegacyKey).
func (a *api) loadLegacyHorizon(ctx context.Context) error {
	cur, err := a.legacy.Collection().Aggregate(ctx, mongo.Pipeline{{{Key: "$group", Value: bson.D{
		{Key: "_id", Value: nil},
		{Key: "expires", Value: bson.D{{Key: "$max", Value: "$expiresAt"}}},
		{Key: "created", Value: bson.D{{Key: "$max", Value: "$created_at"}}},
	}}}})
	if err != nil {
		return fmt.Errorf("read %s: %w", legacyCollection, err)
	}
	var got []struct {
		Expires time.Time `bson:"expires"`
		Created time.Time `bson:"created"`
	}
	if err := cur.All(ctx, &got); err != nil {
		return fmt.Errorf("read %s: %w", legacyCollection, err)
	}
	if len(got) == 1 {
		until := max(got[0].Expires.UnixNano(), got[0].Created.Add(credits.DefaultKeyRetention).UnixNano())
		a.legacyUntil.Store(until)
	}
	return nil
}

// refuseLegacyKey answers idempotency_conflict for a ledger route whose key
// an earlier version recorded in http_idempotency: it names a release or
// payment (or a response the ledger routes no longer replay), not this
// request. Only while such a record can be live.
func (a *api) refuseLegacyKey(ctx context.Context, key string) error {
	if time.Now().UnixNano() >= a.legacyUntil.Load() {
		return nil
	}
	if _, found, err := a.legacy.Read(ctx, ledgerKey(key)); err != nil || found {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: key %q was first used for another request", idempotency.ErrConflict, key)
	}
	var old struct {
		Created time.Time `bson:"created_at"`
	}
	err := a.legacy.Collection().FindOne(ctx, bson.D{{Key: "key", Value: key}}).Decode(&old)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil
	case err != nil:
		return fmt.Errorf("read stored response: %w", err)
	case time.Since(old.Created) < credits.DefaultKeyRetention:
		return fmt.Errorf("%w: key %q was first used for another request", idempotency.ErrConflict, key)
	}
	return nil
}

// ledgerOp runs a ledger operation that takes the request's key in a
// transaction bounded by the request (so that its commit is too), and
// writes its response; replayed is set by the operation
// (credits.Replayed).
func ledgerOp[T any](a *api, w http.ResponseWriter, r *http.Request, status int, op func(ctx context.Context, key credits.OpOption, replayed *bool) (T, error), view func(T) any) error {
	key, err := idempotencyKeyOf(r)
	if err != nil {
		return err
	}
	if err := a.refuseLegacyKey(r.Context(), key); err != nil {
		return err
	}
	var replayed bool
	res, err := tx.Do(r.Context(), a.runner, func(ctx context.Context) (T, error) {
		return op(ctx, credits.IdempotencyKey(ledgerKey(key)), &replayed)
	}, scopeOptions(r.Context(), "http.idempotent")...)
	if err != nil {
		return err // the transaction's: nothing applied unless tx.ErrCommitUnknown
	}
	if replayed {
		w.Header().Set(HeaderReplayed, "true")
	}
	writeJSON(w, status, view(res))
	return nil
}
