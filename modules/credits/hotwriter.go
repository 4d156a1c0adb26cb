package credits

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/zap"
)

// hotWriter is the single-document write engine: it applies a credit or a
// debit and its entry with one guarded update of the account document,
// which embeds the entry (atomic without a transaction), and later copies
// embedded entries to the entries collection. Writers on a hot account
// queue on the document instead of aborting each other's transactions,
// and the writes of one process are combined per account (see lane).
//
// # Flushes and the epoch guard
//
// An account document counts the copies that removed entries from it
// (flushes). Every write's filter demands a count no larger than one the
// writer observed before it last checked that its entry was not applied
// ({flushes: {$not: {$gt: n}}}). An entry can therefore never be applied
// twice, even by writers that resend it (the driver's retry, a second
// caller with the same idempotency key, a retry after an unknown outcome):
// while the entry is embedded the filter's {pending._id: {$ne: id}} refuses
// it, and once a copy has moved it out the count has grown.
//
// That holds only for a count that the document it guards really had:
// counts only grow on one document, but not across two. So an epoch is a
// count together with the document's incarnation, an id that every
// account document gets when it is created, and the filter demands both
// ({incarnation: id}; a document created before incarnations existed, or
// a missing one, has none and matches a missing id). A count observed on
// a document that was since dropped (or deleted) and created again cannot
// guard a write of the new one: the write fails its filter and the writer
// reads the account again, as after any copy. And a count is cached only
// when read or written outside any transaction, on committed state (see
// noteEpoch): one observed in a caller's transaction (postTx's reads, a
// flush run with the caller's ctx) includes that transaction's own
// fences and flushes, which an abort takes back.
//
// # Who applied an entry
//
// Several calls may send one entry id (the calls of one idempotency key),
// each with its own date and its own call id (see sent). The send that
// applies it is the key's first success; the others learn that it is
// applied and return it as it was stored ([errAppliedByAnother]).
type hotWriter struct {
	accounts *mongo.Collection
	entries  *mongo.Collection
	log      *zap.Logger

	// releaseExpired releases an account's expired holds, when a debit
	// falls short.
	releaseExpired func(ctx context.Context, account string) (int, error)

	// writes counts writes per stripe of accounts, to decide when a
	// writer copies its account's embedded entries out.
	writes     [64]atomic.Int64
	seed       maphash.Seed
	flushEvery int64
	flushing   sync.Map // account → struct{}: a copy in progress here

	// slots bounds the writes this process has in flight (see
	// WithMaxFastWrites). A lane's leader takes one only to send; writers
	// queued behind an account take none.
	slots chan struct{}

	lanesMu sync.Mutex
	lanes   map[string]*lane

	epochMu sync.Mutex
	epochs  map[string]epoch // account → its epoch observed last
}

// epoch is what a guarded write demands of its account document: the
// document's incarnation and a flush count observed on it, outside any
// transaction. The zero epoch is that of a missing account.
type epoch struct {
	incarnation bson.ObjectID // zero: none (a missing account, or an older one)
	flushes     int64
}

