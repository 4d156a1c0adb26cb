// Package payments is the payment state machine: a payment is created
// pending, then completed (which credits the account, in the same
// transaction), failed, or — once completed — refunded (which takes the
// credits back, in the same transaction).
//
//	pending ──Complete──▶ completed ──Refund──▶ refunded
//	   │
//	   └──────Fail──────▶ failed
//
// Every transition is a guarded write whose filter names the state it
// leaves, so two concurrent transitions cannot both apply; a transition
// to the state a payment is already in returns it unchanged (webhooks
// arrive more than once, and concurrently). Credits move through package
// credits with an idempotency key derived from the payment id, in the
// transaction of the transition: the payment's state and the ledger change
// together or not at all.
package payments

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/schema"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// Status is a payment's state.
type Status string

// The states of a payment.
const (
	StatusPending   Status = "pending"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusRefunded  Status = "refunded"
)

// Errors, matched with errors.Is. Credit errors (such as
// credits.ErrInsufficientCredits from Refund) come wrapped as they are.
var (
	ErrPaymentNotFound      = errors.New("payments: payment not found")
	ErrInvalidTransition    = errors.New("payments: invalid status transition")
	ErrDuplicateProviderRef = errors.New("payments: provider reference already used")
	ErrInvalidPayment       = errors.New("payments: invalid payment")
	// ErrDuplicatePayments is returned by [Service.EnsureSchema] when the
	// stored payments use one provider reference more than once (written
	// while the database had lost its indexes, by an older version): the
	// error names them, and docs/payments.md says how to resolve them.
	ErrDuplicatePayments = errors.New("payments: stored payments share a provider reference")
	// ErrOutcomeUnknown is credits.ErrOutcomeUnknown: a write was sent and
	// whether it applied could not be learned. A Create may be retried
	// with the same provider reference (a duplicate then means it was
	// created: look it up with GetPayment or the provider's reference).
	ErrOutcomeUnknown = credits.ErrOutcomeUnknown
)

// Payment is a purchase of credits.
type Payment struct {
	ID            string    `bson:"_id"`
	Account       string    `bson:"account"`
	AmountMinor   int64     `bson:"amountMinor"` // in the currency's minor unit
	Currency      string    `bson:"currency"`    // ISO 4217, e.g. "EUR"
	Credits       int64     `bson:"credits"`
	Provider      string    `bson:"provider"`
	ProviderRef   string    `bson:"providerRef"`
	Status        Status    `bson:"status"`
	FailureReason string    `bson:"failureReason,omitempty"`
	CreditEntryID string    `bson:"creditEntryId,omitempty"`
	RefundEntryID string    `bson:"refundEntryId,omitempty"`
	CreatedAt     time.Time `bson:"createdAt"`
	UpdatedAt     time.Time `bson:"updatedAt"`
}

// NewPayment describes a payment to create.
type NewPayment struct {
	Account     string
	AmountMinor int64
	Currency    string
	Credits     int64
	Provider    string
	ProviderRef string
}

// ListQuery selects a page of an account's payments, newest first.
type ListQuery struct {
	Status Status // all when empty
	Limit  int    // 50 when zero, at most 1000
	Cursor string // from the previous page
}

// An Option configures a [Service]; pass options to [NewService], or to
// the Service that [Module] provides with [Defaults].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	now    func() time.Time
	prefix string
	name   string // the collection's name after the prefix
}

func defaultConfig() config {
	return config{now: time.Now, name: "payments"}
}

// WithClock sets the clock that stamps payments; time.Now by default.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}

// WithCollectionPrefix sets the prefix of the payments collection's name
// (none by default: "payments"), as credits.WithCollectionPrefix does for
// the ledger's collections.
func WithCollectionPrefix(p string) Option {
	return optionFunc(func(c *config) { c.prefix = p })
}

// WithCollection sets the payments collection's whole name ("payments").
//
// Deprecated: use [WithCollectionPrefix], named like the credits option.
func WithCollection(name string) Option {
	return optionFunc(func(c *config) { c.prefix, c.name = "", name })
}

