package tx

import (
	"context"
	"errors"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The error labels MongoDB's convenient-transaction rules act on.
const (
	labelTransient     = "TransientTransactionError"
	labelUnknownCommit = "UnknownTransactionCommitResult"
)

// codeMaxTimeMSExpired is the server's MaxTimeMSExpired code: a commit that
// ran out of its own time limit is not retried, even when labelled
// UnknownTransactionCommitResult.
const (
	codeMaxTimeMSExpired  = 50
	codeNoSuchTransaction = 251
)

// hasLabel reports whether any error in err's tree carries label. Unlike a
// single errors.As, it does not stop at the first labelled error, so a
// wrapper that implements HasErrorLabel cannot hide the driver's error.
func hasLabel(err error, label string) bool {
	for err != nil {
		if le, ok := err.(mongo.LabeledError); ok && le.HasErrorLabel(label) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if hasLabel(e, label) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// isMaxTimeMSExpired reports whether err is a MaxTimeMSExpired error, as a
// command error or as a commit's write concern error (which the driver
// turns into a command error).
func isMaxTimeMSExpired(err error) bool {
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.IsMaxTimeMSExpiredError() {
		return true
	}
	var we mongo.WriteException
	if errors.As(err, &we) && we.WriteConcernError != nil && we.WriteConcernError.IsMaxTimeMSExpiredError() {
		return true
	}
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(codeMaxTimeMSExpired)
}

// bound returns the upper bound of the wait before retry k (k ≥ 1).
func (b Backoff) bound(k int) time.Duration {
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(k-1))
	if d >= float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.Max
	}
	return time.Duration(d)
}

// delay returns the wait before retry k for a jitter ratio in [0, 1).
func (b Backoff) delay(k int, jitter float64) time.Duration {
	return time.Duration(float64(b.bound(k)) * jitter)
}

// sleep waits d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
