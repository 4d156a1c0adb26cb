package tx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.uber.org/zap"
)

// Orphan reaping. The reaper (reaper.go) kills the sessions that the
// runner itself left open; it cannot help when the process dies: only the
// dead process knew which server sessions (lsids) its transactions ran on,
// and they hold their documents until the server's
// transactionLifetimeLimitSeconds. With [WithOrphanReaping], every process
// writes down, in a collection shared by all of them, each server session
// before its first transaction on it, and keeps a lease there while it
// lives. Any process whose sweep finds a lease that stopped being renewed,
// or, at its start, one left by an earlier process of its own instance
// name, kills the sessions recorded under it, and kills them again for a
// while (rekillSchedule).

// DefaultOrphanLease is the lease of [OrphanReaping] when none is given.
const DefaultOrphanLease = 15 * time.Second

// Registry documents. A lease: {_id: incarnation, kind: "lease", instance,
// beat, lease_ms}; a recorded session: {_id: <lsid UUID>, kind: "session",
// incarnation, instance}.
const (
	kindLease   = "lease"
	kindSession = "session"
	// killBatch bounds the lsids of one killSessions.
	killBatch = 500
	// sessionIdle is how long after its last transaction began a recorded
	// session is forgotten: longer than MongoDB's logical session timeout
	// (30 min), after which the driver no longer hands it out and the
	// server has ended it, transactions included. Without it the registry
	// would keep every session the driver's pool ever dropped.
	sessionIdle = 31 * time.Minute
)

// The re-kills of a reaped process's sessions. killSessions aborts what
// runs on a session, but does not stop a statement that reaches the
// server later from starting a transaction on it: a first statement of
// the dead process that was still on its way (the database stalled, or
// it waited in a socket buffer) would hold what it writes until
// transactionLifetimeLimitSeconds. The runner's own reaper fences its
// sessions with a higher transaction number; the registry cannot (the
// driver sends a command on a session of its own, never on a chosen lsid
// and txnNumber), so it kills a reaped process's sessions again, every
// every, for window after the reap.
var rekillSchedule = struct{ every, window time.Duration }{
	// every: the longest a late statement holds its documents, once it
	// reaches the server within the window. A killSessions of up to
	// killBatch lsids costs the server little, even every second.
	every: time.Second,
	// window: half of the server's default transaction lifetime limit
	// (60 s). A statement later than that needs the database stalled for
	// longer than that, and is then held at most the lifetime limit, as
	// without re-kills.
	window: 30 * time.Second,
}

// OrphanReaping configures [WithOrphanReaping].
type OrphanReaping struct {
	// Collection holds the registry, on the runner's deployment: one
	// document per server session the process ran a transaction on, and
	// one lease per running process. All the processes that share a
	// database share one collection. Required.
	Collection *mongo.Collection
	// Instance names the process's slot, the same across its restarts and
	// unique among the processes running at one time: a StatefulSet pod's
	// name, a systemd unit's instance. A process that starts kills at once
	// the sessions of the earlier processes of its name: they are dead,
	// their transactions abandoned. Two live processes must never share a
	// name: each start would kill the other's transactions. Empty gives a
	// random name, and a dead process's sessions are then killed only once
	// its lease expires.
	Instance string
	// Lease is how long a process's lease lasts without renewal: it renews
	// it every third of Lease, and another process kills its sessions once
	// it saw the lease unchanged for Lease (measured on its own clock, so
	// clocks need not agree). Zero means [DefaultOrphanLease].
	Lease time.Duration
	// Logger receives the failures of renewals and sweeps, which are
	// retried every third of Lease. Nil means the logger of [Module], or
	// none.
	Logger *zap.Logger
}