// filter is the guard that refuses a write of an entry copied out since e
// was observed, or to another incarnation of its account. A missing count
// is 0.
func (e epoch) filter() bson.D {
	var inc any // matches a missing incarnation
	if !e.incarnation.IsZero() {
		inc = e.incarnation
	}
	return bson.D{
		{Key: "incarnation", Value: inc},
		{Key: "flushes", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gt", Value: e.flushes}}}}},
	}
}

// older returns the more demanding of two epochs of one entry: the
// smaller count of one incarnation, else a.
func (a epoch) older(b epoch) epoch {
	if a.incarnation == b.incarnation && b.flushes < a.flushes {
		return b
	}
	return a
}

// epochFields projects what an epoch is read from.
var epochFields = bson.E{Key: "incarnation", Value: 1}

// sent is an entry as the single-document path stores it, embedded and
// then copied out: with the id of the call that sent it, which tells the
// calls of one key apart when their dates do not (the same millisecond).
// Readers of the ledger decode it as an Entry, without it.
type sent struct {
	Entry `bson:",inline"`
	Call  string `bson:"call,omitempty"` // empty for an entry only its own call sends
}

// maxEpochs bounds the epoch cache: it is cleared when full.
const maxEpochs = 1 << 14

func newHotWriter(accounts, entries *mongo.Collection, cfg config, releaseExpired func(context.Context, string) (int, error)) *hotWriter {
	return &hotWriter{
		accounts: accounts, entries: entries, log: cfg.log,
		releaseExpired: releaseExpired,
		seed:           maphash.MakeSeed(), flushEvery: cfg.flushEvery,
		slots: make(chan struct{}, cfg.fastWrites),
	}
}

// errAgain asks for the write to be tried again.
var errAgain = errors.New("credits: try again")

// errAppliedByAnother says that the entry is applied, but by another
// send of its id than this call's: another call with the same
// idempotency key, whose entry (dated by that call) is the one stored.
var errAppliedByAnother = errors.New("credits: internal: entry applied by another call")

// maxTries bounds the guarded writes of one call that lose to concurrent
// writers.
const maxTries = 8

// epoch returns an epoch of account observed now or earlier: the cached
// one, or one read. ctx must carry no transaction.
func (w *hotWriter) epoch(ctx context.Context, account string) (epoch, error) {
	if ep, ok := w.cachedEpoch(account); ok {
		return ep, nil
	}
	var acc accountDoc
	err := w.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: account}},
		options.FindOne().SetProjection(bson.D{{Key: "flushes", Value: 1}, epochFields})).Decode(&acc)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return epoch{}, fmt.Errorf("read account: %w", err)
	}
	w.noteEpoch(ctx, account, acc.epoch())
	return acc.epoch(), nil
}

// cachedEpoch returns the cached epoch of account, if any.
func (w *hotWriter) cachedEpoch(account string) (epoch, bool) {
	w.epochMu.Lock()
	defer w.epochMu.Unlock()
	ep, ok := w.epochs[account]
	return ep, ok
}

// noteEpoch caches an epoch of account, read or written with ctx. One
// observed in a transaction is not cached: it includes the transaction's
// own writes (a fence, a flush), which an abort takes back. Within one
// incarnation the count never moves back; another incarnation replaces it
// (were it the older one, a write would fail its filter and read the
// account again).
func (w *hotWriter) noteEpoch(ctx context.Context, account string, ep epoch) {
	if inTransaction(ctx) {
		return
	}
	w.epochMu.Lock()
	defer w.epochMu.Unlock()
	if w.epochs == nil || len(w.epochs) >= maxEpochs {
		w.epochs = map[string]epoch{}
	}
	if old, ok := w.epochs[account]; !ok || old.incarnation != ep.incarnation || ep.flushes > old.flushes {
		w.epochs[account] = ep
	}
}

// post applies e, a credit (Amount > 0) or a debit (Amount < 0). epoch is
// a flush count of e's account observed before the caller last learned
// that e was not applied (for a new entry: any time before). It returns
// nil once this call's send has applied e; errAppliedByAnother if another
// send of e's id applied it (see hotWriter); a business error; or an
// error matching ErrOutcomeUnknown.
func (w *hotWriter) post(ctx context.Context, e sent, ep epoch, shared bool) error {
	for try := 0; ; try++ {
		err := w.combinedWrite(ctx, e, ep, shared)
		var again *againError
		if !errors.As(err, &again) {
			if err == nil {
				w.noteWrite(ctx, e.Account)
			}
			return err
		}
		ep = again.epoch
		if try == maxTries-1 {
			return ErrContended
		}
	}
}

// againError asks for the write to be tried again with epoch, observed
// while the entry was known not to be applied.
type againError struct{ epoch epoch }

func (*againError) Error() string { return errAgain.Error() }
func (*againError) Is(target error) bool {
	return target == errAgain
}

