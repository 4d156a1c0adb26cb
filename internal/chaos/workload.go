package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Workload generates the operations of one run. Its random choices come
// from the run's seed: worker w of a run draws from its own source seeded
// with (seed, w).
type Workload struct {
	Accounts []string
	Hot      []string
	// Prefix makes operation ids and refs unique across processes (crash
	// mode runs one workload per process epoch).
	Prefix string
	// HTTP shapes operations for the HTTP API: all keyed, their effects
	// found by ledger key, payments moved by webhooks, no composite.
	HTTP bool
	// CancelRate is the probability that an operation's context is
	// cancelled, or given a short deadline, at a random point.
	CancelRate float64

	mu       sync.Mutex
	holds    []string // holds reported made
	payments []payRef // payments reported created
}

type payRef struct{ id, ref, account string }

// AccountName is the name of account i of a run.
func AccountName(i int) string { return fmt.Sprintf("acct-%03d", i) }

// NewWorkload returns a workload over n accounts, the first hot of which
// take half of the traffic.
func NewWorkload(n, hot int, prefix string) *Workload {
	w := &Workload{Prefix: prefix}
	for i := range n {
		w.Accounts = append(w.Accounts, AccountName(i))
	}
	if hot > n {
		hot = n
	}
	w.Hot = w.Accounts[:hot]
	return w
}

// Worker is one concurrent client of a [Workload].
type Worker struct {
	W   *Workload
	ID  int
	Rng *rand.Rand
	B   Backend
	H   Recorder
	// OnRead is told what a balance read returned (for a consistency check).
	OnRead func(account string, balance, held, available int64)

	seq   int
	again []Op // operations to repeat with the same key: failed or unknown
}

// Recorder records operations as they begin and end (a [History], or the
// log of a crash-mode worker process).
type Recorder interface {
	Begin(op *Op)
	// Finish records done, op as it ended, in place of op.
	Finish(op *Op, done Op)
}

// Run runs operations until ctx is done. An operation in progress when ctx
// ends runs to its end on its own context.
func (k *Worker) Run(ctx context.Context) {
	for ctx.Err() == nil {
		k.Step()
	}
}

func (k *Worker) account() string {
	if len(k.W.Hot) > 0 && k.Rng.IntN(2) == 0 {
		return k.W.Hot[k.Rng.IntN(len(k.W.Hot))]
	}
	return k.W.Accounts[k.Rng.IntN(len(k.W.Accounts))]
}

func (k *Worker) other(not string) string {
	for {
		if a := k.account(); a != not {
			return a
		}
	}
}

func (k *Worker) newOp(kind Kind) *Op {
	k.seq++
	id := fmt.Sprintf("%sw%d-%d", k.W.Prefix, k.ID, k.seq)
	return &Op{ID: id, Worker: k.ID, Kind: kind, Ref: id}
}

func (k *Worker) amount() int64 { return 1 + k.Rng.Int64N(50) }

func (k *Worker) keyed(op *Op, p float64) {
	if k.Rng.Float64() < p || k.W.HTTP {
		op.Key = "k-" + op.ID
	}
}

// Step runs one operation (or, for a duplicated webhook, two at once).
func (k *Worker) Step() {
	r := k.Rng.IntN(100)
	switch {
	case r < 14:
		op := k.newOp(OpAdd)
		op.Account, op.Amount = k.account(), k.amount()
		k.keyed(op, 0.5)
		k.do(op)
	case r < 30:
		op := k.newOp(OpDeduct)
		op.Account, op.Amount = k.account(), k.amount()
		k.keyed(op, 0.5)
		k.do(op)
	case r < 42:
		op := k.newOp(OpTransfer)
		op.Account = k.account()
		op.To, op.Amount = k.other(op.Account), k.amount()
		k.keyed(op, 0.5)
		k.do(op)
	case r < 46 && !k.W.HTTP:
		op := k.newOp(OpComposite)
		op.Account = k.account()
		op.To, op.Amount = k.other(op.Account), k.amount()
		k.do(op)
	case r < 56:
		op := k.newOp(OpReserve)
		op.Account, op.Amount = k.account(), k.amount()
		op.TTL = int64(time.Duration(50+k.Rng.IntN(3000)) * time.Millisecond)
		k.keyed(op, 0.3)
		if k.do(op) == Applied {
			k.W.mu.Lock()
			k.W.holds = append(k.W.holds, op.Hold)
			k.W.mu.Unlock()
		}
	case r < 64:
		h := k.pickHold()
		if h == "" {
			return
		}
		op := k.newOp(OpCapture)
		op.Hold, op.Amount = h, 1+k.Rng.Int64N(50)
		k.keyed(op, 0.3)
		k.do(op)
	case r < 70:
		h := k.pickHold()
		if h == "" {
			return
		}
		op := k.newOp(OpRelease)
		op.Hold, op.Ref = h, ""
		k.keyed(op, 0)
		k.do(op)
	case r < 76:
		op := k.newOp(OpPayCreate)
		op.Account, op.Amount = k.account(), 10+k.Rng.Int64N(200)
		k.keyed(op, 0)
		if k.do(op) == Applied {
			k.W.mu.Lock()
			k.W.payments = append(k.W.payments, payRef{op.Payment, op.Ref, op.Account})
			k.W.mu.Unlock()
		}
	case r < 84:
		p, ok := k.pickPayment()
		if !ok {
			return
		}
		if k.Rng.IntN(3) == 0 { // a duplicated webhook: two deliveries at once
			a, b := k.payOp(OpComplete, p), k.payOp(OpComplete, p)
			a.ByRef, b.ByRef = p.ref, p.ref
			if k.Rng.IntN(2) == 0 {
				b.Event = a.Event // one event delivered twice
			}
			rng := k.Rng2(b)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); k.doWith(b, rng) }()
			k.do(a)
			wg.Wait()
			return
		}
		k.do(k.payOp(OpComplete, p))
	case r < 87:
		if p, ok := k.pickPayment(); ok {
			k.do(k.payOp(OpFail, p))
		}
	case r < 90:
		if p, ok := k.pickPayment(); ok {
			k.do(k.payOp(OpRefund, p))
		}
	case r < 94:
		acct := k.account()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		b, h, a, err := k.B.Balance(ctx, acct)
		cancel()
		if err == nil && k.OnRead != nil {
			k.OnRead(acct, b, h, a)
		}
	default:
		k.repeat()
	}
}