// WithOrphanReaping makes the runner record its server sessions so that a
// transaction left open by a process that died (kill -9, a crashed node)
// is killed by another process, or by the same one restarted, instead of
// holding its documents until the server's transaction lifetime limit.
//
// Before the first transaction on a server session it has not used yet,
// the runner writes the session down (majority write concern): the driver
// pools server sessions, so in steady state no transaction pays for it. A
// transaction whose session cannot be written down does not start: its
// scope fails with the error. A goroutine renews the process's lease and
// sweeps the registry every third of the lease; another kills the
// sessions a sweep reaped again, every second for 30 s and once after, so
// that a statement of the dead process that reaches the server late holds
// nothing for longer than about a second. A re-kill spares the sessions
// recorded again since the reap: their process was alive (it had missed
// its lease) and uses them. [Runner.Close] stops them and,
// when the runner left no transaction open and none runs, removes the
// process's documents; after it, transactions fail with [ErrClosed].
//
// Killing uses killSessions, which kills only the sessions of the user
// who runs it: every process must connect as the same database user, or
// as users with the killAnySession privilege.
//
// It is a runner-wide option: give it to [NewRunner] or [Defaults]; a call
// ignores it.
func WithOrphanReaping(o OrphanReaping) Option {
	return optionFunc(func(c *config) {
		if o.Collection == nil {
			c.err = errors.New("WithOrphanReaping: no Collection")
			return
		}
		c.orphans = &o
	})
}

// withLogger gives the orphan reaping a logger if it has none.
func withLogger(log *zap.Logger) Option {
	return optionFunc(func(c *config) {
		if c.orphans != nil && c.orphans.Logger == nil {
			o := *c.orphans
			o.Logger = log
			c.orphans = &o
		}
	})
}

// registry is a runner's side of orphan reaping.
type registry struct {
	coll        *mongo.Collection // majority write concern
	admin       *mongo.Database
	instance    string
	incarnation string
	lease       time.Duration
	log         *zap.Logger

	renewMu  sync.Mutex // one renewal at a time: concurrent upserts would race
	mu       sync.Mutex
	recorded map[[16]byte]recorded
	seq      int64     // numbers the records, so a prune removes only its own
	leased   bool      // the lease is known to exist
	renewed  time.Time // when the last renewal that succeeded was sent
	running  int       // transactions on recorded sessions that have not ended
	idle     time.Duration
	// unsure: a write of the lease or of a record got no answer (cut, or
	// its connection broke): it may still run on the server, after close
	// removed the process's documents, and create one again. Under mu.
	unsure bool

	// quarantined holds, until when, the sessions this process held when
	// a renewal found its lease gone: another process reaped them and may
	// kill them again until then (see quarantine). parked holds the
	// sessions record refused for it, kept out of the driver's pool,
	// which would hand them out again at once (it is LIFO). Under mu.
	quarantined map[[16]byte]time.Time
	parked      []parkedSession

	seen map[string]leaseSeen // the goroutine's: the leases of others
	// abandoned holds, by incarnation, the sessions that a reap killed
	// before it failed (the goroutine's): they are re-killed once a
	// later reap of the process completes.
	abandoned map[string][]sessionDoc

	rekillEvery, rekillWindow time.Duration           // rekillSchedule
	rekill                    map[[16]byte]rekillWait // under mu: reaped sessions to kill again
	rekillWake                chan struct{}           // a reap added sessions to rekill

	ctx  context.Context // cancelled by close: cuts sweeps, prunes and re-kills
	stop context.CancelFunc
	// renewCtx bounds the lease's renewals. close does not cut one in
	// flight (cut, it could still reach the server after close removed
	// the lease, and create it again) unless close's own ctx ends.
	renewCtx  context.Context
	stopRenew context.CancelFunc
	quit      chan struct{} // closed by close: no renewal starts after it
	wg        sync.WaitGroup
	started   bool
	closed    bool
	removed   bool // close removed the process's records
}

// recorded is a session the registry holds.
type recorded struct {
	seq  int64
	used time.Time // when its last transaction began
}

// parkedSession is a session kept out of use until its quarantine ends.
type parkedSession struct {
	sess  *mongo.Session
	until time.Time
}

