package tx

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

var _ Observer = (*ZapObserver)(nil)

// ZapObserver logs scope events with zap, at the level an operator should
// act on: begin, commit and end at debug; a retry after a transient error
// (a write conflict, normal under concurrency) at debug too, while a retry
// caused by an infrastructure failure (an unknown commit result, a network
// error) is at warn; aborts and rollback-only marks caused by the
// callback's own errors (a business rule said no) or by a cancellation at
// info; infrastructure failures (see [Event.Infrastructure]), exhausted
// retries and commits of unknown outcome at error.
type ZapObserver struct {
	log *zap.Logger
}

// NewZapObserver returns an observer that logs to log; a nil log discards.
func NewZapObserver(log *zap.Logger) *ZapObserver {
	if log == nil {
		log = zap.NewNop()
	}
	return &ZapObserver{log: log}
}

// Observe logs e.
func (o *ZapObserver) Observe(e Event) {
	if o == nil || o.log == nil {
		return
	}
	level, msg := zapcore.DebugLevel, ""
	switch e.Kind {
	case EventBegin:
		msg = "transaction scope begin"
	case EventCommit:
		msg = "transaction committed"
	case EventEnd:
		msg = "transaction scope end"
		if e.Infrastructure {
			level = zapcore.ErrorLevel
		}
	case EventRetry:
		msg = "transaction retry"
		if e.Infrastructure {
			level = zapcore.WarnLevel
		}
	case EventCommitUnknown:
		level, msg = zapcore.ErrorLevel, "transaction commit outcome unknown"
	case EventAbort, EventRollbackOnly:
		msg = "transaction aborted"
		if e.Kind == EventRollbackOnly {
			msg = "transaction marked rollback-only"
		}
		level = zapcore.InfoLevel
		if e.Infrastructure {
			level = zapcore.ErrorLevel
		}
	case EventHookPanic:
		level, msg = zapcore.ErrorLevel, "after-commit hook panicked"
	default:
		msg = "transaction event"
	}
	ce := o.log.Check(level, msg)
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 10)
	fields = append(fields,
		zap.String("tx", e.Name),
		zap.Stringer("propagation", e.Propagation),
		zap.Int("attempt", e.Attempt),
	)
	if e.Joined {
		fields = append(fields, zap.Bool("joined", true))
	}
	if !e.Transactional {
		fields = append(fields, zap.Bool("transactional", false))
	}
	if e.Kind != EventBegin {
		fields = append(fields, zap.Duration("duration", e.Duration))
	}
	if e.Kind == EventRetry {
		fields = append(fields, zap.Duration("backoff", e.Backoff), zap.Bool("commitOnly", e.CommitOnly))
	}
	if e.Err != nil {
		fields = append(fields, zap.Error(e.Err))
		if len(e.Labels) > 0 {
			fields = append(fields, zap.Strings("labels", e.Labels))
		}
	}
	if pe, ok := e.Err.(*PanicError); ok {
		fields = append(fields, zap.ByteString("stack", pe.Stack))
	}
	ce.Write(fields...)
}
