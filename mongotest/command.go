package mongotest

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/expr"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// op is one command being executed.
type op struct {
	s    *Server
	ctx  context.Context
	req  *request
	cmd  bson.D
	db   string
	name string
	h    handler    // the registered command
	sess *sessionOp // the command's attachment to its session (lsid), if any
	// sessOp is sess's storage, so that attaching allocates nothing.
	sessOp sessionOp
	// replies is the storage of the command's reply.
	replies  replyStorage
	txn      *engine.Txn // the session's open transaction, when the command runs in one
	retry    *retryRecord
	deadline time.Time
	// atClusterTime is the snapshot a snapshot read ran at, for its reply.
	atClusterTime *bson.Timestamp
	// injected: the failCommand fail point answered for the command.
	injected bool
	// noCursorTimeout: a cursor this command opens is never reaped for
	// being idle.
	noCursorTimeout bool
	// dropReply: close the connection instead of replying, as
	// onPrimaryTransactionalWrite does once the command has run.
	dropReply bool
	// letVars caches vars: the command's let and system variables.
	letVars expr.Vars
	// writes: a command that is not a registered write wrote (an
	// aggregate with $out or $merge), so its write concern applies.
	writes bool
}

// handler is a registered command: its implementation and the properties
// by which the session, transaction and write-concern layers treat it.
// Those layers decide by these properties, never by the command's name.
type handler struct {
	run func(o *op) (bson.D, error)
	// inTxn: allowed inside a multi-document transaction.
	inTxn bool
	// write: a retryable write; it may carry a txnNumber outside a
	// transaction, and a retry is answered from the first outcome.
	write bool
	// writeConcern: accepts a write concern, so an unsatisfiable one is
	// reported after the command runs.
	writeConcern bool
	// snapshotRead: may use readConcern "snapshot" outside a transaction.
	snapshotRead bool
	// admin: must run on the admin database.
	admin bool
	// ends: commitTransaction or abortTransaction.
	ends txnEnd
	// noSession: does not attach the lsid it carries, so that it can
	// kill its own session (attachLogicalSessionsToOpCtx() false).
	noSession bool
	// fields: the command's own fields; nil for commands that take any
	// (the admin and diagnostic ones), which check what they read.
	fields fields
	// nested: the fields of documents inside the command (update
	// statements, index specs), checked, like the command's own, before
	// anything runs.
	nested map[string]fields
}

// txnEnd is how a command ends a transaction.
type txnEnd int

const (
	endsNothing txnEnd = iota
	endsCommit
	endsAbort
)

// supportsWriteConcern reports whether the command cmd of h takes a
// write concern: a write, a DDL command, commit/abort, or an aggregate
// whose pipeline ends with $out or $merge.
func (h handler) supportsWriteConcern(cmd bson.D) bool {
	if h.writeConcern {
		return true
	}
	if len(cmd) == 0 || cmd[0].Key != "aggregate" {
		return false
	}
	p, _ := field(cmd, "pipeline").(bson.A)
	if len(p) == 0 {
		return false
	}
	last, _ := p[len(p)-1].(bson.D)
	return len(last) > 0 && (last[0].Key == "$out" || last[0].Key == "$merge")
}

// endsTxn reports whether h is commitTransaction or abortTransaction.
func (h handler) endsTxn() bool { return h.ends != endsNothing }

var commands map[string]handler

