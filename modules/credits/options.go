package credits

import (
	"fmt"
	"regexp"
	"time"

	"go.uber.org/zap"
)

// An Option configures a [Service].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	log        *zap.Logger
	now        func() time.Time
	sweepEvery time.Duration
	flushEvery int64
	prefix     string
	fastWrites int
	// keyRetention is how long an idempotency key is remembered.
	keyRetention time.Duration
}

func defaultConfig() config {
	return config{
		log:        zap.NewNop(),
		now:        time.Now,
		sweepEvery: 5 * time.Second,
		flushEvery: 256,
		prefix:     "credit_",
		fastWrites: 32,

		keyRetention: DefaultKeyRetention,
	}
}

// WithLogger sets the logger of the background sweeper. A nil logger, like
// the default, discards.
func WithLogger(log *zap.Logger) Option {
	return optionFunc(func(c *config) {
		if log != nil {
			c.log = log
		}
	})
}

// WithClock sets the clock that stamps entries and decides hold expiry;
// time.Now by default. Tests use it to expire holds without sleeping.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}

// WithSweepInterval sets how often the sweeper started by [Service.Start]
// releases expired holds and copies embedded entries to the entries
// collection. The default is 5s.
func WithSweepInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.sweepEvery = d
		}
	})
}

// WithFlushEvery sets after how many single-document writes an account's embedded
// entries are copied to the entries collection by the writer itself (the
// sweeper copies the rest). The default is 256.
func WithFlushEvery(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.flushEvery = int64(n)
		}
	})
}

// WithMaxFastWrites bounds how many single-document writes (see the
// package documentation) one Service sends at a time; 32 by default. A
// write takes a slot only while it is sent, and one account has at most
// one write in flight, so writers waiting behind one account hold up that
// account only. It must stay well below the client's connection pool
// size (maxPoolSize, 100 by default): MongoDB makes a plain write that
// meets a document written by an uncommitted transaction wait for that
// transaction, on its connection. Were every connection taken by such
// waiting writes, the transaction could never get one to commit, and all
// of them would wait until the server's transaction lifetime limit.
func WithMaxFastWrites(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.fastWrites = n
		}
	})
}

// DefaultKeyRetention is how long an idempotency key is remembered unless
// [WithKeyRetention] says otherwise: 24 hours, as Stripe keeps its keys.
const DefaultKeyRetention = 24 * time.Hour

// WithKeyRetention sets how long an idempotency key is remembered after
// its first use (24h by default). Within it, a repeat of the key returns
// the first result; after it, the key names a new operation. Records are
// deleted by a TTL index on expiresAt, some time after they expire; until
// then an expired record is ignored. A retention under a minute is
// raised to one minute.
func WithKeyRetention(d time.Duration) Option {
	return optionFunc(func(c *config) {
		c.keyRetention = max(d, time.Minute)
	})
}

// WithCollectionPrefix sets the prefix of the service's collection names
// ("credit_" by default: credit_accounts, credit_entries, credit_holds,
// credit_idempotency).
func WithCollectionPrefix(p string) Option {
	return optionFunc(func(c *config) { c.prefix = p })
}

// An OpOption qualifies one mutation: its idempotency key, reason and
// business reference.
type OpOption interface {
	applyOp(*opConfig)
}

type opFunc func(*opConfig)

func (f opFunc) applyOp(c *opConfig) { f(c) }

type opConfig struct {
	key      string
	replayed *bool
	reason   string
	refKind  string
	refID    string
}

// IdempotencyKey makes the mutation idempotent: repeating it with the same
// key and the same parameters returns the first result and changes
// nothing; with other parameters it fails with [ErrIdempotencyConflict].
// Keys are global to the service (not per account), at most 256 bytes.
func IdempotencyKey(key string) OpOption {
	return opFunc(func(c *opConfig) { c.key = key })
}

// Replayed makes a mutation with an [IdempotencyKey] (Add, Deduct,
// Transfer, Reserve, Capture) set *p to whether it returned the result of
// an earlier call with the same key instead of applying anything (an HTTP
// layer reports it to its client).
func Replayed(p *bool) OpOption {
	return opFunc(func(c *opConfig) { c.replayed = p })
}

// Reason records a human-readable reason on the entry (at most 512 bytes).
func Reason(reason string) OpOption {
	return opFunc(func(c *opConfig) { c.reason = reason })
}

// Ref links the entry to a business object, e.g. Ref("payment", id) or
// Ref("message", msgID). Both parts must be plain ids like accounts.
func Ref(kind, id string) OpOption {
	return opFunc(func(c *opConfig) { c.refKind, c.refID = kind, id })
}

const (
	maxKeyLen    = 256
	maxReasonLen = 512
)

// idPattern is what account ids and references must look like: a plain
// id, never anything MongoDB could read as an operator or a path.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// ValidateAccount returns nil if account is a well-formed account id, and
// an error matching [ErrInvalidAccount] otherwise.
func ValidateAccount(account string) error {
	if !idPattern.MatchString(account) {
		return fmt.Errorf("%w: %.140q must match %s", ErrInvalidAccount, account, idPattern)
	}
	return nil
}

func opConfigOf(opts []OpOption) (opConfig, error) {
	var c opConfig
	for _, o := range opts {
		if o != nil {
			o.applyOp(&c)
		}
	}
	switch {
	case len(c.key) > maxKeyLen:
		return c, fmt.Errorf("%w: idempotency key longer than %d bytes", ErrInvalidOption, maxKeyLen)
	case len(c.reason) > maxReasonLen:
		return c, fmt.Errorf("%w: reason longer than %d bytes", ErrInvalidOption, maxReasonLen)
	case (c.refKind != "" || c.refID != "") && (!idPattern.MatchString(c.refKind) || !idPattern.MatchString(c.refID)):
		return c, fmt.Errorf("%w: reference %q/%q is not a plain id", ErrInvalidOption, c.refKind, c.refID)
	}
	return c, nil
}