// write applies e alone, with its own guard. A credit creates its
// account, as a new incarnation, or makes a placeholder of it an account.
// Either write clears the mark (see clearPlaceholder).
func (w *hotWriter) write(ctx context.Context, e sent, ep epoch) error {
	amount := e.Amount
	filter := append(bson.D{
		{Key: "_id", Value: e.Account},
		{Key: "pending._id", Value: bson.D{{Key: "$ne", Value: e.ID}}},
		{Key: pendingFull, Value: bson.D{{Key: "$exists", Value: false}}},
	}, ep.filter()...)
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "balance", Value: amount}, {Key: "available", Value: amount}}},
		{Key: "$push", Value: bson.D{{Key: "pending", Value: e}}},
		{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: e.CreatedAt}}},
		{Key: "$min", Value: bson.D{{Key: "pendingSince", Value: e.CreatedAt}}},
	}
	created := epoch{incarnation: bson.NewObjectID()}
	if amount > 0 {
		filter = append(filter, bson.E{Key: "balance", Value: bson.D{{Key: "$lte", Value: math.MaxInt64 - amount}}})
		// The filter's incarnation seeds an inserted document: this
		// replaces it.
		update = append(update, bson.E{Key: "$setOnInsert", Value: bson.D{
			{Key: "held", Value: int64(0)}, {Key: "flushes", Value: int64(0)}, {Key: "createdAt", Value: e.CreatedAt},
			{Key: "incarnation", Value: created.incarnation},
		}})
	} else {
		filter = append(filter, bson.E{Key: "available", Value: bson.D{{Key: "$gte", Value: -amount}}})
	}
	update = append(update, clearPlaceholder)
	res, err := w.accounts.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(amount > 0))
	if err == nil && res.UpsertedCount == 1 {
		w.noteEpoch(ctx, e.Account, created)
	}
	if err == nil && (res.MatchedCount == 1 || res.UpsertedCount == 1) {
		return nil
	}
	if err != nil && !mongo.IsDuplicateKeyError(err) { // a duplicate: the account exists but the guard failed
		return w.resolve(ctx, []sent{e}, err)[0]
	}
	return w.explain(ctx, e)
}

// explain finds out why e's guard did not match. Its reads only explain
// the failure; they never decide a write.
func (w *hotWriter) explain(ctx context.Context, e sent) error {
	amount := e.Amount
	var acc accountDoc
	err := w.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: e.Account}}).Decode(&acc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		if amount > 0 {
			return &againError{epoch: epoch{}}
		}
		return ErrAccountNotFound
	case err != nil:
		return fmt.Errorf("read account: %w", err)
	case slices.ContainsFunc(acc.Pending, func(p Entry) bool { return p.ID == e.ID }):
		// Our send did not match: another applied it (the driver's
		// resend of ours is answered as the first send by the server).
		return errAppliedByAnother
	}
	w.noteEpoch(ctx, e.Account, acc.epoch())
	if _, copied, err := w.copied(ctx, e.ID); err != nil {
		return err
	} else if copied {
		return errAppliedByAnother // and already copied out
	}
	if acc.isPlaceholder() && amount < 0 {
		return ErrAccountNotFound // no credit has applied to it yet
	}
	// e was not applied when acc was read: acc's epoch is a safe one.
	again := &againError{epoch: acc.epoch()}
	switch {
	case len(acc.Pending) >= maxPending:
		if err := w.flush(ctx, e.Account); err != nil {
			return err
		}
		return again
	case amount > 0 && acc.Balance > math.MaxInt64-amount:
		return ErrOverflow
	case amount > 0, acc.Available >= -amount:
		return again // changed since the write
	case acc.Held > 0 && w.releaseExpired != nil:
		n, err := w.releaseExpired(ctx, e.Account)
		if err != nil {
			return err
		}
		if n > 0 {
			return again
		}
	}
	return fmt.Errorf("%w: available %d, asked %d", ErrInsufficientCredits, acc.Available, -amount)
}

// copied returns entry id from the entries collection, if it is there.
func (w *hotWriter) copied(ctx context.Context, id string) (sent, bool, error) {
	var e sent
	err := w.entries.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read entry: %w", err)
	}
	return e, true, nil
}