// Service runs the payment state machine. It is safe for concurrent use.
type Service struct {
	db       *mongo.Database
	runner   *tx.Runner
	credits  *credits.Service
	coll     *mongo.Collection
	refs     *mongo.Collection // one refGuard per provider reference
	collName string
	now      func() time.Time
}

// refGuard takes a provider reference for one payment. Its _id is the
// reference itself, so the _id index, which every collection has (even
// one created implicitly after the database was dropped), refuses a
// second guard: a duplicate never depends on an index created at start.
// Create writes it in the payment's transaction.
type refGuard struct {
	ID        string    `bson:"_id"` // refKey(provider, ref)
	Payment   string    `bson:"payment"`
	CreatedAt time.Time `bson:"createdAt"`
}

// refKey is a guard's _id. Neither a provider nor a reference may contain
// "/", so two pairs never share a key.
func refKey(provider, ref string) string { return provider + "/" + ref }

// optionList applies several options as one.
type optionList []Option

func (l optionList) apply(c *config) {
	for _, o := range l {
		if o != nil {
			o.apply(c)
		}
	}
}

// NewService returns a Service storing payments in db, running its
// transactions with r and crediting through c. Call
// [Service.EnsureSchema] once before use ([Module] does).
func NewService(db *mongo.Database, r *tx.Runner, c *credits.Service, opts ...Option) *Service {
	cfg := defaultConfig()
	optionList(opts).apply(&cfg)
	s := &Service{db: db, runner: r, credits: c, collName: cfg.prefix + cfg.name, now: cfg.now}
	s.coll = db.Collection(s.collName)
	s.refs = db.Collection(s.collName + "_refs")
	return s
}

// EnsureSchema creates the payments collections and their indexes; it is
// idempotent. Stored payments that share a provider reference make it
// fail with [ErrDuplicatePayments], naming them.
func (s *Service) EnsureSchema(ctx context.Context) error {
	for _, name := range []string{s.collName, s.refs.Name()} {
		if err := schema.CreateCollection(ctx, s.db, name); err != nil {
			return fmt.Errorf("payments: create collection %s: %w", name, err)
		}
	}
	// The unique index is a second line (and what makes payments stored
	// before guards existed unique); the guard is the first.
	_, err := s.coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "provider", Value: 1}, {Key: "providerRef", Value: 1}}, Options: options.Index().SetUnique(true)},
		{Keys: bson.D{{Key: "account", Value: 1}, {Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}},
	})
	if mongo.IsDuplicateKeyError(err) {
		return s.duplicatesError(ctx, err)
	}
	if err != nil {
		return fmt.Errorf("payments: create indexes: %w", err)
	}
	if err := s.guardOldPayments(ctx); err != nil {
		return fmt.Errorf("payments: guard stored references: %w", err)
	}
	return nil
}

// guardsDone marks, in the guards' collection, that every payment stored
// before guards existed has its guard. "!" is in no provider, so the
// marker is no guard's _id. After a database is replaced, the marker goes
// with the payments, and the next start's pass is over an empty
// collection.
const guardsDone = "!guarded"

// guardOldPayments writes the guards of payments stored before guards
// existed, once per database: each start until it has finished (a guard
// written twice is a duplicate, ignored). A payment stored without a
// guard since then, by an older version still running, is refused by the
// unique index as before.
func (s *Service) guardOldPayments(ctx context.Context) error {
	n, err := s.refs.CountDocuments(ctx, bson.D{{Key: "_id", Value: guardsDone}})
	if err != nil || n > 0 {
		return err
	}
	cur, err := s.coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{
		{Key: "provider", Value: 1}, {Key: "providerRef", Value: 1}, {Key: "createdAt", Value: 1},
	}))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	const batch = 500
	var guards []any
	flush := func() error {
		if len(guards) == 0 {
			return nil
		}
		_, err := s.refs.InsertMany(ctx, guards, options.InsertMany().SetOrdered(false))
		guards = guards[:0]
		if we, ok := errors.AsType[mongo.BulkWriteException](err); ok && we.WriteConcernError == nil &&
			!slices.ContainsFunc(we.WriteErrors, func(e mongo.BulkWriteError) bool { return e.Code != codeDuplicateKey }) {
			return nil // guarded already
		}
		return err
	}
	for cur.Next(ctx) {
		var p Payment
		if err := cur.Decode(&p); err != nil {
			return err
		}
		guards = append(guards, refGuard{ID: refKey(p.Provider, p.ProviderRef), Payment: p.ID, CreatedAt: p.CreatedAt})
		if len(guards) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	_, err = s.refs.InsertOne(ctx, bson.D{{Key: "_id", Value: guardsDone}, {Key: "at", Value: s.clock()}})
	if mongo.IsDuplicateKeyError(err) {
		return nil // another instance finished first
	}
	return err
}