func init() {
	write := func(run func(*op) (bson.D, error), f fields) handler {
		return handler{run: run, inTxn: true, write: true, writeConcern: true, fields: f}
	}
	ddl := func(run func(*op) (bson.D, error), inTxn bool, f fields) handler {
		return handler{run: run, inTxn: inTxn, writeConcern: true, fields: f}
	}
	nest := func(h handler, key string, f fields) handler {
		h.nested = map[string]fields{key: f}
		return h
	}
	commands = map[string]handler{
		"ping":                    {run: cmdPing},
		"buildInfo":               {run: cmdBuildInfo},
		"getParameter":            {run: cmdGetParameter, admin: true},
		"setParameter":            {run: cmdSetParameter, admin: true},
		"serverStatus":            {run: cmdServerStatus},
		"listDatabases":           {run: cmdListDatabases, admin: true, fields: listDatabasesFields},
		"listCollections":         {run: cmdListCollections, fields: listCollectionsFields},
		"create":                  ddl(cmdCreate, true, createFields),
		"collMod":                 ddl(cmdCollMod, false, nil), // checks its own fields,
		"drop":                    ddl(cmdDrop, false, noFields),
		"dropDatabase":            ddl(cmdDropDatabase, false, noFields),
		"createIndexes":           nest(ddl(cmdCreateIndexes, true, createIndexesFields), "indexes", indexSpecFields),
		"listIndexes":             {run: cmdListIndexes, fields: listIndexesFields},
		"dropIndexes":             ddl(cmdDropIndexes, false, dropIndexesFields),
		"insert":                  write(cmdInsert, insertFields),
		"update":                  nest(write(cmdUpdate, updateFields), "updates", updateStmtFields),
		"delete":                  nest(write(cmdDelete, deleteFields), "deletes", deleteStmtFields),
		"find":                    {run: cmdFind, inTxn: true, snapshotRead: true, fields: findFields},
		"getMore":                 {run: cmdGetMore, inTxn: true, snapshotRead: true, fields: getMoreFields},
		"killCursors":             {run: cmdKillCursors, inTxn: true, fields: killCursorsFields},
		"findAndModify":           write(cmdFindAndModify, findAndModifyFields),
		"count":                   {run: cmdCount, fields: countFields},
		"distinct":                {run: cmdDistinct, inTxn: true, snapshotRead: true, fields: distinctFields},
		"aggregate":               nest(handler{run: cmdAggregate, inTxn: true, snapshotRead: true, fields: aggregateFields}, "cursor", cursorFields),
		"endSessions":             {run: cmdEndSessions},
		"killSessions":            {run: cmdKillSessions, noSession: true},
		"killAllSessions":         {run: cmdKillAllSessions, noSession: true},
		"refreshSessions":         {run: cmdRefreshSessions},
		"startSession":            {run: cmdStartSession},
		"commitTransaction":       {run: cmdCommitTransaction, inTxn: true, admin: true, writeConcern: true, ends: endsCommit, fields: txnEndFields},
		"abortTransaction":        {run: cmdAbortTransaction, inTxn: true, admin: true, writeConcern: true, ends: endsAbort, fields: txnEndFields},
		"configureFailPoint":      {run: cmdConfigureFailPoint, admin: true},
		"killOp":                  {run: cmdKillOp, admin: true},
		"getLastError":            {run: cmdPing},
		"hostInfo":                {run: cmdHostInfo},
		"connectionStatus":        {run: cmdConnectionStatus},
		"whatsmyuri":              {run: cmdWhatsMyURI},
		"getCmdLineOpts":          {run: cmdGetCmdLineOpts, admin: true},
		"listCommands":            {run: cmdListCommands},
		"collStats":               {run: cmdCollStats},
		"dbStats":                 {run: cmdDBStats},
		"getLog":                  {run: cmdGetLog, admin: true},
		"replSetGetStatus":        {run: cmdReplSetGetStatus, admin: true},
		"getFreeMonitoringStatus": {run: cmdPing},
	}
	for alias, name := range commandAliases {
		if h, ok := commands[name]; ok {
			commands[alias] = h
		}
	}
}

// commandAliases maps the other names MongoDB registers a command under
// to the command's name: the command answers to each, and failCommand's
// failCommands selects it by any of them (Command::hasAlias). hello and
// isMaster are not in commands: dispatch answers them first.
var commandAliases = map[string]string{
	"buildinfo":     "buildInfo",
	"collstats":     "collStats",
	"dbstats":       "dbStats",
	"deleteIndexes": "dropIndexes",
	"findandmodify": "findAndModify",
	"ismaster":      "isMaster", // isMaster is a command apart from hello, outside API version 1
}

// commandName is the name of the command that name, as sent, calls.
func commandName(name string) string {
	if n, ok := commandAliases[name]; ok {
		return n
	}
	return name
}

// runCommand checks the command's fields and runs it.
func (o *op) runCommand() (bson.D, error) {
	if err := o.h.fields.check(o.name, o.cmd, true); err != nil {
		return nil, err
	}
	for key, fs := range o.h.nested {
		v, _ := bsonkit.Get(o.cmd, key)
		docs, _ := v.(bson.A)
		if d, ok := v.(bson.D); ok {
			docs = bson.A{d}
		}
		for _, x := range docs {
			if d, ok := x.(bson.D); ok {
				if err := fs.check(o.name+"."+key, d, false); err != nil {
					return nil, err
				}
			}
		}
	}
	return o.h.run(o)
}

// dispatch runs one request and returns its reply (nil: send nothing).
func (s *Server) dispatch(ctx context.Context, req *request) bson.D {
	if isHello(req.name) {
		if fp := s.core.failpoints.match(req); fp != nil {
			if reply, handled := s.applyFailPoint(&op{s: s, ctx: ctx, req: req, name: req.name}, fp, false, false, false); handled {
				return reply
			}
		}
		return s.hello(ctx, req)
	}
	reply, err := s.run(ctx, req)
	if err != nil {
		var me *merr.Error
		if !errors.As(err, &me) {
			me = merr.New(merr.InternalError, "%v", err)
		}
		return me.Doc()
	}
	return reply
}