// errParked is record's refusal of a quarantined session: the registry
// keeps it, and the transaction starts on another one.
var errParked = errors.New("session killed in a reap of this process: parked")

// rekillWait is a reaped session that runRekills kills again: the
// record the reap removed, and the end of its window.
type rekillWait struct {
	incarnation string
	seq         int64
	until       time.Time
}

// leaseSeen is when a sweep first saw another process's lease at beat.
type leaseSeen struct {
	beat  int64
	since time.Time
}

type leaseDoc struct {
	ID       string `bson:"_id"`
	Instance string `bson:"instance"`
	Beat     int64  `bson:"beat"`
	LeaseMS  int64  `bson:"lease_ms"`
}

func newRegistry(o OrphanReaping) *registry {
	inc := randomID()
	if o.Instance == "" {
		o.Instance = "random-" + inc
	}
	if o.Lease <= 0 {
		o.Lease = DefaultOrphanLease
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	coll := o.Collection.Database().Collection(o.Collection.Name(), options.Collection().SetWriteConcern(writeconcern.Majority()))
	ctx, stop := context.WithCancel(context.Background())
	renewCtx, stopRenew := context.WithCancel(context.Background())
	return &registry{
		coll: coll, admin: coll.Database().Client().Database("admin"),
		instance: o.Instance, incarnation: inc, lease: o.Lease,
		log:      o.Logger.With(zap.String("instance", o.Instance), zap.String("incarnation", inc)),
		recorded: map[[16]byte]recorded{}, seen: map[string]leaseSeen{}, abandoned: map[string][]sessionDoc{}, idle: sessionIdle,
		rekillEvery: rekillSchedule.every, rekillWindow: rekillSchedule.window,
		rekill: map[[16]byte]rekillWait{}, rekillWake: make(chan struct{}, 1),
		ctx: ctx, stop: stop, renewCtx: renewCtx, stopRenew: stopRenew, quit: make(chan struct{}),
		quarantined: map[[16]byte]time.Time{},
	}
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// record writes sess's server session down unless it already did, for a
// transaction about to start on it. On success the transaction counts as
// running until release; after close, record refuses with ErrClosed. A
// replaceable session (the runner's own, not the caller's) that a reap of
// this process killed and may still kill again is refused with errParked:
// record keeps it, and the caller starts another one.
func (r *registry) record(ctx context.Context, sess *mongo.Session, replaceable bool) (err error) {
	id, err := lsidOf(sess)
	if err != nil {
		return err
	}
	now := time.Now()
	r.unpark(now)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	// Counted from here: a close that comes during the write keeps the
	// records, this one included.
	r.running++
	if r.lapsed(now) {
		// Another process may have taken this one for dead and reaped
		// its sessions (it stalled), and re-kills them: a renewal finds
		// out, and the session is recorded again, which spares it. A
		// renewal that fails leaves the cache untrusted: the transaction
		// would start on a session that may be killed midway, so it does
		// not start (finding
		// tx-rekill-renewal-failure-starts-killable-transaction).
		r.mu.Unlock()
		if err := r.renewIfLapsed(mongo.NewSessionContext(ctx, nil)); err != nil {
			r.release()
			return fmt.Errorf("the lease may have lapsed and could not be renewed: %w", err)
		}
		r.mu.Lock()
	}
	if until, ok := r.quarantined[id]; ok && replaceable {
		if now.Before(until) {
			r.parked = append(r.parked, parkedSession{sess: sess, until: until})
			r.running--
			r.mu.Unlock()
			return errParked
		}
		delete(r.quarantined, id)
	}
	rec, done := r.recorded[id]
	if done {
		rec.used = now
		r.recorded[id] = rec
		r.mu.Unlock()
		return nil
	}
	leased := r.leased
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	defer func() {
		if err != nil {
			r.release()
		}
	}()
	ctx = mongo.NewSessionContext(ctx, nil) // not in the caller's transaction
	if !leased {
		if err := r.renew(ctx); err != nil {
			return err
		}
	}
	_, err = r.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: id[:]}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "kind", Value: kindSession}, {Key: "incarnation", Value: r.incarnation}, {Key: "instance", Value: r.instance},
			{Key: "seq", Value: seq},
		}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		r.unanswered(err)
		return err
	}
	r.mu.Lock()
	r.recorded[id] = recorded{seq: seq, used: now}
	r.mu.Unlock()
	return nil
}