// applied returns e's entry as stored, if an entry of its id is applied
// (embedded or copied out), and otherwise the epoch observed while it was
// not. It also reads in a caller's transaction (see postTx).
func (w *hotWriter) applied(ctx context.Context, e Entry) (stored Entry, ok bool, ep epoch, err error) {
	var acc accountDoc
	err = w.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: e.Account}},
		options.FindOne().SetProjection(bson.D{
			{Key: "flushes", Value: 1}, epochFields,
			{Key: "pending", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "_id", Value: e.ID}}}}},
		})).Decode(&acc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return Entry{}, false, epoch{}, fmt.Errorf("read account: %w", err)
	case len(acc.Pending) > 0:
		return acc.Pending[0], true, epoch{}, nil
	}
	copied, ok, err := w.copied(ctx, e.ID)
	if err != nil {
		return Entry{}, false, epoch{}, err
	}
	w.noteEpoch(ctx, e.Account, acc.epoch())
	return copied.Entry, ok, acc.epoch(), nil
}

// appliedBy tells whose send stored is, found applied after a send of e
// whose outcome was not known: nil if e's (its call id), errAppliedByAnother
// if another call's with the same key.
func appliedBy(stored, e sent) error {
	if stored.Call == e.Call {
		return nil
	}
	return errAppliedByAnother
}

// resolveTimeout bounds the resolution of an unknown outcome.
const resolveTimeout = 10 * time.Second

// ResolveGrace is how long after its context's deadline a single-account
// write (Add, Deduct, and the other writes that take the single-document
// path) may still run: the time to learn the outcome of a write that the
// deadline cut, which returns [ErrOutcomeUnknown] if it cannot be learned
// by then. A write never waits past its deadline for a transaction that
// holds its account: the server refuses it at the deadline (maxTimeMS).
const ResolveGrace = 500 * time.Millisecond

// resolve learns the outcome of a write of es (all on one account) that
// failed with cause, after which any of them may or may not have been
// applied. It first fences the account, so that a send still on its way
// can no longer apply (it raises the flush count), then looks for every
// entry. A missing account proves that no debit was applied, and a debit
// still on its way cannot apply to an account created later (a new
// incarnation). But a credit's send still on its way could create it: if
// es holds a credit, the fence inserts a placeholder of the account, a
// document with an incarnation (which that send, demanding none, can
// never match or insert again) that every reader takes for a missing
// account until a credit applies to it (see isPlaceholder). So a
// credit that then fails for good leaves no account behind, and debits
// racing the resolution find the account missing, as they would have
// before the credit. It returns, per entry, nil if this send applied it,
// errAppliedByAnother if another did (see appliedBy), an againError if it
// is certainly not applied, or an error matching ErrOutcomeUnknown.
func (w *hotWriter) resolve(ctx context.Context, es []sent, cause error) []error {
	limit := time.Now().Add(resolveTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Add(ResolveGrace).Before(limit) {
		limit = dl.Add(ResolveGrace)
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), limit)
	defer cancel()
	out := make([]error, len(es))
	unknown := func(err error) []error {
		for i := range out {
			out[i] = fmt.Errorf("%w: %w (then %w)", ErrOutcomeUnknown, cause, err)
		}
		return out
	}
	credit := slices.ContainsFunc(es, func(e sent) bool { return e.Amount > 0 })
	var acc struct {
		Pending     []sent        `bson:"pending"`
		Flushes     int64         `bson:"flushes"`
		Incarnation bson.ObjectID `bson:"incarnation"`
	}
	err := w.accounts.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: es[0].Account}},
		bson.D{
			{Key: "$inc", Value: bson.D{{Key: "flushes", Value: int64(1)}}},
			{Key: "$setOnInsert", Value: bson.D{
				{Key: "balance", Value: int64(0)}, {Key: "held", Value: int64(0)}, {Key: "available", Value: int64(0)},
				{Key: "createdAt", Value: es[0].CreatedAt}, // no updatedAt: see isPlaceholder
				{Key: "incarnation", Value: bson.NewObjectID()}, {Key: "placeholder", Value: true},
			}},
		},
		options.FindOneAndUpdate().SetUpsert(credit).SetReturnDocument(options.After).
			SetProjection(bson.D{{Key: "pending._id", Value: 1}, {Key: "pending.call", Value: 1}, {Key: "flushes", Value: 1}, epochFields})).Decode(&acc)
	if !credit && errors.Is(err, mongo.ErrNoDocuments) {
		for i := range out {
			out[i] = &againError{epoch: epoch{}}
		}
		return out
	}
	if err != nil {
		return unknown(fmt.Errorf("fence account: %w", err))
	}
	fenced := epoch{incarnation: acc.Incarnation, flushes: acc.Flushes}
	w.noteEpoch(ctx, es[0].Account, fenced)
	for i, e := range es {
		if j := slices.IndexFunc(acc.Pending, func(p sent) bool { return p.ID == e.ID }); j >= 0 {
			out[i] = appliedBy(acc.Pending[j], e)
			continue
		}
		stored, copied, err := w.copied(ctx, e.ID)
		switch {
		case err != nil:
			return unknown(err)
		case copied:
			out[i] = appliedBy(stored, e)
		default:
			out[i] = &againError{epoch: fenced}
		}
	}
	return out
}