// codeDuplicateKey is MongoDB's E11000.
const codeDuplicateKey = 11000

// maxDuplicatesNamed bounds the duplicated references an error lists.
const maxDuplicatesNamed = 10

// duplicatesError explains a unique index that could not be built: which
// references are used more than once, by which payments, and what to do.
func (s *Service) duplicatesError(ctx context.Context, buildErr error) error {
	cur, err := s.coll.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "provider", Value: "$provider"}, {Key: "ref", Value: "$providerRef"}}},
			{Key: "ids", Value: bson.D{{Key: "$push", Value: "$_id"}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
		}}},
		{{Key: "$match", Value: bson.D{{Key: "n", Value: bson.D{{Key: "$gt", Value: 1}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id.provider", Value: 1}, {Key: "_id.ref", Value: 1}}}},
		{{Key: "$limit", Value: maxDuplicatesNamed}},
	})
	var dups []struct {
		ID struct {
			Provider string `bson:"provider"`
			Ref      string `bson:"ref"`
		} `bson:"_id"`
		IDs []string `bson:"ids"`
	}
	if err == nil {
		err = cur.All(ctx, &dups)
	}
	if err != nil || len(dups) == 0 {
		// Cannot say which: still say what it means.
		return fmt.Errorf("payments: create indexes: %w in collection %q (%w); find them as docs/payments.md shows, keep one payment per reference, then start again",
			ErrDuplicatePayments, s.collName, errors.Join(buildErr, err))
	}
	names := make([]string, len(dups))
	for i, d := range dups {
		slices.Sort(d.IDs)
		names[i] = fmt.Sprintf("%s/%s (payments %s)", d.ID.Provider, d.ID.Ref, strings.Join(d.IDs, ", "))
	}
	more := ""
	if len(dups) == maxDuplicatesNamed {
		more = " and maybe more"
	}
	return fmt.Errorf("payments: create indexes: %w in collection %q: %s%s. "+
		"They were written while the database had lost its unique index. Keep one payment per provider reference "+
		"and move the others out of the collection (see \"Duplicate provider references\" in docs/payments.md), then start again",
		ErrDuplicatePayments, s.collName, strings.Join(names, "; "), more)
}

var (
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
	refPattern      = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	providerPattern = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)
)

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Create records a pending payment. (Provider, ProviderRef) is unique:
// a second payment with the same pair fails with [ErrDuplicateProviderRef].
// The payment and the guard of its reference are written in one
// transaction (the caller's, or one of its own), so uniqueness holds even
// on a database that lost its indexes.
func (s *Service) Create(ctx context.Context, p NewPayment) (Payment, error) {
	if err := validate(p); err != nil {
		return Payment{}, fmt.Errorf("payments: create: %w", err)
	}
	now := s.clock()
	pay := Payment{
		ID: bson.NewObjectID().Hex(), Account: p.Account, AmountMinor: p.AmountMinor, Currency: p.Currency,
		Credits: p.Credits, Provider: p.Provider, ProviderRef: p.ProviderRef, Status: StatusPending,
		CreatedAt: now, UpdatedAt: now,
	}
	got, err := tx.Do(ctx, s.runner, func(ctx context.Context) (Payment, error) {
		return pay, s.insert(ctx, pay)
	}, tx.WithName("payments.Create"))
	if errors.Is(err, tx.ErrCommitUnknown) {
		// The commit's outcome was not learned; the payment's id is known,
		// so look.
		if got, gerr := s.get(context.WithoutCancel(ctx), pay.ID); gerr == nil {
			return got, nil
		}
		return Payment{}, fmt.Errorf("payments: create: %w: %w", ErrOutcomeUnknown, err)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("payments: create: %w", err)
	}
	return got, nil
}

// insert writes pay and its reference's guard in the transaction in ctx.
func (s *Service) insert(ctx context.Context, pay Payment) error {
	dup := fmt.Errorf("%w: %s/%s", ErrDuplicateProviderRef, pay.Provider, pay.ProviderRef)
	// Payments stored before guards existed got theirs at start (see
	// guardOldPayments); one stored since by an older version still
	// running is refused by the unique index.
	_, err := s.refs.InsertOne(ctx, refGuard{ID: refKey(pay.Provider, pay.ProviderRef), Payment: pay.ID, CreatedAt: pay.CreatedAt})
	if mongo.IsDuplicateKeyError(err) {
		return dup
	}
	if err != nil {
		return fmt.Errorf("record provider reference: %w", err)
	}
	_, err = s.coll.InsertOne(ctx, pay)
	if mongo.IsDuplicateKeyError(err) {
		return dup
	}
	if err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

func validate(p NewPayment) error {
	switch {
	case credits.ValidateAccount(p.Account) != nil:
		return fmt.Errorf("%w: %w", ErrInvalidPayment, credits.ValidateAccount(p.Account))
	case p.AmountMinor <= 0:
		return fmt.Errorf("%w: amount %d is not positive", ErrInvalidPayment, p.AmountMinor)
	case p.Credits <= 0:
		return fmt.Errorf("%w: credits %d is not positive", ErrInvalidPayment, p.Credits)
	case !currencyPattern.MatchString(p.Currency):
		return fmt.Errorf("%w: currency %.20q is not an ISO 4217 code", ErrInvalidPayment, p.Currency)
	case !providerPattern.MatchString(p.Provider):
		return fmt.Errorf("%w: provider %.70q must match %s", ErrInvalidPayment, p.Provider, providerPattern)
	case !refPattern.MatchString(p.ProviderRef):
		return fmt.Errorf("%w: provider reference %.140q must match %s", ErrInvalidPayment, p.ProviderRef, refPattern)
	}
	return nil
}

// Get returns a payment.
//
// Deprecated: use [Service.GetPayment], named like credits' GetHold.
func (s *Service) Get(ctx context.Context, id string) (Payment, error) {
	return s.GetPayment(ctx, id)
}

// GetPayment returns a payment.
func (s *Service) GetPayment(ctx context.Context, id string) (Payment, error) {
	p, err := s.get(ctx, id)
	if err != nil {
		return Payment{}, fmt.Errorf("payments: get %.140q: %w", id, err)
	}
	return p, nil
}

func (s *Service) get(ctx context.Context, id string) (Payment, error) {
	if !refPattern.MatchString(id) {
		return Payment{}, ErrPaymentNotFound
	}
	var p Payment
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&p)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return p, ErrPaymentNotFound
	}
	if err != nil {
		return p, fmt.Errorf("read payment: %w", err)
	}
	return p, nil
}