// Rng2 returns a source for an operation run on another goroutine, derived
// from the worker's so that the run stays a function of the seed.
func (k *Worker) Rng2(op *Op) *rand.Rand {
	return rand.New(rand.NewPCG(k.Rng.Uint64(), uint64(len(op.ID))))
}

func (k *Worker) payOp(kind Kind, p payRef) *Op {
	op := k.newOp(kind)
	op.Payment, op.Account, op.Ref, op.PayRef, op.Event = p.id, p.account, "", p.ref, "ev-"+op.ID
	k.keyed(op, 0)
	return op
}

func (k *Worker) pickHold() string {
	k.W.mu.Lock()
	defer k.W.mu.Unlock()
	if len(k.W.holds) == 0 {
		return ""
	}
	i := k.Rng.IntN(len(k.W.holds))
	h := k.W.holds[i]
	if len(k.W.holds) > 200 { // forget old holds now and then
		k.W.holds = append(k.W.holds[:0:0], k.W.holds[100:]...)
	}
	return h
}

func (k *Worker) pickPayment() (payRef, bool) {
	k.W.mu.Lock()
	defer k.W.mu.Unlock()
	if len(k.W.payments) == 0 {
		return payRef{}, false
	}
	p := k.W.payments[k.Rng.IntN(len(k.W.payments))]
	if len(k.W.payments) > 200 {
		k.W.payments = append(k.W.payments[:0:0], k.W.payments[100:]...)
	}
	return p, true
}

// repeat runs again, with the same key, an operation that failed or whose
// outcome is unknown, as a client would; now and then with other
// parameters, which must be refused if the first one applied.
func (k *Worker) repeat() {
	if len(k.again) == 0 {
		return
	}
	i := k.Rng.IntN(len(k.again))
	prev := k.again[i]
	k.again = append(k.again[:i], k.again[i+1:]...)
	op := k.newOp(prev.Kind)
	id := op.ID
	*op = prev
	op.ID, op.Repeat, op.Outcome, op.Err, op.Fault, op.Entry = id, prev.ID, Pending, "", "", ""
	op.Start, op.End, op.CtxEnd = time.Time{}, time.Time{}, time.Time{}
	if op.Kind == OpReserve {
		op.Hold = ""
	}
	if k.Rng.IntN(4) == 0 && !k.W.HTTP {
		op.Conflict, op.Amount, op.Ref = true, op.Amount+1, id
	}
	k.do(op)
}

// do runs op on the worker's goroutine, and remembers it for a repeat if
// it failed or its outcome is unknown.
func (k *Worker) do(op *Op) Outcome {
	out := k.doWith(op, k.Rng)
	if op.Key != "" && (out == Failed || out == Unknown) && !op.Conflict && len(k.again) < 64 {
		k.again = append(k.again, *op)
	}
	return out
}

// doWith runs op (on any goroutine) on a context that may be cancelled at a random point, and
// records it.
func (k *Worker) doWith(op *Op, rng *rand.Rand) Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fault := ""
	var ctxEnd time.Time
	if rng.Float64() < k.W.CancelRate {
		d := time.Duration(rng.IntN(80)) * time.Millisecond
		ctxEnd = time.Now().Add(d)
		if rng.IntN(2) == 0 {
			fault = "deadline " + d.String()
			var c2 context.CancelFunc
			ctx, c2 = context.WithTimeout(ctx, d)
			defer c2()
		} else {
			fault = "cancel after " + d.String()
			t := time.AfterFunc(d, cancel)
			defer t.Stop()
		}
	}
	sent := new(Sent)
	ctx = WithSent(ctx, sent)
	if k.W.HTTP && op.Key != "" {
		switch op.Kind {
		case OpAdd, OpDeduct, OpTransfer, OpReserve, OpCapture:
			// The API marks effects with the key, not with a ref.
			op.LedgerKey, op.Ref = LedgerKey(op.Key), ""
		}
	}
	op.Start = time.Now()
	k.H.Begin(op)
	done := *op // the recorder may read op meanwhile
	err := k.B.Do(ctx, &done)
	done.Outcome, done.End = Classify(err, sent.Load()), time.Now()
	if err != nil {
		done.Err = err.Error()
	}
	if fault != "" && ctx.Err() != nil {
		done.Fault = fault // else the operation ended before its context did
		done.CtxEnd = ctxEnd
	}
	k.H.Finish(op, done)
	return done.Outcome
}