// unanswered notes a registry write that failed without the server's
// answer: it may still run on the server (finding
// tx-attack29-record-cut-lands-after-close). A ctx with a deadline gives
// the server maxTimeMS, but one cancelled without a deadline gives none,
// and a write held in a network buffer is not on the server's clock yet.
func (r *registry) unanswered(err error) {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || isContextError(err) {
		r.mu.Lock()
		r.unsure = true
		r.mu.Unlock()
	}
}

// release ends what record began: the transaction ended, and its session
// holds nothing on the server unless the runner's reaper took it.
func (r *registry) release() {
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
}

// prune forgets the sessions idle for longer than r.idle, here and in the
// registry.
func (r *registry) prune(ctx context.Context) error {
	cutoff := time.Now().Add(-r.idle)
	var stale bson.A
	r.mu.Lock()
	for id, rec := range r.recorded {
		if rec.used.Before(cutoff) {
			delete(r.recorded, id)
			stale = append(stale, bson.D{
				{Key: "_id", Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: append([]byte(nil), id[:]...)}},
				{Key: "seq", Value: rec.seq},
			})
		}
	}
	r.mu.Unlock()
	for len(stale) > 0 {
		batch := stale[:min(len(stale), killBatch)]
		stale = stale[len(batch):]
		// By seq: a session used again since is recorded anew, and stays.
		filter := bson.D{{Key: "kind", Value: kindSession}, {Key: "incarnation", Value: r.incarnation}, {Key: "$or", Value: batch}}
		if _, err := r.coll.DeleteMany(ctx, filter); err != nil {
			return fmt.Errorf("forget idle sessions: %w", err)
		}
	}
	return nil
}

// lsidOf returns the UUID of sess's server session.
func lsidOf(sess *mongo.Session) ([16]byte, error) {
	var id [16]byte
	v, err := sess.ID().LookupErr("id")
	if err != nil {
		return id, fmt.Errorf("session id: %w", err)
	}
	_, data, ok := v.BinaryOK()
	if !ok || len(data) != len(id) {
		return id, fmt.Errorf("session id %v is not a UUID", v)
	}
	copy(id[:], data)
	return id, nil
}

// lapsed reports whether the lease may have expired at now: a sweep
// reaps a process whose beat it saw unchanged for the lease, so no sweep
// reaped this one while its last renewal was sent less than a lease ago.
// Under mu.
func (r *registry) lapsed(now time.Time) bool {
	return r.leased && now.Sub(r.renewed) >= r.lease
}

// renewIfLapsed renews the lease if it may have expired.
func (r *registry) renewIfLapsed(ctx context.Context) error {
	r.renewMu.Lock()
	defer r.renewMu.Unlock()
	r.mu.Lock()
	lapsed := r.lapsed(time.Now())
	r.mu.Unlock()
	if !lapsed {
		return nil // renewed by a concurrent call
	}
	return r.renewLocked(ctx)
}

// renew renews the process's lease, creating it if it is missing. A lease
// that had existed and is missing was reaped by another process's sweep,
// which took the recorded sessions with it: they are recorded again.
func (r *registry) renew(ctx context.Context) error {
	r.renewMu.Lock()
	defer r.renewMu.Unlock()
	return r.renewLocked(ctx)
}

