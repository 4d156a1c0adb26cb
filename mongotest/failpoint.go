package mongotest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// txnWriteFailPoint applies onPrimaryTransactionalWrite to a retryable
// write statement about to commit: the connection closes without a reply
// and, with failBeforeCommitExceptionCode, the statement fails unapplied.
func (o *op) txnWriteFailPoint() error {
	if o.retry == nil {
		return nil
	}
	fp := o.s.core.failpoints.matchTxnWrite()
	if fp == nil {
		return nil
	}
	if fp.closeConn {
		o.dropReply = true
	}
	if fp.hasErrorCode {
		return merr.New(fp.errorCode, "Failing write for %d due to failpoint. The write must not be reflected.", o.retry.txnNumber)
	}
	return nil
}

// failpoints holds the failCommand fail point, configured with MongoDB's
// configureFailPoint command (or Server.FailCommand, which sends the same
// document down the same path).
type failpoints struct {
	mu sync.Mutex
	fp *failPoint
	// txnWrite is onPrimaryTransactionalWrite: it fires as a retryable
	// write statement is about to commit (see [op.atomic]).
	txnWrite *failPoint
}

type failPoint struct {
	alwaysOn    bool
	times       int64   // remaining activations when > 0 (mode {times})
	skip        int64   // activations to let pass first (mode {skip})
	probability float64 // chance of firing (mode {activationProbability}), when random
	random      bool
	hasTimes    bool

	commands     map[string]bool
	appName      string
	namespace    string // data.namespace: only commands on it
	closeConn    bool
	errorCode    int32
	hasErrorCode bool
	errorLabels  []string
	hasLabels    bool
	wce          bson.D
	block        time.Duration
	errmsg       string
}

// match returns the fail point to apply to req, consuming one activation.
func (f *failpoints) match(req *request) *failPoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.fp
	if fp == nil || !fp.commands[req.name] {
		return nil
	}
	if fp.appName != "" && fp.appName != req.conn.appName {
		return nil
	}
	if fp.namespace != "" && fp.namespace != requestNamespace(req) {
		return nil
	}
	return consume(&f.fp)
}

// requestNamespace is the namespace failCommand's data.namespace is
// compared with: "<db>.<collection>" for a command on a collection,
// "<db>.$cmd" otherwise.
func requestNamespace(req *request) string {
	if len(req.cmd) > 0 {
		if coll, ok := req.cmd[0].Value.(string); ok && coll != "" {
			return req.db + "." + coll
		}
	}
	return req.db + ".$cmd"
}

// matchTxnWrite returns the onPrimaryTransactionalWrite fail point when it
// fires, consuming one activation.
func (f *failpoints) matchTxnWrite() *failPoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.txnWrite == nil {
		return nil
	}
	return consume(&f.txnWrite)
}

// consume applies *slot's mode to one evaluation: nil when it lets this
// one pass; the fail point, and one activation fewer, when it fires.
// f.mu must be held.
func consume(slot **failPoint) *failPoint {
	fp := *slot
	if fp.skip > 0 {
		fp.skip--
		return nil
	}
	// MongoDB fires a random fail point when a draw in [0, INT32_MAX]
	// is below probability × INT32_MAX: never at 0, always at 1.
	if fp.random && rand.Float64() >= fp.probability {
		return nil
	}
	if fp.hasTimes {
		fp.times--
		if fp.times <= 0 {
			*slot = nil
		}
	}
	return fp
}

func (f *failpoints) set(fp *failPoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fp = fp
}

func cmdConfigureFailPoint(o *op) (bson.D, error) {
	name, ok := o.cmd[0].Value.(string)
	if !ok {
		return nil, typeErr("configureFailPoint", o.cmd[0].Value, "string")
	}
	switch name {
	case "failCommand":
		fp, err := parseFailPoint(o.cmd)
		if err != nil {
			return nil, err
		}
		o.s.core.failpoints.set(fp)
	case "onPrimaryTransactionalWrite":
		fp, err := parseTxnWriteFailPoint(o.cmd)
		if err != nil {
			return nil, err
		}
		f := o.s.core.failpoints
		f.mu.Lock()
		f.txnWrite = fp
		f.mu.Unlock()
	default:
		return nil, merr.New(merr.BadValue, "mongotest supports only the failCommand and onPrimaryTransactionalWrite fail points, not %s", name)
	}
	return ok1(bson.E{Key: "count", Value: int32(0)}), nil
}

