package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/schema"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

// Payment webhooks: a provider reports the outcome of a payment. The
// request is authenticated by an HMAC of its raw body (there is no bearer
// token), checked before the body is parsed; an event is processed once
// per event id: its id is recorded in the same transaction as the payment
// transition, so a redelivery finds it and changes nothing.

// HeaderSignature names the header that authenticates a payment webhook:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">" (see [SignWebhook]).
const HeaderSignature = "Txkit-Signature"

const (
	webhookCollection = "webhook_events"
	// signatureTolerance is how far a signature's timestamp may be from
	// now: a captured request cannot be replayed after it.
	signatureTolerance = 300 * time.Second

	eventPaymentSucceeded = "payment.succeeded"
	eventPaymentFailed    = "payment.failed"
)

// webhookEvent is the body of a webhook.
type webhookEvent struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Provider    string `json:"provider"`
	ProviderRef string `json:"provider_ref"`
	Reason      string `json:"reason,omitempty"`
}

// webhookResult is the answer to a webhook: processed the first time,
// duplicate for a redelivery, ignored for an event that no longer applies
// (e.g. payment.failed for a payment already completed).
type webhookResult struct {
	ID      string       `json:"id"`
	Status  string       `json:"status"`
	Payment *paymentJSON `json:"payment,omitempty"`
	Detail  string       `json:"detail,omitempty"`
}

// eventRecord is a processed event.
type eventRecord struct {
	ID          string    `bson:"_id"` // eventKey: provider/id
	EventID     string    `bson:"event_id"`
	Type        string    `bson:"type"`
	Provider    string    `bson:"provider"`
	ProviderRef string    `bson:"provider_ref"`
	PaymentID   string    `bson:"payment_id"`
	ReceivedAt  time.Time `bson:"received_at"`
}

type webhookStore struct {
	coll     *mongo.Collection
	runner   *tx.Runner
	payments *payments.Service
	secret   []byte
	now      func() time.Time
}

func newWebhookStore(db *mongo.Database, runner *tx.Runner, p *payments.Service, secret string) *webhookStore {
	return &webhookStore{coll: db.Collection(webhookCollection), runner: runner, payments: p, secret: []byte(secret), now: time.Now}
}

// ensureIndexes creates the collection up front (MongoDB may refuse to
// create one inside a transaction). Its unique index is _id: the event id.
func (s *webhookStore) ensureIndexes(ctx context.Context) error {
	if err := schema.CreateCollection(ctx, s.coll.Database(), webhookCollection); err != nil {
		return fmt.Errorf("create collection %s: %w", webhookCollection, err)
	}
	return nil
}