// renewLocked is renew, under renewMu.
func (r *registry) renewLocked(ctx context.Context) error {
	sent := time.Now()
	res, err := r.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: r.incarnation}},
		bson.D{
			{Key: "$inc", Value: bson.D{{Key: "beat", Value: int64(1)}}},
			{Key: "$set", Value: bson.D{
				{Key: "kind", Value: kindLease}, {Key: "instance", Value: r.instance},
				{Key: "lease_ms", Value: r.lease.Milliseconds()},
			}},
		},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		r.unanswered(err)
		return fmt.Errorf("renew lease: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if res.UpsertedCount > 0 && r.leased {
		r.log.Warn("orphan reaping: another process took this process for dead and killed its sessions; check that instance names are unique and the lease long enough")
		r.quarantine(sent)
		clear(r.recorded)
	}
	r.leased = true
	r.renewed = sent
	return nil
}

// quarantine keeps the sessions this process recorded out of use for as
// long as the reap that removed its lease may kill them again (finding
// tx-rekill-stale-read-kills-rerecorded-session). Recording such a session
// again spares it only from the re-kills that read the registry after the
// record: one that read it before kills it regardless, and a kill may take
// the reaping process's killTimeout to run. The reap scheduled its
// re-kills once the lease was gone, so before found: they stop at the end
// of their window, or, while they fail, a window later, and the last one
// runs at most killTimeout (every process shares rekillSchedule). Under
// mu.
func (r *registry) quarantine(found time.Time) {
	until := found.Add(2*r.rekillWindow + r.rekillEvery + killTimeout)
	for id := range r.recorded {
		r.quarantined[id] = until
	}
}

// unpark gives the parked sessions whose quarantine ended back to the
// driver's pool (no transaction ran on them: no I/O), and forgets the
// quarantines that ended.
func (r *registry) unpark(now time.Time) {
	r.mu.Lock()
	var done []*mongo.Session
	kept := r.parked[:0]
	for _, p := range r.parked {
		if now.Before(p.until) {
			kept = append(kept, p)
		} else {
			done = append(done, p.sess)
		}
	}
	clear(r.parked[len(kept):])
	r.parked = kept
	for id, until := range r.quarantined {
		if !now.Before(until) {
			delete(r.quarantined, id)
		}
	}
	r.mu.Unlock()
	for _, sess := range done {
		sess.EndSession(context.Background())
	}
}

// start starts the goroutines: one renews the lease and sweeps, the
// other kills reaped sessions again.
func (r *registry) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return
	}
	r.started = true
	r.wg.Add(2)
	go r.run()
	go r.runRekills()
}