// Complete moves a pending (or failed) payment to completed and credits
// its account, in one transaction: both happen or neither does. A failed
// payment can still complete because a provider's failure is not final: a
// customer may retry with another card, and the provider then reports
// success for the same reference. Completing a completed payment returns
// it unchanged and credits nothing; completing a refunded one fails with
// [ErrInvalidTransition].
func (s *Service) Complete(ctx context.Context, id string) (Payment, error) {
	p, err := tx.Do(ctx, s.runner, func(ctx context.Context) (Payment, error) {
		p, err := s.get(ctx, id)
		if err != nil {
			return p, err
		}
		switch p.Status {
		case StatusCompleted:
			return p, nil
		case StatusPending, StatusFailed:
			// A failure is not final: a customer may retry with another card
			// and the provider then reports success for the same reference.
			// Money that arrived is credited.
		default:
			return p, fmt.Errorf("%w: %s → %s", ErrInvalidTransition, p.Status, StatusCompleted)
		}
		e, err := s.credits.Add(ctx, p.Account, p.Credits,
			credits.IdempotencyKey("payment:"+p.ID+":complete"),
			credits.Ref("payment", p.ID), credits.Reason("payment "+p.Provider+"/"+p.ProviderRef))
		if err != nil {
			return p, err
		}
		return s.transition(ctx, p, p.Status, StatusCompleted, bson.E{Key: "creditEntryId", Value: e.ID})
	}, tx.WithName("payments.Complete"))
	if err != nil {
		return Payment{}, fmt.Errorf("payments: complete %.140q: %w", id, err)
	}
	return p, nil
}

