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
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/tx"
)

// Idempotency of the HTTP API has two layers. The Idempotency-Key header
// becomes the ledger's own idempotency key (credits.IdempotencyKey), so a
// repeat never moves money twice, whatever happens to the layer above. And
// the HTTP response is stored, keyed by (route, key), in the same
// transaction as the operation, so a repeat gets the identical response
// (status and body), and a different request under the same key gets 409
// idempotency_conflict. Two concurrent requests with the same key cannot
// both store: the loser's transaction conflicts, is retried, and replays.

const (
	idempotencyCollection = "http_idempotency"
	// idempotencyTTL is how long a response can be replayed. After it, a
	// repeat is answered by the ledger's own idempotency, not this store.
	idempotencyTTL = 24 * time.Hour
)

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

// storedResponse is a response in the store.
type storedResponse struct {
	ID          string    `bson:"_id"`
	Route       string    `bson:"route"`
	Key         string    `bson:"key"`
	RequestHash string    `bson:"request_hash"`
	Status      int       `bson:"status"`
	ContentType string    `bson:"content_type"`
	Body        []byte    `bson:"body"`
	CreatedAt   time.Time `bson:"created_at"`
}

// idempotencyStore stores and replays responses.
type idempotencyStore struct {
	coll   *mongo.Collection
	runner *tx.Runner
}

func newIdempotencyStore(db *mongo.Database, runner *tx.Runner) *idempotencyStore {
	return &idempotencyStore{coll: db.Collection(idempotencyCollection), runner: runner}
}

// ensureIndexes makes records expire after idempotencyTTL.
func (s *idempotencyStore) ensureIndexes(ctx context.Context) error {
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "created_at", Value: 1}},
		Options: options.Index().SetName("created_at_ttl").SetExpireAfterSeconds(int32(idempotencyTTL / time.Second)),
	})
	if err != nil {
		return fmt.Errorf("create index on %s: %w", idempotencyCollection, err)
	}
	return nil
}

// scopeOptions names a request's transaction and bounds it, commit
// included, by the request's deadline: a commit that cannot finish in the
// request's time ends with tx.ErrCommitUnknown, answered as
// outcome_unknown, instead of holding the request.
func scopeOptions(ctx context.Context, name string) []tx.Option {
	opts := []tx.Option{tx.WithName(name)}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, tx.WithTimeout(max(time.Until(dl), time.Millisecond)))
	}
	return opts
}

// operation performs a mutation in the transaction of ctx and returns the
// response. It may run more than once (transaction retries).
type operation func(ctx context.Context, key string) (status int, body any, err error)

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

// do runs op once per (route, key): the first time in one transaction with
// the storing of its response; afterwards it returns the stored response.
// Errors of op are returned and nothing is stored, so a failed request may
// be retried with the same key.
func (s *idempotencyStore) do(ctx context.Context, route, key, hash string, op operation) (storedResponse, bool, error) {
	id := route + "|" + key
	replayed := false
	rec, err := tx.Do(ctx, s.runner, func(ctx context.Context) (storedResponse, error) {
		replayed = false
		var prev storedResponse
		err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&prev)
		if err == nil {
			replayed = true
			return prev, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return storedResponse{}, err
		}
		status, v, err := op(ctx, key)
		if err != nil {
			return storedResponse{}, err
		}
		body, err := json.Marshal(v)
		if err != nil {
			return storedResponse{}, fmt.Errorf("marshal response: %w", err)
		}
		rec := storedResponse{
			ID: id, Route: route, Key: key, RequestHash: hash,
			Status: status, ContentType: "application/json", Body: body,
			CreatedAt: time.Now().UTC(),
		}
		if _, err := s.coll.InsertOne(ctx, rec); err != nil {
			return storedResponse{}, err
		}
		return rec, nil
	}, scopeOptions(ctx, "http.idempotent")...)
	if err != nil && mongo.IsDuplicateKeyError(err) {
		// A concurrent twin committed between our read and our insert.
		if ferr := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&rec); ferr == nil {
			err, replayed = nil, true
		}
	}
	if err != nil {
		return storedResponse{}, false, err
	}
	if replayed && rec.RequestHash != hash {
		return storedResponse{}, false, &apiError{Status: http.StatusConflict, Code: codeIdempotencyConflict,
			Detail: "this Idempotency-Key was already used for a different request on this route; use a new key for a new request"}
	}
	return rec, replayed, nil
}