func (r *registry) run() {
	defer r.wg.Done()
	every := r.lease / 3
	first := true // the earlier processes of this instance are still to reap
	for {
		select {
		case <-r.quit:
			return
		default:
		}
		rctx, rcancel := context.WithTimeout(r.renewCtx, max(every, killTimeout))
		err := r.renew(rctx)
		rcancel()
		if err != nil && r.ctx.Err() == nil {
			r.log.Warn("orphan reaping: renew lease", zap.Error(err))
		}
		ctx, cancel := context.WithTimeout(r.ctx, max(every, killTimeout))
		if err := r.sweep(ctx, first); err != nil {
			if r.ctx.Err() == nil {
				r.log.Warn("orphan reaping: sweep", zap.Error(err))
			}
		} else {
			first = false
		}
		if err := r.prune(ctx); err != nil && r.ctx.Err() == nil {
			r.log.Info("orphan reaping", zap.Error(err)) // they stay until this process ends
		}
		cancel()
		t := time.NewTimer(every)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// sweep kills the sessions of the processes whose lease expired and, when
// sameName is set, of the earlier processes of this instance.
func (r *registry) sweep(ctx context.Context, sameName bool) error {
	cur, err := r.coll.Find(ctx, bson.D{{Key: "kind", Value: kindLease}})
	if err != nil {
		return fmt.Errorf("read leases: %w", err)
	}
	var leases []leaseDoc
	if err := cur.All(ctx, &leases); err != nil {
		return fmt.Errorf("read leases: %w", err)
	}
	now := time.Now()
	present := make(map[string]bool, len(leases))
	var errs []error
	for _, l := range leases {
		if l.ID == r.incarnation {
			continue
		}
		present[l.ID] = true
		dead := sameName && l.Instance == r.instance
		if !dead {
			s, ok := r.seen[l.ID]
			lease := time.Duration(l.LeaseMS) * time.Millisecond
			if lease <= 0 {
				lease = r.lease
			}
			switch {
			case !ok || s.beat != l.Beat:
				r.seen[l.ID] = leaseSeen{beat: l.Beat, since: now}
				delete(r.abandoned, l.ID) // alive: it may use them
			case now.Sub(s.since) > lease:
				dead = true
			}
		}
		if !dead {
			continue
		}
		n, err := r.reap(ctx, l.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("process %s (instance %s): %w", l.ID, l.Instance, err))
			continue
		}
		delete(r.seen, l.ID)
		r.log.Info("orphan reaping: killed the sessions of a dead process",
			zap.String("dead_incarnation", l.ID), zap.String("dead_instance", l.Instance), zap.Int("sessions", n))
	}
	for id := range r.seen {
		if !present[id] {
			delete(r.seen, id)
		}
	}
	for id := range r.abandoned {
		if !present[id] {
			delete(r.abandoned, id) // another process completed the reap
		}
	}
	return errors.Join(errs...)
}

// reap kills the sessions recorded by the process incarnation and removes
// its documents. It returns how many sessions it killed.
func (r *registry) reap(ctx context.Context, incarnation string) (int, error) {
	filter := bson.D{{Key: "kind", Value: kindSession}, {Key: "incarnation", Value: incarnation}}
	cur, err := r.coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "seq", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("read sessions: %w", err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, fmt.Errorf("read sessions: %w", err)
	}
	n := len(docs)
	for len(docs) > 0 {
		batch := docs[:min(len(docs), killBatch)]
		docs = docs[len(batch):]
		ids := make(bson.A, len(batch))
		for i, d := range batch {
			ids[i] = d.ID
		}
		if err := r.kill(ctx, ids); err != nil {
			return 0, err
		}
		r.abandoned[incarnation] = append(r.abandoned[incarnation], batch...)
		if _, err := r.coll.DeleteMany(ctx, bson.D{{Key: "kind", Value: kindSession}, {Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
			return 0, fmt.Errorf("remove killed sessions: %w", err)
		}
	}
	// Last, so that a sweep cut short finds the process again. A process
	// that was alive after all finds its lease gone at its next renewal
	// and records its sessions again.
	if _, err := r.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: incarnation}}); err != nil {
		return n, fmt.Errorf("remove lease: %w", err)
	}
	// Only now are the sessions re-killed, those an abandoned reap of the
	// same process killed included: until the lease is gone, a process
	// that was alive renews onto it, never learns it was reaped and does
	// not record its sessions again, so a re-kill would interrupt its
	// transactions (finding tx-rekill-abandoned-reap-kills-live-process).
	// An abandoned reap is retried by the next sweep if the process still
	// looks dead; if it renews meanwhile, sweep forgets the abandoned kills.
	r.killAgainLater(incarnation, r.abandoned[incarnation])
	delete(r.abandoned, incarnation)
	return n, nil
}

// kill kills the server sessions ids (UUIDs as bson.Binary), at most
// killBatch of them.
func (r *registry) kill(ctx context.Context, ids bson.A) error {
	lsids := make(bson.A, len(ids))
	for i, id := range ids {
		lsids[i] = bson.D{{Key: "id", Value: id}}
	}
	if err := killSessions(ctx, r.admin, lsids); err != nil {
		if refused(err) {
			err = fmt.Errorf("%w (every process must connect as the same user, or have the killAnySession privilege)", err)
		}
		return fmt.Errorf("killSessions: %w", err)
	}
	return nil
}

