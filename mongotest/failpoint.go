package mongotest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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
	// entered counts the activations of each fail point, over all its
	// settings: configureFailPoint answers it as count.
	entered, txnWriteEntered int64
}

type failPoint struct {
	alwaysOn    bool
	times       int64   // remaining activations when > 0 (mode {times})
	skip        int64   // activations to let pass first (mode {skip})
	probability float64 // chance of firing (mode {activationProbability}), when random
	random      bool
	hasTimes    bool

	commands     map[string]bool
	allCommands  bool // failAllCommands
	appName      *string
	threadName   *string
	namespace    *string
	closeConn    bool
	errorCode    int32
	hasErrorCode bool
	errorLabels  []string
	hasLabels    bool
	wce          bson.D
	block        time.Duration
	blocks       bool // data.blockConnection
	// blockErr: blockConnection without a valid blockTimeMS, which fails
	// each command the fail point fires on (evaluateFailCommandFailPoint).
	blockErr error
	errmsg   string
}

// match returns the fail point to apply to req, consuming one activation.
func (f *failpoints) match(req *request) *failPoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.fp
	// evaluateFailCommandFailPoint fires only for a fail point that
	// closes, blocks or fails: one with only a writeConcernError is left
	// for [failpoints.matchWCE].
	if fp == nil || !fp.applies(req) || !(fp.closeConn || fp.blocks || fp.hasErrorCode) {
		return nil
	}
	return consume(&f.fp, &f.entered)
}

// matchWCE returns the fail point whose writeConcernError a command that
// waits for write concern gets, consuming one activation: mongod
// evaluates it apart, where it waits for write concern
// (RunCommandAndWaitForWriteConcern::_waitForWriteConcern).
func (f *failpoints) matchWCE(req *request) *failPoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fp == nil || f.fp.wce == nil || !f.fp.applies(req) {
		return nil
	}
	return consume(&f.fp, &f.entered)
}

// applies is MongoDB's shouldActivateFailCommandFailPoint (commands.cpp),
// which names a command by any of its aliases:
// a command the fail point does not select runs normally and does not
// consume an activation (FailPoint::executeIf).
func (fp *failPoint) applies(req *request) bool {
	if req.name == "configureFailPoint" { // never, even when listed
		return false
	}
	var appName, threadName string
	if req.conn != nil {
		appName, threadName = req.conn.appName, fmt.Sprintf("conn%d", req.conn.id)
	}
	switch {
	case fp.threadName != nil && *fp.threadName != threadName,
		fp.appName != nil && *fp.appName != appName,
		fp.namespace != nil && *fp.namespace != failPointNamespace(req):
		return false
	}
	return fp.allCommands || fp.commands[commandName(req.name)]
}