func (s *Server) run(ctx context.Context, req *request) (bson.D, error) {
	h, ok := commands[req.name]
	if !ok {
		return nil, merr.New(merr.CommandNotFound, "no such command: '%s'", req.name)
	}
	if req.db == "" {
		return nil, merr.New(merr.InvalidNamespace, "Invalid database name: ''")
	}
	if h.admin && req.db != "admin" {
		return nil, merr.New(merr.Unauthorized, "%s may only be run against the admin database.", req.name)
	}
	if err := checkGenericArgs(req.cmd); err != nil {
		return nil, err
	}
	if err := checkAPIParams(req.name, req.cmd); err != nil {
		return nil, err
	}
	if _, has := bsonkit.Get(req.cmd, "writeConcern"); has && !h.supportsWriteConcern(req.cmd) {
		// service_entry_point_common.cpp refuses it before the command
		// runs, rather than ignore it.
		return nil, merr.New(merr.InvalidOptions, "Command does not support writeConcern")
	}
	o := &req.op
	*o = op{s: s, ctx: ctx, req: req, cmd: req.cmd, db: req.db, name: req.name, h: h}
	if ms, _ := maxTimeMS(req.cmd); ms > 0 {
		o.deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
		var cancel context.CancelFunc
		o.ctx, cancel = context.WithDeadline(ctx, o.deadline)
		defer cancel()
	}
	if err := checkAfterClusterTime(o); err != nil {
		return nil, err
	}
	reply, err := s.core.sessions.execute(o)
	if o.dropReply && o.req.conn != nil {
		o.req.conn.closeAfter = true
		return nil, nil
	}
	if err != nil {
		o.logError(err)
		var me *merr.Error
		if !errors.As(err, &me) {
			me = merr.New(merr.InternalError, "%v", err)
		}
		return o.withWriteConcernError(me.Doc()), nil
	}
	if reply == nil {
		return nil, nil // closeConnection: nothing at all is sent
	}
	if wce := unsatisfiableWriteConcern(o); wce != nil && !isErrorReply(reply) {
		if _, has := bsonkit.Get(reply, "writeConcernError"); !has {
			reply = append(reply, bson.E{Key: "writeConcernError", Value: wce})
		}
	}
	return o.withWriteConcernError(reply), nil
}

// field returns cmd's top-level field (nil when missing).
func field(d bson.D, key string) any {
	v, _ := bsonkit.Get(d, key)
	return v
}

// collName returns the collection named by the command's first field.
func (o *op) collName() (string, error) {
	v := o.cmd[0].Value
	name, ok := v.(string)
	if !ok {
		return "", merr.New(merr.InvalidNamespace, "collection name has invalid type %s", bsonkit.TypeAlias(v))
	}
	if name == "" {
		return "", merr.New(merr.InvalidNamespace, "Invalid namespace specified '%s.'", o.db)
	}
	return name, nil
}

func (o *op) ns() (engine.Namespace, error) {
	name, err := o.collName()
	if err != nil {
		return engine.Namespace{}, err
	}
	ns := engine.Namespace{DB: o.db, Coll: name}
	if err := engine.ValidateNamespace(ns); err != nil {
		return ns, err
	}
	return ns, nil
}

// docField returns an optional document field, failing on a wrong type.
func docField(cmd bson.D, key string) (bson.D, error) {
	v, ok := bsonkit.Get(cmd, key)
	if !ok || v == nil {
		return nil, nil
	}
	d, ok := v.(bson.D)
	if !ok {
		return nil, merr.New(merr.TypeMismatch, "BSON field '%s' is the wrong type '%s', expected type 'object'", key, bsonkit.TypeAlias(v))
	}
	return d, nil
}

// intField returns an optional numeric field.
func intField(cmd bson.D, key string) (int64, bool, error) {
	v, ok := bsonkit.Get(cmd, key)
	if !ok || v == nil {
		return 0, false, nil
	}
	if !bsonkit.IsNumber(v) {
		return 0, false, merr.New(merr.TypeMismatch, "BSON field '%s' is the wrong type '%s', expected types '[long, int, decimal, double]'", key, bsonkit.TypeAlias(v))
	}
	f, _ := bsonkit.ToFloat(v)
	return int64(f), true, nil
}

func boolField(cmd bson.D, key string, def bool) (bool, error) {
	v, ok := bsonkit.Get(cmd, key)
	if !ok || v == nil {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	}
	if f, ok := bsonkit.ToFloat(v); ok {
		return f != 0, nil
	}
	return false, merr.New(merr.TypeMismatch, "BSON field '%s' is the wrong type '%s', expected types '[bool, long, int, decimal, double]'", key, bsonkit.TypeAlias(v))
}

func arrayField(cmd bson.D, key string) (bson.A, bool, error) {
	v, ok := bsonkit.Get(cmd, key)
	if !ok {
		return nil, false, nil
	}
	a, ok := v.(bson.A)
	if !ok {
		return nil, false, merr.New(merr.TypeMismatch, "BSON field '%s' is the wrong type '%s', expected type 'array'", key, bsonkit.TypeAlias(v))
	}
	return a, true, nil
}

func ok1(fields ...bson.E) bson.D {
	return append(bson.D(fields), bson.E{Key: "ok", Value: 1.0})
}

// logError records a failed command at debug level.
func (o *op) logError(err error) {
	o.s.log.Debug("command failed", zap.String("command", o.name), zap.String("db", o.db), zap.Error(err))
}

func typeErr(key string, v any, want string) error {
	return merr.New(merr.TypeMismatch, "BSON field '%s' is the wrong type '%s', expected type '%s'", key, bsonkit.TypeAlias(v), want)
}

// codeMissingField is the code MongoDB 7.0's command parser gives a missing
// required field (codeName Location40414).
const codeMissingField int32 = 40414
