package credits

import (
	"context"
	"fmt"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/tx"
)

// Reconcile checks the ledger's invariants for every account, on one
// snapshot: balance = sum of its entries (copied out or still embedded),
// held = sum of its open holds, available = balance - held, and none of
// them negative. It reports every mismatch; an error means the check
// could not run.
//
// It reads the whole ledger in one snapshot transaction, which a real
// MongoDB bounds by transactionLifetimeLimitSeconds (60s by default).
func (s *Service) Reconcile(ctx context.Context) (Report, error) {
	r, err := tx.Do(ctx, s.runner, s.reconcile, tx.WithName("credits.Reconcile"))
	if err != nil {
		return Report{}, fmt.Errorf("credits: reconcile: %w", err)
	}
	return r, nil
}

// addInt64 adds two int64s and reports whether the sum overflowed.
func addInt64(a, b int64) (int64, bool) {
	r := a + b
	return r, (a > 0 && b > 0 && r < 0) || (a < 0 && b < 0 && r >= 0)
}

// exact is a sum of int64s, exact whatever its size or the order of its
// terms: a partial sum may pass the int64 range that the total is in.
type exact struct{ v big.Int }

func (x *exact) add(n int64) { x.v.Add(&x.v, big.NewInt(n)) }

// int64 returns the sum and whether it fits an int64.
func (x *exact) int64() (int64, bool) {
	if !x.v.IsInt64() {
		if x.v.Sign() < 0 {
			return math.MinInt64, false
		}
		return math.MaxInt64, false
	}
	return x.v.Int64(), true
}

func (s *Service) reconcile(ctx context.Context) (Report, error) {
	var r Report
	entrySums, n, err := s.groupSums(ctx, s.entries, bson.D{})
	if err != nil {
		return r, fmt.Errorf("sum entries: %w", err)
	}
	r.Entries = n
	heldSums, _, err := s.groupSums(ctx, s.holds, bson.D{{Key: "status", Value: HoldOpen}})
	if err != nil {
		return r, fmt.Errorf("sum holds: %w", err)
	}

	cur, err := s.accounts.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return r, fmt.Errorf("read accounts: %w", err)
	}
	defer cur.Close(ctx)
	seen := map[string]bool{}
	for cur.Next(ctx) {
		var acc accountDoc
		if err := cur.Decode(&acc); err != nil {
			return r, fmt.Errorf("decode account: %w", err)
		}
		if acc.isPlaceholder() {
			// No account: entries or holds of it are reported below as
			// of a missing account.
			continue
		}
		r.Accounts++
		seen[acc.ID] = true
		bal := entrySums[acc.ID]
		if bal == nil {
			bal = &exact{}
		}
		pending, err := s.notCopied(ctx, acc.Pending)
		if err != nil {
			return r, err
		}
		for _, e := range pending {
			bal.add(e.Amount)
			r.Entries++
		}
		held := heldSums[acc.ID]
		if held == nil {
			held = &exact{}
		}
		r.Mismatches = append(r.Mismatches, check(acc, bal, held)...)
	}
	if err := cur.Err(); err != nil {
		return r, fmt.Errorf("read accounts: %w", err)
	}
	for _, m := range []map[string]*exact{entrySums, heldSums} {
		for id, v := range m {
			if !seen[id] {
				n, _ := v.int64()
				r.Mismatches = append(r.Mismatches, Mismatch{Account: id, Field: "account", Computed: n,
					Detail: "entries or open holds of an account that does not exist"})
				seen[id] = true
			}
		}
	}
	return r, nil
}

func check(acc accountDoc, bal, held *exact) []Mismatch {
	var ms []Mismatch
	mismatch := func(field string, stored int64, computed int64, fits bool, detail string) {
		if !fits {
			detail = "sum overflows int64"
		}
		ms = append(ms, Mismatch{Account: acc.ID, Field: field, Stored: stored, Computed: computed, Detail: detail})
	}
	b, bfits := bal.int64()
	if !bfits || b != acc.Balance {
		mismatch("balance", acc.Balance, b, bfits, "balance differs from the sum of its entries")
	}
	h, hfits := held.int64()
	if !hfits || h != acc.Held {
		mismatch("held", acc.Held, h, hfits, "held differs from the sum of its open holds")
	}
	avail, overflow := addInt64(acc.Balance, -acc.Held)
	if acc.Held == math.MinInt64 {
		overflow = true
	}
	if overflow || avail != acc.Available {
		mismatch("available", acc.Available, avail, !overflow, "available differs from balance - held")
	}
	switch {
	case acc.Balance < 0:
		mismatch("balance", acc.Balance, b, bfits, "negative balance")
	case acc.Held < 0:
		mismatch("held", acc.Held, h, hfits, "negative held amount")
	case acc.Available < 0:
		mismatch("available", acc.Available, avail, !overflow, "negative available balance")
	}
	return ms
}

// groupSums sums the amount field of coll's documents matching match, per
// account, on the server. A partial sum that overflows int64 makes the
// server answer a double (MongoDB's rule), which is inexact: such an
// account's amounts are summed again here, exactly.
func (s *Service) groupSums(ctx context.Context, coll *mongo.Collection, match bson.D) (map[string]*exact, int64, error) {
	cur, err := coll.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: match}},
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: "$account"},
			{Key: "sum", Value: bson.D{{Key: "$sum", Value: "$amount"}}},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
		}}},
	})
	if err != nil {
		return nil, 0, err
	}
	var rows []struct {
		ID  string        `bson:"_id"`
		Sum bson.RawValue `bson:"sum"`
		N   int64         `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, 0, err
	}
	out := make(map[string]*exact, len(rows))
	var total int64
	for _, row := range rows {
		total += row.N
		x := &exact{}
		switch row.Sum.Type {
		case bson.TypeInt64:
			x.add(row.Sum.Int64())
		case bson.TypeInt32:
			x.add(int64(row.Sum.Int32()))
		default:
			if err := s.sumExactly(ctx, coll, append(bson.D{{Key: "account", Value: row.ID}}, match...), x); err != nil {
				return nil, 0, err
			}
		}
		out[row.ID] = x
	}
	return out, total, nil
}

// sumExactly adds the amounts of coll's documents matching filter to x.
func (s *Service) sumExactly(ctx context.Context, coll *mongo.Collection, filter bson.D, x *exact) error {
	cur, err := coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "amount", Value: 1}}))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d struct {
			Amount int64 `bson:"amount"`
		}
		if err := cur.Decode(&d); err != nil {
			return err
		}
		x.add(d.Amount)
	}
	return cur.Err()
}

// notCopied returns the embedded entries that are not yet in the entries
// collection (a copy may have inserted them but not yet removed them).
func (s *Service) notCopied(ctx context.Context, pending []Entry) ([]Entry, error) {
	if len(pending) == 0 {
		return nil, nil
	}
	ids := make(bson.A, len(pending))
	for i, e := range pending {
		ids[i] = e.ID
	}
	cur, err := s.entries.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read copied entries: %w", err)
	}
	var copied []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &copied); err != nil {
		return nil, fmt.Errorf("read copied entries: %w", err)
	}
	done := make(map[string]bool, len(copied))
	for _, c := range copied {
		done[c.ID] = true
	}
	out := pending[:0:0]
	for _, e := range pending {
		if !done[e.ID] {
			out = append(out, e)
		}
	}
	return out, nil
}