// parseTxnWriteFailPoint parses onPrimaryTransactionalWrite. As on
// MongoDB, it closes the connection unless data.closeConnection is false,
// and with data.failBeforeCommitExceptionCode it also fails the statement
// with that code so that its write is not applied.
func parseTxnWriteFailPoint(cmd bson.D) (*failPoint, error) {
	fp, err := parseMode(cmd)
	if fp == nil || err != nil {
		return nil, err
	}
	data, err := docField(cmd, "data")
	if err != nil {
		return nil, err
	}
	fp.closeConn = true
	if v, ok := bsonkit.Get(data, "closeConnection"); ok {
		fp.closeConn, _ = v.(bool)
	}
	if v, ok := bsonkit.Get(data, "failBeforeCommitExceptionCode"); ok {
		n, ok := bsonkit.ToInt64(v)
		if !ok {
			return nil, typeErr("failBeforeCommitExceptionCode", v, "int")
		}
		fp.errorCode, fp.hasErrorCode = int32(n), true
	}
	return fp, nil
}

func parseFailPoint(cmd bson.D) (*failPoint, error) {
	fp, err := parseMode(cmd)
	if fp == nil || err != nil {
		return nil, err
	}
	return parseFailCommandData(cmd, fp)
}

// parseMode parses a fail point's mode; nil, nil means "off".
func parseMode(cmd bson.D) (*failPoint, error) {
	mode, ok := bsonkit.Get(cmd, "mode")
	if !ok {
		return nil, merr.New(merr.BadValue, "Missing mode")
	}
	fp := &failPoint{}
	switch m := mode.(type) {
	case string:
		switch m {
		case "off":
			return nil, nil
		case "alwaysOn":
			fp.alwaysOn = true
		default:
			return nil, merr.New(merr.BadValue, "unknown mode: %s", m)
		}
	case bson.D:
		// As FailPoint::parseBSON: times wins over skip, skip over
		// activationProbability; a negative count is refused.
		key := ""
		for _, k := range []string{"times", "skip", "activationProbability"} {
			if _, has := bsonkit.Get(m, k); has && key == "" {
				key = k
			}
		}
		for _, e := range m {
			if key != "" && e.Key != key {
				continue
			}
			n, ok := bsonkit.ToInt64(e.Value)
			if (e.Key == "times" || e.Key == "skip") && ok && n < 0 {
				return nil, merr.New(merr.BadValue, "'%s' option to 'mode' must be positive", e.Key)
			}
			switch {
			case e.Key == "times" && ok:
				if n == 0 {
					return nil, nil
				}
				fp.times, fp.hasTimes = n, true
			case e.Key == "skip" && ok:
				fp.skip, fp.alwaysOn = n, true
			case e.Key == "activationProbability":
				p, isNum := bsonkit.ToFloat(e.Value)
				if !isNum || !(p >= 0 && p <= 1) {
					return nil, merr.New(merr.BadValue, "activationProbability must be between 0.0 and 1.0")
				}
				fp.probability, fp.random = p, true
			default:
				return nil, merr.New(merr.BadValue, "'mode' must be one of 'off', 'alwaysOn', 'times', 'skip' and 'activationProbability'")
			}
		}
	default:
		return nil, merr.New(merr.TypeMismatch, "'mode' must be a string or JSON object")
	}
	return fp, nil
}

func parseFailCommandData(cmd bson.D, fp *failPoint) (*failPoint, error) {
	data, err := docField(cmd, "data")
	if err != nil {
		return nil, err
	}
	fp.commands = map[string]bool{}
	if cmds, ok := bsonkit.Get(data, "failCommands"); ok {
		arr, ok := cmds.(bson.A)
		if !ok {
			return nil, typeErr("failCommands", cmds, "array")
		}
		for _, c := range arr {
			if s, ok := c.(string); ok {
				fp.commands[s] = true
			}
		}
	} else {
		return nil, merr.New(merr.BadValue, "failCommand fail point requires data.failCommands")
	}
	for _, e := range data {
		switch e.Key {
		case "closeConnection":
			fp.closeConn, _ = e.Value.(bool)
		case "errorCode":
			n, ok := bsonkit.ToInt64(e.Value)
			if !ok {
				return nil, typeErr("errorCode", e.Value, "int")
			}
			fp.errorCode, fp.hasErrorCode = int32(n), true
		case "errorLabels":
			arr, ok := e.Value.(bson.A)
			if !ok {
				return nil, typeErr("errorLabels", e.Value, "array")
			}
			fp.hasLabels = true
			fp.errorLabels = []string{}
			for _, l := range arr {
				if s, ok := l.(string); ok {
					fp.errorLabels = append(fp.errorLabels, s)
				}
			}
		case "writeConcernError":
			d, ok := e.Value.(bson.D)
			if !ok {
				return nil, typeErr("writeConcernError", e.Value, "object")
			}
			fp.wce = d
		case "blockConnection":
			if b, _ := e.Value.(bool); b {
				fp.block = time.Millisecond // refined by blockTimeMS
			}
		case "appName":
			fp.appName, _ = e.Value.(string)
		case "namespace":
			ns, ok := e.Value.(string)
			if !ok {
				return nil, typeErr("namespace", e.Value, "string")
			}
			fp.namespace = ns
		case "errmsg":
			fp.errmsg, _ = e.Value.(string)
		}
	}
	if fp.block > 0 {
		ms, _ := bsonkit.ToInt64(field(data, "blockTimeMS"))
		fp.block = time.Duration(ms) * time.Millisecond
	}
	return fp, nil
}

