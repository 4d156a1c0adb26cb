package mongotest

import (
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// execute runs o under its session's rules: transactions, retryable
// writes, fail points, error labels.
func (ss *sessions) execute(o *op) (bson.D, error) {
	lsidV, hasLsid := bsonkit.Get(o.cmd, "lsid")
	txnNumV, hasTxn := bsonkit.Get(o.cmd, "txnNumber")
	autocommitV, hasAutocommit := bsonkit.Get(o.cmd, "autocommit")
	if err := checkSessionInfo(o.cmd, hasLsid, txnNumV, hasTxn, autocommitV, hasAutocommit); err != nil {
		return nil, err
	}
	if !hasAutocommit {
		if err := checkPlainReadConcern(o); err != nil {
			return nil, err
		}
	}
	// As MongoDB, failCommand is evaluated before the command touches its
	// session: an injected error or closed connection leaves no
	// transaction started, none aborted, and no retryable write recorded.
	if fp := ss.c.failpoints.match(o.req); fp != nil {
		retryable := hasTxn && !hasAutocommit && o.h.write
		if reply, handled := o.s.applyFailPoint(o, fp, hasAutocommit, o.h.endsTxn(), retryable); handled {
			o.injected = true
			return reply, nil
		}
	}
	if err := validateSessionOptions(o, hasTxn, hasAutocommit); err != nil {
		return nil, err
	}
	if !hasLsid {
		return o.runCommand()
	}
	lsid, ok := lsidV.(bson.D)
	if !ok {
		return nil, typeErr("lsid", lsidV, "object")
	}
	if o.h.noSession {
		if _, err := lsidID(lsid); err != nil {
			return nil, err
		}
		return o.runCommand()
	}
	// Only a command with a txnNumber checks its session out: any other
	// runs beside it (and beside the lifetime reaper and kills), as on
	// MongoDB.
	sop := &o.sessOp
	if err := ss.attach(o, lsid, hasTxn); err != nil {
		return nil, err
	}
	defer sop.detach()
	o.sess = sop
	if !hasTxn {
		return o.runCommand()
	}
	s := sop.s
	defer s.mu.Unlock()
	txnNumber, ok := txnNumV.(int64)
	if !ok {
		return nil, typeErr("txnNumber", txnNumV, "long")
	}
	if !hasAutocommit {
		return ss.retryableWrite(o, s, txnNumber)
	}
	return ss.inTransaction(o, s, txnNumber)
}

// checkSessionInfo refuses, before anything runs (a fail point
// included), the session arguments initializeOperationSessionInfo
// (src/mongo/db/initialize_operation_session_info.cpp) refuses, in its
// order: a txnNumber without an lsid, a negative txnNumber, autocommit
// without a txnNumber, autocommit: true, startTransaction without
// autocommit, startTransaction: false.
func checkSessionInfo(cmd bson.D, hasLsid bool, txnNumV any, hasTxn bool, autocommitV any, hasAutocommit bool) error {
	if hasTxn {
		if !hasLsid {
			return merr.New(merr.InvalidOptions, "Transaction number requires a session ID to also be specified")
		}
		if n, ok := txnNumV.(int64); ok && n < 0 {
			return merr.New(merr.InvalidOptions, "Transaction number cannot be negative")
		}
	} else if hasAutocommit {
		return merr.New(merr.InvalidOptions, "'autocommit' field requires a transaction number to also be specified")
	}
	if hasAutocommit {
		if ac, ok := autocommitV.(bool); !ok || ac {
			return merr.New(merr.InvalidOptions, "Specifying autocommit=true is not allowed.")
		}
	}
	start, has := bsonkit.Get(cmd, "startTransaction")
	if !has {
		return nil
	}
	if !hasAutocommit {
		return merr.New(merr.InvalidOptions, "'startTransaction' field requires 'autocommit' field to also be specified")
	}
	if b, ok := start.(bool); !ok || !b {
		return merr.New(merr.InvalidOptions, "Specifying startTransaction=false is not allowed.")
	}
	return nil
}

// validateSessionOptions refuses, after the fail point and before the
// session is checked out, what MongoDB's validateSessionOptions
// (src/mongo/db/transaction_validation.cpp) refuses: a txnNumber outside a
// transaction on a command that is not a retryable write, and a
// transaction started by killCursors, commitTransaction or
// abortTransaction.
func validateSessionOptions(o *op, hasTxn, hasAutocommit bool) error {
	if !hasAutocommit {
		if hasTxn && !o.h.write {
			return merr.New(merr.NotARetryableWriteCommand, "txnNumber may only be provided for multi-document transactions and retryable write commands. autocommit:false was not provided, and %s is not a retryable write command.", o.name)
		}
		return nil
	}
	if start, _ := bsonkit.Get(o.cmd, "startTransaction"); start != true {
		return nil
	}
	switch {
	case o.name == "killCursors":
		return merr.New(merr.OperationNotSupportedInTransaction, "Cannot run killCursors as the first operation in a multi-document transaction.")
	case o.h.ends == endsCommit:
		return merr.New(merr.OperationNotSupportedInTransaction, "Cannot start a transaction with a commit")
	case o.h.ends == endsAbort:
		return merr.New(merr.OperationNotSupportedInTransaction, "Cannot start a transaction with an abort")
	}
	return nil
}

func (ss *sessions) retryableWrite(o *op, s *session, n int64) (bson.D, error) {
	if n < s.txnNumber {
		return nil, merr.New(merr.TransactionTooOld, "Retryable write with txnNumber %d is prohibited on session %x because a newer retryable write with txnNumber %d has already started on this session.", n, s.key, s.txnNumber)
	}
	if n > s.txnNumber || s.retry == nil || s.retry.txnNumber != n {
		if n == s.txnNumber && s.state != txnNone {
			return nil, merr.New(merr.IncompleteTransactionHistory, "Cannot retry a retryable write that has been converted into a transaction")
		}
		ss.abortOpen(s, "superseded")
		s.txnNumber = n
		s.state = txnNone
		s.txn = nil
		if s.retry != nil {
			// Only this command, which holds the session checked out,
			// sees the record: the superseded write's is reused.
			*s.retry = retryRecord{txnNumber: n}
		} else {
			s.retry = &retryRecord{txnNumber: n}
		}
	}
	o.retry = s.retry
	o.runsRetryableWrite(n)
	reply, err := o.runCommand()
	if err != nil {
		var me *merr.Error
		if errors.As(err, &me) && merr.IsRetryable(me.Code) && !me.HasLabel(merr.LabelRetryableWrite) {
			me.Labels = append(me.Labels, merr.LabelRetryableWrite)
		}
	}
	return reply, err
}

func (ss *sessions) inTransaction(o *op, s *session, n int64) (reply bson.D, err error) {
	defer func() {
		// A command that panics fails, and a failed command aborts its
		// transaction, as any other error does.
		if p := recover(); p != nil {
			ss.abortOpen(s, "command failed")
			panic(p)
		}
	}()
	start, _ := boolField(o.cmd, "startTransaction", false)
	isCommit := o.h.ends == endsCommit
	isAbort := o.h.ends == endsAbort
	if !o.h.inTxn {
		return nil, merr.New(merr.OperationNotSupportedInTransaction, "Cannot run '%s' in a multi-document transaction.", o.name)
	}
	if n < s.txnNumber {
		return nil, merr.New(merr.TransactionTooOld, "Cannot start transaction %d on session %x because a newer transaction %d has already started.", n, s.key, s.txnNumber)
	}
	if start {
		if n == s.txnNumber && (s.state != txnNone || s.retry != nil) {
			return nil, merr.New(merr.ConflictingOperationInProgress, "Cannot start a transaction at given transaction number %d a transaction with the same number is in state %s", n, s.stateName())
		}
		if err := checkTxnReadConcern(o.cmd); err != nil {
			return nil, err
		}
		ss.abortOpen(s, "superseded")
		s.txnNumber = n
		s.retry = nil
		txn, err := o.beginSnapshot(false)
		if err != nil {
			// As on MongoDB, the transaction that could not start is
			// aborted: its next statement gets NoSuchTransaction.
			s.state, s.txn, s.abortedReason = txnAborted, nil, "its snapshot could not be opened"
			return nil, err
		}
		txn.SetMultiDocument()
		s.state = txnInProgress
		s.txn = txn
		s.started = time.Now()
		s.expires = s.started.Add(ss.c.txnLifetime())
		s.abortedReason = ""
		o.beginTxnInfo(s)
		ss.mu.Lock()
		ss.started++
		ss.mu.Unlock()
	} else {
		if n > s.txnNumber || (n == s.txnNumber && s.state == txnNone) {
			return nil, noSuchTxn(n, s.txnNumber)
		}
		if _, has := bsonkit.Get(o.cmd, "readConcern"); has {
			return nil, merr.New(merr.InvalidOptions, "Only the first command in a transaction may specify a readConcern")
		}
		switch s.state {
		case txnCommitted:
			if isCommit {
				return ok1(), nil
			}
			if isAbort {
				return nil, merr.New(merr.TransactionCommitted, "Cannot abort transaction %d on session %x because it has been committed", n, s.key)
			}
			return nil, merr.New(merr.TransactionCommitted, "Transaction %d has been committed.", n)
		case txnAborted:
			if isAbort {
				return nil, noSuchTxn(n, s.txnNumber)
			}
			e := merr.New(merr.NoSuchTransaction, "Transaction with { txnNumber: %d } has been aborted.", n)
			if s.abortedReason != "" {
				e.Msg += " Reason: " + s.abortedReason
			}
			return nil, e.WithLabels(merr.LabelTransient)
		}
	}
	if !isCommit && !isAbort {
		if _, has := bsonkit.Get(o.cmd, "writeConcern"); has {
			return nil, merr.New(merr.InvalidOptions, "Cannot set write concern after starting a transaction.")
		}
	}
	o.txn = s.txn
	o.enterTxn(s)
	reply, err = o.runCommand()
	defer o.leaveTxn(s)
	switch {
	case isCommit:
		if err == nil {
			ss.mu.Lock() // counted before it is visible, as an abort is
			ss.commits++
			ss.mu.Unlock()
			s.txn.Commit()
			s.state = txnCommitted
		}
	case isAbort:
		if err == nil {
			ss.abortOpen(s, "aborted by client")
		}
	case err != nil || hasWriteErrors(reply):
		ss.abortOpen(s, "command failed")
	}
	if err != nil {
		var me *merr.Error
		if errors.As(err, &me) {
			if merr.IsTransient(me.Code) && !me.HasLabel(merr.LabelTransient) {
				me.Labels = append(me.Labels, merr.LabelTransient)
			}
		}
	}
	return reply, err
}

func noSuchTxn(n, active int64) *merr.Error {
	return merr.New(merr.NoSuchTransaction, "Given transaction number %d does not match any in-progress transactions. The active transaction number is %d", n, active).WithLabels(merr.LabelTransient)
}

func checkTxnReadConcern(cmd bson.D) error {
	rc, err := docField(cmd, "readConcern")
	if err != nil || rc == nil {
		return err
	}
	level, _ := bsonkit.Get(rc, "level")
	switch level {
	case nil, "local", "majority", "snapshot":
	default:
		return merr.New(merr.InvalidOptions, "The readConcern level must be either 'snapshot', 'majority' or 'local' within a transaction")
	}
	if _, has := bsonkit.Get(rc, "atClusterTime"); has && level != "snapshot" {
		return merr.New(merr.InvalidOptions, "readConcern level must be snapshot when atClusterTime is specified")
	}
	return nil
}

// checkPlainReadConcern refuses, as MongoDB 5.0+ does, a snapshot read
// concern outside a transaction on any command but the snapshot reads, and
// any level but local on a write.
func checkPlainReadConcern(o *op) error {
	rc, err := docField(o.cmd, "readConcern")
	if err != nil || rc == nil {
		return err
	}
	level, _ := bsonkit.Get(rc, "level")
	switch {
	case o.h.write && level != nil && level != "local":
		// A write supports level local only (supportsReadConcern in
		// src/mongo/db/commands/write_commands.cpp); a transaction's
		// first statement is checked as a transaction start instead.
	case level != "snapshot", o.h.snapshotRead:
		return nil
	}
	return merr.New(merr.InvalidOptions, "Command %s does not support %s :: caused by :: read concern not supported", o.name, bsonkit.FormatValue(rc))
}

func hasWriteErrors(reply bson.D) bool {
	_, ok := bsonkit.Get(reply, "writeErrors")
	return ok
}

func isErrorReply(reply bson.D) bool {
	okv, _ := bsonkit.Get(reply, "ok")
	f, _ := bsonkit.ToFloat(okv)
	return reply != nil && f == 0
}

// The session layer commits or aborts; these only validate.
func cmdCommitTransaction(*op) (bson.D, error) { return ok1(), nil }

func cmdAbortTransaction(*op) (bson.D, error) { return ok1(), nil }
