package mongotest

import (
	"context"
	"errors"
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// errOpKilled is the cause of a command's wait context when killOp kills
// it.
var errOpKilled = errors.New("operation killed")

// killable returns ctx, also cancelled (cause errOpKilled) when killOp
// kills o, for o to wait under; call stop when the wait is over. Only a
// command that waits pays for the context, as [sessionOp.waitContext].
func (o *op) killable(ctx context.Context) (kctx context.Context, stop func()) {
	c := o.conn()
	if c == nil {
		return ctx, func() {}
	}
	kctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	if c.cur.killed {
		cancel(errOpKilled)
	} else {
		c.cur.interrupt = cancel
	}
	c.mu.Unlock()
	return kctx, func() {
		c.mu.Lock()
		c.cur.interrupt = nil
		c.mu.Unlock()
		cancel(nil)
	}
}

// interrupted reports whether ctx ended because the command's session or
// the command itself was killed: MongoDB's Interrupted.
func interrupted(ctx context.Context) bool {
	cause := context.Cause(ctx)
	return errors.Is(cause, errSessionKilled) || errors.Is(cause, errOpKilled)
}

// killOp marks the command opid killed, interrupting its wait if it
// waits, as OperationContext::markKilled does; a command that does not
// wait ends as it would have.
func (s *Server) killOp(opid int32) {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		if c.cur.req != nil && c.cur.opid == opid {
			c.cur.killed = true
			if c.cur.interrupt != nil {
				c.cur.interrupt(errOpKilled)
			}
		}
		c.mu.Unlock()
	}
}

// cmdKillOp is {killOp: 1, op: <opid>} (KillOpCmdBase::parseOpId: an
// integral number within int32).
func cmdKillOp(o *op) (bson.D, error) {
	v, ok := bsonkit.Get(o.cmd, "op")
	if !ok {
		return nil, merr.New(merr.NoSuchKey, "Missing expected field \"op\"")
	}
	if !bsonkit.IsNumber(v) {
		return nil, merr.New(merr.TypeMismatch, "Expected field \"op\" to have numeric type, but found %s", bsonkit.TypeAlias(v))
	}
	n, exact := bsonkit.ToInt64(v)
	if f, _ := bsonkit.ToFloat(v); !exact || float64(n) != f {
		return nil, merr.New(merr.BadValue, "Expected field \"op\" to have a value exactly representable as a 64-bit integer, but found op: %s", bsonkit.FormatValue(v))
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return nil, merr.New(merr.BadValue, "opid out of range")
	}
	o.s.killOp(int32(n))
	return ok1(bson.E{Key: "info", Value: "attempting to kill op"}), nil
}
