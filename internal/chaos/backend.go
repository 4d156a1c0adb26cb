package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

// Backend performs the workload's operations on the system under test.
type Backend interface {
	// Do performs op and fills in what it created (Entry, Hold, Payment).
	Do(ctx context.Context, op *Op) error
	// Balance reads an account's position.
	Balance(ctx context.Context, account string) (balance, held, available int64, err error)
}

// Modules is the [Backend] that calls the credits and payments modules
// directly.
type Modules struct {
	Runner   *tx.Runner
	Credits  *credits.Service
	Payments *payments.Service
}

var _ Backend = (*Modules)(nil)

// Do implements [Backend].
func (m *Modules) Do(ctx context.Context, op *Op) error {
	var opts []credits.OpOption
	if op.Ref != "" {
		opts = append(opts, credits.Ref(RefKind, op.Ref))
	}
	if op.Key != "" {
		opts = append(opts, credits.IdempotencyKey(op.Key))
	}
	switch op.Kind {
	case OpAdd:
		e, err := m.Credits.Add(ctx, op.Account, op.Amount, opts...)
		op.Entry = e.ID
		return err
	case OpDeduct:
		e, err := m.Credits.Deduct(ctx, op.Account, op.Amount, opts...)
		op.Entry = e.ID
		return err
	case OpTransfer:
		_, err := m.Credits.Transfer(ctx, op.Account, op.To, op.Amount, opts...)
		return err
	case OpComposite:
		return m.Runner.Run(ctx, func(ctx context.Context) error {
			if _, err := m.Credits.Deduct(ctx, op.Account, op.Amount, opts...); err != nil {
				return err
			}
			_, err := m.Credits.Add(ctx, op.To, op.Amount, opts...)
			return err
		}, tx.WithName("chaos.Composite"))
	case OpReserve:
		h, err := m.Credits.Reserve(ctx, op.Account, op.Amount, time.Duration(op.TTL), opts...)
		if err == nil {
			op.Hold = h.ID
		}
		return err
	case OpCapture:
		e, err := m.Credits.Capture(ctx, op.Hold, op.Amount, opts...)
		op.Entry = e.ID
		return err
	case OpRelease:
		_, err := m.Credits.Release(ctx, op.Hold)
		return err
	case OpPayCreate:
		p, err := m.Payments.Create(ctx, payments.NewPayment{
			Account: op.Account, AmountMinor: op.Amount * 10, Currency: "EUR", Credits: op.Amount,
			Provider: Provider, ProviderRef: op.Ref,
		})
		op.Payment = p.ID
		return err
	case OpComplete:
		if op.ByRef != "" {
			_, err := m.Payments.CompleteByRef(ctx, Provider, op.ByRef)
			return err
		}
		_, err := m.Payments.Complete(ctx, op.Payment)
		return err
	case OpFail:
		_, err := m.Payments.Fail(ctx, op.Payment, "declined by chaos")
		return err
	case OpRefund:
		_, err := m.Payments.Refund(ctx, op.Payment)
		return err
	}
	return fmt.Errorf("chaos: unknown operation %s", op.Kind)
}

// Balance implements [Backend].
func (m *Modules) Balance(ctx context.Context, account string) (int64, int64, int64, error) {
	b, err := m.Credits.Balance(ctx, account)
	return b.Balance, b.Held, b.Available, err
}