// sessionDoc is the part of a recorded session that the reaping reads.
type sessionDoc struct {
	ID          bson.Binary `bson:"_id"`
	Incarnation string      `bson:"incarnation"`
	Seq         int64       `bson:"seq"`
}

// killAgainLater has runRekills kill the reaped sessions recs of the
// process incarnation again until rekillWindow from now.
func (r *registry) killAgainLater(incarnation string, recs []sessionDoc) {
	until := time.Now().Add(r.rekillWindow)
	r.mu.Lock()
	for _, d := range recs {
		var id [16]byte
		if len(d.ID.Data) == len(id) {
			copy(id[:], d.ID.Data)
			r.rekill[id] = rekillWait{incarnation: incarnation, seq: d.Seq, until: until}
		}
	}
	r.mu.Unlock()
	select {
	case r.rekillWake <- struct{}{}:
	default: // a wake is pending already
	}
}

// runRekills kills the reaped sessions again every rekillEvery, as long
// as some are within their window. A late statement of a dead process
// that reached the server after the reap's kill started a transaction
// that nothing else would end before the lifetime limit; the next kill
// aborts it. Close stops it, a kill in flight included: the windows are
// then forgotten, as the process's own duty ends with it.
func (r *registry) runRekills() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		pending := len(r.rekill) > 0
		r.mu.Unlock()
		if !pending {
			select {
			case <-r.ctx.Done():
				return
			case <-r.rekillWake:
			}
		}
		t := time.NewTimer(r.rekillEvery)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.killAgain()
	}
}

// killAgain kills the reaped sessions again, but for those recorded
// again since the reap: a process taken for dead while it lived (it missed
// its lease) records its sessions anew before its next transaction on
// each, and a kill would interrupt that transaction (Interrupted, which
// MongoDB does not label transient). A session is forgotten after a kill
// sent at or after the end of its window, so that a late statement that
// reached the server before the end meets a kill at most rekillEvery
// later. A kill that fails is retried at the next tick, the last one for
// up to another window; it is logged at debug level only: the sessions
// were killed once already, and a late statement is rare.
func (r *registry) killAgain() {
	now := time.Now()
	type wait struct {
		id [16]byte
		rekillWait
	}
	var waits []wait
	r.mu.Lock()
	for id, w := range r.rekill {
		waits = append(waits, wait{id, w})
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.ctx, max(r.rekillEvery, killTimeout))
	defer cancel()
	for len(waits) > 0 {
		batch := waits[:min(len(waits), killBatch)]
		waits = waits[len(batch):]
		ids := make(bson.A, len(batch))
		for i, w := range batch {
			ids[i] = bson.Binary{Subtype: bson.TypeBinaryUUID, Data: append([]byte(nil), w.id[:]...)}
		}
		again, err := r.recordedAgain(ctx, ids)
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			// Killed regardless: a dead process's late statement is
			// what the re-kills are for.
			r.log.Debug("orphan reaping: read the reaped sessions recorded again", zap.Int("sessions", len(batch)), zap.Error(err))
		}
		var kill bson.A
		var spared []wait
		for i, w := range batch {
			if rec, ok := again[w.id]; ok && (rec.Incarnation != w.incarnation || rec.Seq != w.seq) {
				spared = append(spared, w)
				continue
			}
			kill = append(kill, ids[i])
		}
		var killed bool
		if len(kill) > 0 {
			err := r.kill(ctx, kill)
			if err != nil && r.ctx.Err() != nil {
				return
			}
			if err != nil {
				r.log.Debug("orphan reaping: kill reaped sessions again", zap.Int("sessions", len(kill)), zap.Error(err))
			}
			killed = err == nil
		}
		r.mu.Lock()
		for _, w := range spared {
			r.forgetRekill(w.id, w.rekillWait)
		}
		for _, w := range batch {
			if !now.Before(w.until) && (killed || now.After(w.until.Add(r.rekillWindow))) {
				r.forgetRekill(w.id, w.rekillWait)
			}
		}
		r.mu.Unlock()
	}
}