// CompleteByRef is [Service.Complete] for the payment with the provider's
// reference, as a provider's webhook names it.
func (s *Service) CompleteByRef(ctx context.Context, provider, ref string) (Payment, error) {
	id, err := s.idByRef(ctx, provider, ref)
	if err != nil {
		return Payment{}, fmt.Errorf("payments: complete %.70s/%.140s: %w", provider, ref, err)
	}
	return s.Complete(ctx, id)
}

// FailByRef is [Service.Fail] for the payment with the provider's
// reference, as a provider's webhook names it.
func (s *Service) FailByRef(ctx context.Context, provider, ref, reason string) (Payment, error) {
	id, err := s.idByRef(ctx, provider, ref)
	if err != nil {
		return Payment{}, fmt.Errorf("payments: fail %.70s/%.140s: %w", provider, ref, err)
	}
	return s.Fail(ctx, id, reason)
}

// idByRef returns the id of the payment with the provider's reference:
// its guard's, or for a payment stored before guards existed, the one the
// query finds. A reference that is not a plain id never reaches a query.
func (s *Service) idByRef(ctx context.Context, provider, ref string) (string, error) {
	if !providerPattern.MatchString(provider) || !refPattern.MatchString(ref) {
		return "", ErrPaymentNotFound
	}
	var g refGuard
	err := s.refs.FindOne(ctx, bson.D{{Key: "_id", Value: refKey(provider, ref)}}).Decode(&g)
	if err == nil {
		return g.Payment, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return "", err
	}
	var p Payment
	err = s.coll.FindOne(ctx, bson.D{{Key: "provider", Value: provider}, {Key: "providerRef", Value: ref}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&p)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", ErrPaymentNotFound
	}
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

// Fail moves a pending payment to failed. Failing a failed payment returns
// it unchanged; failing a completed or refunded one fails with
// [ErrInvalidTransition].
func (s *Service) Fail(ctx context.Context, id, reason string) (Payment, error) {
	if len(reason) > 512 {
		// Cut at a rune boundary: a reason is stored as valid UTF-8.
		cut := 512
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	p, err := tx.Do(ctx, s.runner, func(ctx context.Context) (Payment, error) {
		p, err := s.get(ctx, id)
		if err != nil {
			return p, err
		}
		switch p.Status {
		case StatusFailed:
			return p, nil
		case StatusPending:
		default:
			return p, fmt.Errorf("%w: %s → %s", ErrInvalidTransition, p.Status, StatusFailed)
		}
		return s.transition(ctx, p, StatusPending, StatusFailed, bson.E{Key: "failureReason", Value: reason})
	}, tx.WithName("payments.Fail"))
	if err != nil {
		return Payment{}, fmt.Errorf("payments: fail %.140q: %w", id, err)
	}
	return p, nil
}

// Refund moves a completed payment to refunded and deducts its credits, in
// one transaction. If the credits were spent, it fails with
// credits.ErrInsufficientCredits and nothing changes. Refunding a refunded
// payment returns it unchanged; refunding a pending or failed one fails
// with [ErrInvalidTransition].
func (s *Service) Refund(ctx context.Context, id string) (Payment, error) {
	p, err := tx.Do(ctx, s.runner, func(ctx context.Context) (Payment, error) {
		p, err := s.get(ctx, id)
		if err != nil {
			return p, err
		}
		switch p.Status {
		case StatusRefunded:
			return p, nil
		case StatusCompleted:
		default:
			return p, fmt.Errorf("%w: %s → %s", ErrInvalidTransition, p.Status, StatusRefunded)
		}
		e, err := s.credits.Deduct(ctx, p.Account, p.Credits,
			credits.IdempotencyKey("payment:"+p.ID+":refund"),
			credits.Ref("payment", p.ID), credits.Reason("refund "+p.Provider+"/"+p.ProviderRef))
		if err != nil {
			return p, err
		}
		return s.transition(ctx, p, StatusCompleted, StatusRefunded, bson.E{Key: "refundEntryId", Value: e.ID})
	}, tx.WithName("payments.Refund"))
	if err != nil {
		return Payment{}, fmt.Errorf("payments: refund %.140q: %w", id, err)
	}
	return p, nil
}

// transition moves p from one state to another with a guarded write. In a
// snapshot transaction a concurrent transition is a write conflict (and
// the runner re-runs the whole transaction), so a guard that matches
// nothing means the state was not what the caller read.
func (s *Service) transition(ctx context.Context, p Payment, from, to Status, set ...bson.E) (Payment, error) {
	now := s.clock()
	upd := append(bson.D{{Key: "status", Value: to}, {Key: "updatedAt", Value: now}}, set...)
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: p.ID}, {Key: "status", Value: from}}, bson.D{{Key: "$set", Value: upd}})
	if err != nil {
		return p, fmt.Errorf("update payment: %w", err)
	}
	if res.MatchedCount != 1 {
		return p, fmt.Errorf("%w: %s is no longer %s", ErrInvalidTransition, p.ID, from)
	}
	p.Status, p.UpdatedAt = to, now
	for _, e := range set {
		switch e.Key {
		case "creditEntryId":
			p.CreditEntryID = e.Value.(string)
		case "refundEntryId":
			p.RefundEntryID = e.Value.(string)
		case "failureReason":
			p.FailureReason = e.Value.(string)
		}
	}
	return p, nil
}

