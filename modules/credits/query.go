package credits

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Balance returns account's position. Holds whose time ran out are
// released first (outside a caller's transaction), so Available never
// counts an expired hold for long.
func (s *Service) Balance(ctx context.Context, account string) (Balance, error) {
	b, err := s.balance(ctx, account)
	if err != nil {
		return Balance{}, fmt.Errorf("credits: balance of %.140q: %w", account, err)
	}
	return b, nil
}

func (s *Service) balance(ctx context.Context, account string) (Balance, error) {
	if err := ValidateAccount(account); err != nil {
		return Balance{}, err
	}
	acc, err := s.account(ctx, account)
	if err != nil {
		return Balance{}, err
	}
	if acc.Held > 0 && !inTransaction(ctx) {
		n, err := s.releaseExpired(ctx, account)
		if err != nil {
			return Balance{}, err
		}
		if n > 0 {
			if acc, err = s.account(ctx, account); err != nil {
				return Balance{}, err
			}
		}
	}
	return Balance{Account: acc.ID, Balance: acc.Balance, Held: acc.Held, Available: acc.Available}, nil
}

const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 1000
)

// History returns a page of account's ledger entries, newest first, and
// the cursor of the next page ("" after the last page).
func (s *Service) History(ctx context.Context, account string, q HistoryQuery) ([]Entry, string, error) {
	es, next, err := s.history(ctx, account, q)
	if err != nil {
		return nil, "", fmt.Errorf("credits: history of %.140q: %w", account, err)
	}
	return es, next, nil
}

func (s *Service) history(ctx context.Context, account string, q HistoryQuery) ([]Entry, string, error) {
	if err := ValidateAccount(account); err != nil {
		return nil, "", err
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = defaultHistoryLimit
	case limit < 0 || limit > maxHistoryLimit:
		return nil, "", fmt.Errorf("%w: limit %d not in 1..%d", ErrInvalidOption, limit, maxHistoryLimit)
	}
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		return nil, "", err
	}

	// The account document first: an entry copied out after this read is
	// in the entries collection by the time that is read.
	var acc accountDoc
	err = s.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: account}}).Decode(&acc)
	if errors.Is(err, mongo.ErrNoDocuments) || err == nil && acc.isPlaceholder() {
		return nil, "", ErrAccountNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("read account: %w", err)
	}
	filter := bson.D{{Key: "account", Value: account}}
	if after != nil {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: after.at}}}},
			bson.D{{Key: "createdAt", Value: after.at}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: after.id}}}},
		}})
	}
	cur, err := s.entries.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit+1)))
	if err != nil {
		return nil, "", fmt.Errorf("read entries: %w", err)
	}
	var es []Entry
	if err := cur.All(ctx, &es); err != nil {
		return nil, "", fmt.Errorf("read entries: %w", err)
	}
	for _, p := range acc.Pending {
		if after.before(p) && !slices.ContainsFunc(es, func(e Entry) bool { return e.ID == p.ID }) {
			es = append(es, p)
		}
	}
	slices.SortFunc(es, newestFirst)
	if len(es) <= limit {
		return es, "", nil
	}
	es = es[:limit]
	last := es[limit-1]
	return es, encodeCursor(last), nil
}

func newestFirst(a, b Entry) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// cursor is the position of the last entry of a page.
type cursor struct {
	at time.Time
	id string
}

// before reports whether e comes after the cursor in newest-first order.
// A nil cursor is before everything.
func (c *cursor) before(e Entry) bool {
	return c == nil || newestFirst(Entry{CreatedAt: c.at, ID: c.id}, e) < 0
}

func encodeCursor(e Entry) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(e.CreatedAt.UnixMilli(), 10) + "/" + e.ID))
}

func decodeCursor(s string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: bad cursor", ErrInvalidOption)
	}
	ms, id, ok := strings.Cut(string(b), "/")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || !idPattern.MatchString(id) {
		return nil, fmt.Errorf("%w: bad cursor", ErrInvalidOption)
	}
	return &cursor{at: time.UnixMilli(n).UTC(), id: id}, nil
}