// failPointNamespace is the namespace a fail point's data.namespace is
// compared with: the command's collection ("db.coll"), the getMore's
// collection, renameCollection's source, "db.$cmd.aggregate" for a
// collectionless aggregate, "db.$cmd" for the rest.
func failPointNamespace(req *request) string {
	switch req.name {
	case "getMore":
		if c, ok := field(req.cmd, "collection").(string); ok {
			return req.db + "." + c
		}
	case "renameCollection":
		if from, ok := req.cmd[0].Value.(string); ok {
			return from
		}
	case "aggregate":
		if _, ok := req.cmd[0].Value.(string); !ok {
			return req.db + ".$cmd.aggregate"
		}
	}
	if len(req.cmd) > 0 {
		if c, ok := req.cmd[0].Value.(string); ok && c != "" {
			return req.db + "." + c
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
	return consume(&f.txnWrite, &f.txnWriteEntered)
}

// consume applies *slot's mode to one evaluation: nil when it lets this
// one pass; the fail point, and one activation fewer, when it fires
// (counted in *entered). f.mu must be held.
func consume(slot **failPoint, entered *int64) *failPoint {
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
	*entered++
	return fp
}

// set installs the failCommand fail point and returns the times the
// previous settings were entered (FailPoint::setMode).
func (f *failpoints) set(fp *failPoint) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fp = fp
	return f.entered
}

func cmdConfigureFailPoint(o *op) (bson.D, error) {
	name, ok := o.cmd[0].Value.(string)
	if !ok {
		return nil, typeErr("configureFailPoint", o.cmd[0].Value, "string")
	}
	var count int64
	switch name {
	case "failCommand":
		fp, err := parseFailPoint(o.cmd)
		if err != nil {
			return nil, err
		}
		count = o.s.core.failpoints.set(fp)
	case "onPrimaryTransactionalWrite":
		fp, err := parseTxnWriteFailPoint(o.cmd)
		if err != nil {
			return nil, err
		}
		f := o.s.core.failpoints
		f.mu.Lock()
		f.txnWrite = fp
		count = f.txnWriteEntered
		f.mu.Unlock()
	default:
		return nil, merr.New(merr.BadValue, "mongotest supports only the failCommand and onPrimaryTransactionalWrite fail points, not %s", name)
	}
	if count <= math.MaxInt32 {
		return ok1(bson.E{Key: "count", Value: int32(count)}), nil
	}
	return ok1(bson.E{Key: "count", Value: count}), nil
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

// parseMode parses a fail point's mode as FailPoint::parseBSON does
// (src/mongo/util/fail_point.cpp); nil, nil means "off". A mode document
// is read by the first of times, skip and activationProbability it holds:
// {times: 1, skip: 1} is times 1.
func parseMode(cmd bson.D) (*failPoint, error) {
	mode, ok := bsonkit.Get(cmd, "mode")
	if !ok {
		return nil, merr.New(merr.IllegalOperation, "When setting a failpoint, you must supply a 'mode'")
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
		if v, ok := bsonkit.Get(m, "times"); ok {
			n, err := modeCount(v, "times")
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, nil
			}
			fp.times, fp.hasTimes = n, true
		} else if v, ok := bsonkit.Get(m, "skip"); ok {
			n, err := modeCount(v, "skip")
			if err != nil {
				return nil, err
			}
			fp.skip, fp.alwaysOn = n, true
		} else if v, ok := bsonkit.Get(m, "activationProbability"); ok {
			p, isNum := bsonkit.ToFloat(v)
			if !isNum {
				return nil, merr.New(merr.TypeMismatch, "the 'activationProbability' option to 'mode' must be a double between 0 and 1")
			}
			if !(p >= 0 && p <= 1) {
				return nil, merr.New(merr.BadValue, "activationProbability must be between 0.0 and 1.0; found %v", p)
			}
			fp.probability, fp.random = p, true
		} else {
			return nil, merr.New(merr.BadValue, "'mode' must be one of 'off', 'alwaysOn', 'times', and 'activationProbability'")
		}
	default:
		return nil, merr.New(merr.TypeMismatch, "'mode' must be a string or JSON object")
	}
	return fp, nil
}

// modeCount reads mode.times or mode.skip: a whole number in [0, 2^31).
func modeCount(v any, key string) (int64, error) {
	if !bsonkit.IsNumber(v) {
		return 0, merr.New(merr.TypeMismatch, "\"%s\" had the wrong type. Expected number, found %s", key, bsonkit.TypeAlias(v))
	}
	n, ok := bsonkit.ToInt64(v)
	if !ok {
		return 0, merr.New(merr.BadValue, "Expected field \"%s\" to have a value exactly representable as a 64-bit integer, but found %v", key, v)
	}
	switch {
	case n < 0:
		return 0, merr.New(merr.BadValue, "'%s' option to 'mode' must be positive", key)
	case n > math.MaxInt32:
		return 0, merr.New(merr.BadValue, "'%s' option to 'mode' is too large", key)
	}
	return n, nil
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
				fp.commands[commandName(s)] = true
			}
		}
	}
	strField := func(e bson.E) (*string, error) {
		s, ok := e.Value.(string)
		if !ok {
			return nil, typeErr(e.Key, e.Value, "string")
		}
		return &s, nil
	}
	for _, e := range data {
		var err error
		switch e.Key {
		case "failAllCommands":
			// MongoDB tests the field's presence, not its value.
			fp.allCommands = true
		case "appName":
			fp.appName, err = strField(e)
		case "threadName":
			fp.threadName, err = strField(e)
		case "namespace":
			fp.namespace, err = strField(e)
		case "errorExtraInfo":
			// MongoDB parses it by the error code's extra-info type;
			// refused rather than answered without it.
			err = merr.New(merr.BadValue, "mongotest does not support the failCommand fail point's errorExtraInfo")
		case "failInternalCommands", "failLocalClients":
			// They widen the fail point to internal and in-process
			// clients of mongod, which mongotest does not have.
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
				fp.block, fp.blocks = time.Millisecond, true // refined by blockTimeMS
			}
		case "errmsg":
			fp.errmsg, _ = e.Value.(string)
		}
		if err != nil {
			return nil, err
		}
	}
	if fp.block > 0 {
		// Checked when the fail point fires, as MongoDB does: the command
		// fails instead of running unblocked.
		v, has := bsonkit.Get(data, "blockTimeMS")
		ms, isInt := bsonkit.ToInt64(v)
		switch {
		case !has || !isInt:
			fp.blockErr = merr.New(merr.InvalidOptions, "must specify 'blockTimeMS' when 'blockConnection' is true")
		case ms < 0:
			fp.blockErr = merr.New(merr.InvalidOptions, "'blockTimeMS' must be non-negative")
		}
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
	var me *merr.Error
	if errors.As(fp.blockErr, &me) {
		e := merr.New(me.Code, "%s", me.Msg)
		e.Labels = fp.labelsFor(e.Code, inTxn, commitOrAbort, retryableWrite)
		return e.Doc(), true
	}
	if fp.block > 0 {
		ctx := o.ctx
		if lsid, ok := bsonkit.Get(o.req.cmd, "lsid"); ok {
			var stop func()
			ctx, stop = s.core.sessions.block(ctx, lsid)
			defer stop()
		}
		ctx, stop := o.killable(ctx)
		defer stop()
		t := time.NewTimer(fp.block)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if interrupted(ctx) {
				// killSessions and killOp interrupt the block (an interruptible
				// sleepFor in evaluateFailCommandFailPoint, commands.cpp).
				e := merr.New(merr.Interrupted, "operation was interrupted")
				e.Labels = serverLabels(e.Code, inTxn, commitOrAbort, retryableWrite)
				return e.Doc(), true
			}
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
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

// withWriteConcernError adds the failCommand fail point's
// writeConcernError to the reply of a command that waits for write
// concern, successful or failed (_handleError waits too), verbatim and
// only when the reply has none yet, as _waitForWriteConcern does. A reply
// the fail point itself produced never gets one: that command failed
// before it ran.
func (o *op) withWriteConcernError(reply bson.D) bson.D {
	if reply == nil || o.injected || !(o.h.supportsWriteConcern(o.cmd) || o.writes) {
		return reply
	}
	if _, has := bsonkit.Get(reply, "writeConcernError"); has {
		return reply
	}
	fp := o.s.core.failpoints.matchWCE(o.req)
	if fp == nil {
		return reply
	}
	out := make(bson.D, 0, len(reply)+2)
	var labels bson.A
	for _, e := range reply {
		if e.Key == "errorLabels" {
			labels, _ = e.Value.(bson.A)
			continue
		}
		out = append(out, e)
	}
	out = append(out, bson.E{Key: "writeConcernError", Value: bsonkit.CloneDoc(fp.wce)})
	if fp.hasLabels {
		// The fail point's labels replace the server's (errorLabelsOverride).
		labels = bson.A{}
		for _, l := range fp.errorLabels {
			labels = append(labels, l)
		}
	} else if code, ok := bsonkit.ToInt64(field(fp.wce, "code")); ok && (o.retry != nil || o.h.endsTxn()) && merr.IsRetryable(int32(code)) && !slices.Contains(labels, any(merr.LabelRetryableWrite)) {
		labels = append(labels, merr.LabelRetryableWrite)
	}
	if len(labels) > 0 {
		out = append(out, bson.E{Key: "errorLabels", Value: labels})
	}
	return out
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