// List returns a page of account's payments.
//
// Deprecated: use [Service.ListPayments], named like [Service.GetPayment].
func (s *Service) List(ctx context.Context, account string, q ListQuery) ([]Payment, string, error) {
	return s.ListPayments(ctx, account, q)
}

// ListPayments returns a page of account's payments, newest first, and
// the cursor of the next page ("" after the last).
func (s *Service) ListPayments(ctx context.Context, account string, q ListQuery) ([]Payment, string, error) {
	if err := credits.ValidateAccount(account); err != nil {
		return nil, "", fmt.Errorf("payments: list: %w: %w", ErrInvalidPayment, err)
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 1000:
		return nil, "", fmt.Errorf("payments: list: %w: limit %d not in 1..1000", ErrInvalidPayment, limit)
	}
	filter := bson.D{{Key: "account", Value: account}}
	switch q.Status {
	case "":
	case StatusPending, StatusCompleted, StatusFailed, StatusRefunded:
		filter = append(filter, bson.E{Key: "status", Value: string(q.Status)})
	default:
		return nil, "", fmt.Errorf("payments: list: %w: unknown status %.20q", ErrInvalidPayment, q.Status)
	}
	if q.Cursor != "" {
		if !refPattern.MatchString(q.Cursor) {
			return nil, "", fmt.Errorf("payments: list: %w: bad cursor", ErrInvalidPayment)
		}
		// Ids are ObjectIDs, which grow with creation time: the cursor is
		// the last id of the previous page.
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Cursor}}})
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, "", fmt.Errorf("payments: list: %w", err)
	}
	var ps []Payment
	if err := cur.All(ctx, &ps); err != nil {
		return nil, "", fmt.Errorf("payments: list: %w", err)
	}
	if len(ps) <= limit {
		return ps, "", nil
	}
	ps = ps[:limit]
	return ps, ps[limit-1].ID, nil
}