// noteWrite counts a write on account and, every flushEvery writes of its
// stripe, copies the account's embedded entries out.
func (w *hotWriter) noteWrite(ctx context.Context, account string) {
	if w.writes[maphash.String(w.seed, account)%64].Add(1)%w.flushEvery != 0 {
		return
	}
	// Best effort: the write itself has committed, and what is not copied
	// now is copied by the next flush or the sweeper.
	if err := w.flushOnce(ctx, account); err != nil {
		w.log.Debug("credits: copying entries out failed; the sweeper will retry", zap.String("account", account), zap.Error(err))
	}
}

// flushOnce is flush, counted among the writes in flight, unless a copy
// of account is already in progress here.
func (w *hotWriter) flushOnce(ctx context.Context, account string) error {
	if _, busy := w.flushing.LoadOrStore(account, struct{}{}); busy {
		return nil
	}
	defer w.flushing.Delete(account)
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.slots }()
	return w.flush(ctx, account)
}

// flush copies the entries embedded in account's document to the entries
// collection, then removes them from the document and counts the flush,
// in one update. It is idempotent and safe to run concurrently: entries
// are inserted under their own ids (duplicates are ignored) before they
// are pulled, so an entry is always in the document, in the collection,
// or briefly in both — never in neither. Readers merge both and drop
// duplicates.
func (w *hotWriter) flush(ctx context.Context, account string) error {
	var acc struct {
		Pending []sent `bson:"pending"` // their call ids are copied too
	}
	err := w.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: account}},
		options.FindOne().SetProjection(bson.D{{Key: "pending", Value: 1}})).Decode(&acc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pending entries of %s: %w", account, err)
	}
	if len(acc.Pending) > 0 {
		docs := make([]any, len(acc.Pending))
		ids := make(bson.A, len(acc.Pending))
		for i, e := range acc.Pending {
			docs[i], ids[i] = e, e.ID
		}
		_, err := w.entries.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		if err != nil && !onlyDuplicates(err) {
			return fmt.Errorf("copy entries of %s: %w", account, err)
		}
		var after accountDoc
		err = w.accounts.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: account}},
			bson.D{
				{Key: "$pull", Value: bson.D{{Key: "pending", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}}}},
				{Key: "$inc", Value: bson.D{{Key: "flushes", Value: int64(1)}}},
			},
			options.FindOneAndUpdate().SetReturnDocument(options.After).SetProjection(bson.D{{Key: "flushes", Value: 1}, epochFields})).Decode(&after)
		if err != nil {
			return fmt.Errorf("remove copied entries of %s: %w", account, err)
		}
		w.noteEpoch(ctx, account, after.epoch())
	}
	// Leave the sweeper's index only if no writer embedded a new entry
	// meanwhile.
	_, err = w.accounts.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: account}, {Key: "pending", Value: bson.D{{Key: "$size", Value: 0}}}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "pendingSince", Value: ""}}}})
	if err != nil {
		return fmt.Errorf("mark %s flushed: %w", account, err)
	}
	return nil
}

// onlyDuplicates reports whether every write error in err is a duplicate
// key: entries that an earlier copy already inserted.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return false
		}
	}
	return true
}