// SignWebhook returns the [HeaderSignature] value of a webhook body sent at
// t, signed with secret: what a payment provider (or a test) sends.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// verify checks header against body: one of its v1 signatures must be the
// HMAC of "<t>.<body>" and t within signatureTolerance of now. Several v1
// values are allowed so that a provider can sign with two secrets while
// they are rotated.
func (s *webhookStore) verify(header string, body []byte) error {
	bad := func(detail string) error {
		return &apiError{Status: http.StatusUnauthorized, Code: codeBadSignature, Detail: detail}
	}
	if header == "" {
		return bad("missing " + HeaderSignature + " header")
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil && len(sig) == sha256.Size {
				sigs = append(sigs, sig)
			}
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return bad(HeaderSignature + " must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
	}
	want := mac(s.secret, ts, body)
	ok := false
	for _, sig := range sigs {
		ok = hmac.Equal(sig, want) || ok // no early exit: constant time over the list
	}
	if !ok {
		return bad("signature does not match the body")
	}
	// Checked after the MAC, so that a forger learns nothing about the
	// clock; a valid but old signature is a replay.
	if d := s.now().Sub(time.Unix(t, 0)); d > signatureTolerance || d < -signatureTolerance {
		return &apiError{Status: http.StatusUnauthorized, Code: codeStaleSignature,
			Detail: fmt.Sprintf("signature timestamp is more than %v away from the server's clock", signatureTolerance)}
	}
	return nil
}

func (a *api) webhook(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge, Detail: fmt.Sprintf("request body is larger than %d bytes", maxBody)}
		}
		return errBadRequest(codeBadRequest, "cannot read request body")
	}
	if err := a.webhooks.verify(r.Header.Get(HeaderSignature), body); err != nil {
		return err
	}
	var ev webhookEvent
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := decodeJSON(w, r, &ev, false); err != nil {
		return err
	}
	switch {
	case !validID.MatchString(ev.ID):
		return invalidID("id")
	case !validID.MatchString(ev.Provider):
		return invalidID("provider")
	case !validID.MatchString(ev.ProviderRef):
		return invalidID("provider_ref")
	case ev.Type != eventPaymentSucceeded && ev.Type != eventPaymentFailed:
		return errBadRequest(codeBadRequest, "type must be "+eventPaymentSucceeded+" or "+eventPaymentFailed)
	}
	if err := checkReason(ev.Reason); err != nil {
		return err
	}
	res, err := a.webhooks.process(r.Context(), ev)
	if err != nil {
		return err // the transaction's: nothing applied unless tx.ErrCommitUnknown
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// process applies ev once: the event record and the payment transition
// commit together or not at all. Events are recorded per provider, and a
// repeat must be the same event: an id reused for different contents is a
// conflict, never silently taken for a redelivery.
func (s *webhookStore) process(ctx context.Context, ev webhookEvent) (webhookResult, error) {
	key := eventKey(ev)
	duplicate := webhookResult{ID: ev.ID, Status: "duplicate", Detail: "event already processed; nothing changed"}
	res, err := tx.Do(ctx, s.runner, func(ctx context.Context) (webhookResult, error) {
		var prev eventRecord
		err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&prev)
		if err == nil {
			if !prev.sameEvent(ev) {
				return webhookResult{}, errEventConflict
			}
			return duplicate, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return webhookResult{}, err
		}
		var p payments.Payment
		if ev.Type == eventPaymentSucceeded {
			p, err = s.payments.CompleteByRef(ctx, ev.Provider, ev.ProviderRef)
		} else {
			reason := ev.Reason
			if reason == "" {
				reason = "provider reported failure"
			}
			p, err = s.payments.FailByRef(ctx, ev.Provider, ev.ProviderRef, reason)
		}
		if err != nil {
			return webhookResult{}, err
		}
		_, err = s.coll.InsertOne(ctx, eventRecord{
			ID: key, EventID: ev.ID, Type: ev.Type, Provider: ev.Provider, ProviderRef: ev.ProviderRef,
			PaymentID: p.ID, ReceivedAt: s.now().UTC(),
		})
		if err != nil {
			return webhookResult{}, err
		}
		v := paymentView(p)
		return webhookResult{ID: ev.ID, Status: "processed", Payment: &v}, nil
	}, scopeOptions(ctx, "webhook.payment")...)
	switch {
	case err == nil:
		return res, nil
	case mongo.IsDuplicateKeyError(err):
		// A concurrent delivery may have committed first: only the same
		// event recorded under this key makes this one a redelivery.
		var prev eventRecord
		if ferr := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&prev); ferr == nil {
			if prev.sameEvent(ev) {
				return duplicate, nil
			}
			return webhookResult{}, errEventConflict
		}
	case errors.Is(err, payments.ErrInvalidTransition):
		// The payment is past this event (a failure reported after the
		// payment completed, or a success after its refund). Retrying
		// cannot help, so answer 200 and let the provider stop redelivering.
		return webhookResult{ID: ev.ID, Status: "ignored", Detail: "the payment's status does not allow this event; nothing changed"}, nil
	}
	return webhookResult{}, err
}

// errEventConflict answers an event id that was already used, by the same
// provider, for a different event.
var errEventConflict = &apiError{Status: http.StatusConflict, Code: codeEventConflict, Detail: "this event id was already used by this provider for a different event"}

// eventKey records events per provider: ids are unique only within one.
// "/" cannot appear in a valid id, so keys never collide.
func eventKey(ev webhookEvent) string { return ev.Provider + "/" + ev.ID }

// sameEvent reports whether the recorded event is ev again.
func (r eventRecord) sameEvent(ev webhookEvent) bool {
	return r.Type == ev.Type && r.Provider == ev.Provider && r.ProviderRef == ev.ProviderRef
}