// forgetRekill stops the re-kills of id, unless a later reap renewed
// them. Under mu.
func (r *registry) forgetRekill(id [16]byte, w rekillWait) {
	if r.rekill[id] == w {
		delete(r.rekill, id)
	}
}

// recordedAgain reads the registry's records of the sessions ids (as
// kill's), by their UUIDs.
func (r *registry) recordedAgain(ctx context.Context, ids bson.A) (map[[16]byte]sessionDoc, error) {
	cur, err := r.coll.Find(ctx, bson.D{{Key: "kind", Value: kindSession}, {Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "incarnation", Value: 1}, {Key: "seq", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	recs := make(map[[16]byte]sessionDoc, len(docs))
	for _, d := range docs {
		var id [16]byte
		if len(d.ID.Data) == len(id) {
			copy(id[:], d.ID.Data)
			recs[id] = d
		}
	}
	return recs, nil
}

// close stops the goroutines (record refuses from then on) and removes the
// process's documents if clean (the reaper's last kill succeeded), no
// transaction runs on a recorded session and leftOpen (the sessions the
// reaper left open for good) is 0: its sessions need no killing. A scope
// hands its session to the reaper before it releases its count, so
// reading the count first and leftOpen after sees every transaction that
// runs at the close, or ends during it leaving its transaction open.
// Otherwise it leaves the documents, and the lease, no longer renewed,
// expires: another process then kills the sessions, or the next process
// of the instance at its start, if this one died first. A later close
// (Runner.Close again) removes them once it is clean.
//
// It returns an error if it could not remove the documents, or if a
// write of the registry got no answer (a renewal it cut when ctx ended,
// a record cut by its caller): that write may still reach the server
// after the removal and create a document again (findings
// tx-attack29-renewal-cut-lands-after-close,
// tx-attack29-record-cut-lands-after-close). A later close removes
// again what reached it.
func (r *registry) close(ctx context.Context, clean bool, leftOpen func() int) error {
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	running, removed := r.running, r.removed
	r.mu.Unlock()
	if first {
		close(r.quit)
		// Sweeps, prunes and re-kills are cut at once: late, they are
		// harmless. A renewal in flight is not (see renewCtx): close
		// waits for it, within its own ctx.
		r.stop()
		cut := context.AfterFunc(ctx, r.stopRenew)
		r.wg.Wait()
		cut()
		r.stopRenew()
		r.unpark(time.Now().Add(2*r.rekillWindow + r.rekillEvery + killTimeout)) // all of them
	}
	if removed {
		return nil
	}
	if !clean || running > 0 || leftOpen() > 0 {
		if running > 0 {
			r.log.Info("orphan reaping: transactions still run at Close; their sessions stay recorded until the lease expires", zap.Int("running", running))
		}
		return nil
	}
	// Read before the removal: a write that fails after it started before
	// closed was set, and close found running > 0.
	r.mu.Lock()
	unsure := r.unsure
	r.unsure = false
	r.mu.Unlock()
	ctx = mongo.NewSessionContext(ctx, nil)
	_, err := r.coll.DeleteMany(ctx, bson.D{{Key: "kind", Value: kindSession}, {Key: "incarnation", Value: r.incarnation}})
	if err == nil {
		_, err = r.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: r.incarnation}})
	}
	switch {
	case err != nil:
		// Removed last, the lease stays with them: it expires and a
		// sweep removes them, killing sessions that hold nothing.
		return fmt.Errorf("remove this process's registry documents (Close again, later, removes them): %w", err)
	case unsure:
		// Reported once: a later close removes what reached the server.
		return errors.New("removed this process's registry documents, but a write of them got no answer and may still reach the server and create one again (Close again, later, removes it)")
	}
	r.mu.Lock()
	r.removed = true
	r.mu.Unlock()
	return nil
}