// applyFailPoint acts on a matched fail point. handled reports that the
// command must not run and reply is its answer (nil: no reply at all).
//
// inTxn, commitOrAbort and retryableWrite describe the command as its
// fields do (autocommit, the command, txnNumber): fail points are
// evaluated before the session is looked at, so they decide the labels.
func (s *Server) applyFailPoint(o *op, fp *failPoint, inTxn, commitOrAbort, retryableWrite bool) (reply bson.D, handled bool) {
	if fp.block > 0 {
		t := time.NewTimer(fp.block)
		select {
		case <-t.C:
		case <-o.ctx.Done():
			t.Stop()
			if !errors.Is(o.ctx.Err(), context.DeadlineExceeded) {
				o.req.conn.closeAfter = true // the server is closing
				return nil, true
			}
			// The block sleeps interruptibly, as MongoDB's does: the
			// command's maxTimeMS ends it, and the command never runs.
			e := merr.New(merr.MaxTimeMSExpired, "operation exceeded time limit")
			e.Labels = serverLabels(e.Code, inTxn, commitOrAbort, retryableWrite)
			return e.Doc(), true
		}
	}
	if fp.closeConn {
		o.req.conn.closeAfter = true
		return nil, true
	}
	if fp.hasErrorCode {
		msg := fp.errmsg
		if msg == "" {
			msg = "Failing command via 'failCommand' failpoint"
		}
		e := merr.New(fp.errorCode, "%s", msg)
		e.Labels = fp.labelsFor(fp.errorCode, inTxn, commitOrAbort, retryableWrite)
		return e.Doc(), true
	}
	if fp.wce != nil {
		o.failWCE = fp
	}
	return nil, false
}

// labelsFor returns the labels a failed command gets: the fail point's own
// when it names them, otherwise the ones the server would add.
// An errorCode reply never carries the fail point's writeConcernError (the
// command fails before write concern is waited for), so NoSuchTransaction
// on commit is transient here.
func (fp *failPoint) labelsFor(code int32, inTxn, commitOrAbort, retryableWrite bool) []string {
	if fp.hasLabels {
		return append([]string(nil), fp.errorLabels...)
	}
	return serverLabels(code, inTxn, commitOrAbort, retryableWrite)
}

// serverLabels returns the labels the server gives an error with code.
func serverLabels(code int32, inTxn, commitOrAbort, retryableWrite bool) []string {
	var labels []string
	if inTxn && ((!commitOrAbort && merr.IsTransient(code)) || (commitOrAbort && merr.IsTransientCommit(code, false))) {
		labels = append(labels, merr.LabelTransient)
	}
	if (retryableWrite || commitOrAbort) && merr.IsRetryable(code) {
		labels = append(labels, merr.LabelRetryableWrite)
	}
	return labels
}

// withWriteConcernError adds the fail point's writeConcernError to a
// successful reply, as the server does after running the command.
func (o *op) withWriteConcernError(reply bson.D) bson.D {
	fp := o.failWCE
	if fp == nil || isErrorReply(reply) || reply == nil {
		return reply
	}
	wce := bsonkit.CloneDoc(fp.wce)
	if _, ok := bsonkit.Get(wce, "codeName"); !ok {
		if code, ok := bsonkit.ToInt64(field(wce, "code")); ok {
			wce = append(wce, bson.E{Key: "codeName", Value: merr.Name(int32(code))})
		}
	}
	reply = append(reply, bson.E{Key: "writeConcernError", Value: wce})
	var labels []string
	if fp.hasLabels {
		labels = fp.errorLabels
	} else if code, ok := bsonkit.ToInt64(field(wce, "code")); ok && (o.retry != nil || o.h.endsTxn()) && merr.IsRetryable(int32(code)) {
		labels = []string{merr.LabelRetryableWrite}
	}
	if len(labels) > 0 {
		arr := bson.A{}
		for _, l := range labels {
			arr = append(arr, l)
		}
		reply = append(reply, bson.E{Key: "errorLabels", Value: arr})
	}
	return reply
}

// FailCommand configures the failCommand fail point, exactly as
// db.adminCommand({configureFailPoint: "failCommand", mode, data}) does.
// Pass mode "off" to clear it.
func (s *Server) FailCommand(mode any, data bson.D) error {
	fp, err := parseFailPoint(bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: mode}, {Key: "data", Value: data}})
	if err != nil {
		return err
	}
	s.core.failpoints.set(fp)
	return nil
}
