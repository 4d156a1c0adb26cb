package mongotest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// op is one command being executed.
type op struct {
	s        *Server
	ctx      context.Context
	req      *request
	cmd      bson.D
	db       string
	name     string
	sess     *session
	txn      *engine.Txn // the session's open transaction, when the command runs in one
	retry    *retryRecord
	deadline time.Time
	// atClusterTime is the snapshot a snapshot read ran at, for its reply.
	atClusterTime *bson.Timestamp
	// failWCE is a matched fail point whose writeConcernError is added
	// to the reply after the command runs.
	failWCE *failPoint
	// dropReply: close the connection instead of replying, as
	// onPrimaryTransactionalWrite does once the command has run.
	dropReply bool
}

type handler struct {
	run func(o *op) (bson.D, error)
	// inTxn: allowed inside a multi-document transaction.
	inTxn bool
	// write: a write command (retryable; reply carries write concern).
	write bool
	// admin: must run on the admin database.
	admin bool
}

var commands map[string]handler

func init() {
	commands = map[string]handler{
		"ping":                    {run: cmdPing},
		"buildInfo":               {run: cmdBuildInfo},
		"buildinfo":               {run: cmdBuildInfo},
		"getParameter":            {run: cmdGetParameter, admin: true},
		"setParameter":            {run: cmdSetParameter, admin: true},
		"serverStatus":            {run: cmdServerStatus},
		"listDatabases":           {run: cmdListDatabases, admin: true},
		"listCollections":         {run: cmdListCollections},
		"create":                  {run: cmdCreate, inTxn: true},
		"drop":                    {run: cmdDrop},
		"dropDatabase":            {run: cmdDropDatabase},
		"createIndexes":           {run: cmdCreateIndexes, inTxn: true},
		"listIndexes":             {run: cmdListIndexes},
		"dropIndexes":             {run: cmdDropIndexes},
		"insert":                  {run: cmdInsert, inTxn: true, write: true},
		"update":                  {run: cmdUpdate, inTxn: true, write: true},
		"delete":                  {run: cmdDelete, inTxn: true, write: true},
		"find":                    {run: cmdFind, inTxn: true},
		"getMore":                 {run: cmdGetMore, inTxn: true},
		"killCursors":             {run: cmdKillCursors, inTxn: true},
		"findAndModify":           {run: cmdFindAndModify, inTxn: true, write: true},
		"findandmodify":           {run: cmdFindAndModify, inTxn: true, write: true},
		"count":                   {run: cmdCount},
		"distinct":                {run: cmdDistinct, inTxn: true},
		"aggregate":               {run: cmdAggregate, inTxn: true},
		"endSessions":             {run: cmdEndSessions},
		"killSessions":            {run: cmdKillSessions},
		"killAllSessions":         {run: cmdKillAllSessions},
		"refreshSessions":         {run: cmdRefreshSessions},
		"startSession":            {run: cmdStartSession},
		"commitTransaction":       {run: cmdCommitTransaction, inTxn: true, admin: true},
		"abortTransaction":        {run: cmdAbortTransaction, inTxn: true, admin: true},
		"configureFailPoint":      {run: cmdConfigureFailPoint, admin: true},
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
}

// dispatch runs one request and returns its reply (nil: send nothing).
func (s *Server) dispatch(ctx context.Context, req *request) bson.D {
	if isHello(req.name) {
		if fp := s.core.failpoints.match(req); fp != nil {
			if reply, handled := s.applyFailPoint(&op{s: s, ctx: ctx, req: req, name: req.name}, fp, false, false); handled {
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
	o := &op{s: s, ctx: ctx, req: req, cmd: req.cmd, db: req.db, name: req.name}
	if ms, ok := bsonkit.ToInt64(field(req.cmd, "maxTimeMS")); ok && ms > 0 {
		o.deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
		var cancel context.CancelFunc
		o.ctx, cancel = context.WithDeadline(ctx, o.deadline)
		defer cancel()
	}
	reply, err := s.core.sessions.execute(o, h)
	if o.dropReply && o.req.conn != nil {
		o.req.conn.closeAfter = true
		return nil, nil
	}
	if err != nil {
		o.logError(err)
		return nil, err
	}
	if wce := unsatisfiableWriteConcern(o, h); wce != nil && !isErrorReply(reply) {
		if _, has := bsonkit.Get(reply, "writeConcernError"); !has {
			reply = append(reply, bson.E{Key: "writeConcernError", Value: wce})
		}
	}
	return o.withWriteConcernError(reply), nil
}

// unsatisfiableWriteConcern returns the writeConcernError MongoDB reports
// after applying a write whose write concern this one-member replica set
// can never satisfy (w greater than 1, or an unknown tag), or nil.
func unsatisfiableWriteConcern(o *op, h handler) bson.D {
	switch {
	case h.write:
	case o.name == "commitTransaction", o.name == "abortTransaction",
		o.name == "create", o.name == "drop", o.name == "dropDatabase",
		o.name == "createIndexes", o.name == "dropIndexes":
	default:
		return nil
	}
	wc, ok := field(o.cmd, "writeConcern").(bson.D)
	if !ok {
		return nil
	}
	switch w := field(wc, "w").(type) {
	case string:
		if w == "majority" {
			return nil
		}
		return bson.D{
			{Key: "code", Value: int32(79)},
			{Key: "codeName", Value: "UnknownReplWriteConcern"},
			{Key: "errmsg", Value: fmt.Sprintf("No write concern mode named '%s' found in replica set configuration", w)},
		}
	case nil:
		return nil
	default:
		if n, ok := bsonkit.ToInt64(w); !ok || n <= 1 {
			return nil
		}
		return bson.D{
			{Key: "code", Value: int32(100)},
			{Key: "codeName", Value: "UnsatisfiableWriteConcern"},
			{Key: "errmsg", Value: "Not enough data-bearing nodes"},
		}
	}
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

func cmdPing(*op) (bson.D, error)      { return ok1(), nil }
func cmdBuildInfo(*op) (bson.D, error) { return buildInfoReply(), nil }

func cmdHostInfo(o *op) (bson.D, error) {
	return ok1(bson.E{Key: "system", Value: bson.D{{Key: "hostname", Value: o.s.addr}, {Key: "numCores", Value: int32(2)}}},
		bson.E{Key: "os", Value: bson.D{{Key: "type", Value: "Linux"}}}), nil
}

func cmdConnectionStatus(*op) (bson.D, error) {
	return ok1(bson.E{Key: "authInfo", Value: bson.D{{Key: "authenticatedUsers", Value: bson.A{}}, {Key: "authenticatedUserRoles", Value: bson.A{}}}}), nil
}

func cmdWhatsMyURI(o *op) (bson.D, error) {
	return ok1(bson.E{Key: "you", Value: o.req.conn.nc.RemoteAddr().String()}), nil
}

func cmdGetCmdLineOpts(o *op) (bson.D, error) {
	return ok1(bson.E{Key: "argv", Value: bson.A{"mongotest"}},
		bson.E{Key: "parsed", Value: bson.D{{Key: "replication", Value: bson.D{{Key: "replSet", Value: o.s.opts.replSet}}}}}), nil
}

func cmdGetLog(*op) (bson.D, error) {
	return ok1(bson.E{Key: "totalLinesWritten", Value: int32(0)}, bson.E{Key: "log", Value: bson.A{}}), nil
}

func cmdListCommands(*op) (bson.D, error) {
	cmds := bson.D{}
	for name := range commands {
		cmds = append(cmds, bson.E{Key: name, Value: bson.D{{Key: "help", Value: ""}}})
	}
	return ok1(bson.E{Key: "commands", Value: cmds}), nil
}

func cmdReplSetGetStatus(o *op) (bson.D, error) {
	return ok1(
		bson.E{Key: "set", Value: o.s.opts.replSet},
		bson.E{Key: "myState", Value: int32(1)},
		bson.E{Key: "members", Value: bson.A{bson.D{
			{Key: "_id", Value: int32(0)}, {Key: "name", Value: o.s.addr}, {Key: "health", Value: 1.0},
			{Key: "state", Value: int32(1)}, {Key: "stateStr", Value: "PRIMARY"}, {Key: "self", Value: true},
		}}},
	), nil
}

func cmdGetParameter(o *op) (bson.D, error) {
	all := o.s.core.parameters()
	out := bson.D{}
	star := false
	if v, ok := bsonkit.Get(o.cmd, "getParameter"); ok {
		if s, ok := v.(string); ok && s == "*" {
			star = true
		}
	}
	for _, e := range all {
		if _, asked := bsonkit.Get(o.cmd, e.Key); asked || star {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, merr.New(merr.InvalidOptions, "no option found to get")
	}
	return ok1(out...), nil
}

func cmdSetParameter(o *op) (bson.D, error) {
	var was bson.D
	for _, e := range o.cmd[1:] {
		if strings.HasPrefix(e.Key, "$") || e.Key == "lsid" || e.Key == "comment" {
			continue
		}
		switch e.Key {
		case "transactionLifetimeLimitSeconds":
			n, ok := bsonkit.ToInt64(e.Value)
			if !ok || n < 1 {
				return nil, merr.New(merr.BadValue, "transactionLifetimeLimitSeconds must be greater than or equal to 1s")
			}
			was = append(was, bson.E{Key: "was", Value: int32(o.s.core.txnLifetime().Seconds())})
			o.s.core.setTxnLifetime(time.Duration(n) * time.Second)
		case "minSnapshotHistoryWindowInSeconds":
			n, ok := bsonkit.ToInt64(e.Value)
			if !ok || n < 0 {
				return nil, merr.New(merr.BadValue, "minSnapshotHistoryWindowInSeconds must be greater than or equal to 0")
			}
			was = append(was, bson.E{Key: "was", Value: int32(o.s.core.historyWindow().Seconds())})
			o.s.core.setHistoryWindow(time.Duration(n) * time.Second)
		case "maxTransactionLockRequestTimeoutMillis", "enableTestCommands":
			// accepted, no effect on a single in-memory node
		default:
			return nil, merr.New(merr.InvalidOptions, "attempted to set unrecognized parameter [%s], use help:true to see options", e.Key)
		}
	}
	return ok1(was...), nil
}

func cmdServerStatus(o *op) (bson.D, error) {
	c := o.s.core
	return ok1(
		bson.E{Key: "host", Value: o.s.addr},
		bson.E{Key: "version", Value: serverVersion},
		bson.E{Key: "process", Value: "mongod"},
		bson.E{Key: "pid", Value: int64(1)},
		bson.E{Key: "uptime", Value: time.Since(c.started).Seconds()},
		bson.E{Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
		bson.E{Key: "connections", Value: bson.D{{Key: "current", Value: int32(o.s.connCount())}}},
		bson.E{Key: "logicalSessionRecordCache", Value: bson.D{{Key: "activeSessionsCount", Value: int32(c.sessions.count())}}},
		bson.E{Key: "transactions", Value: c.sessions.txnStats()},
		bson.E{Key: "storageEngine", Value: bson.D{{Key: "name", Value: "mongotest"}, {Key: "supportsCommittedReads", Value: true}}},
	), nil
}

// logError records a failed command at debug level.
func (o *op) logError(err error) {
	o.s.log.Debug("command failed", zap.String("command", o.name), zap.String("db", o.db), zap.Error(err))
}

func typeErr(key string, v any, want string) error {
	return merr.New(merr.TypeMismatch, "BSON field '%s' is the wrong type '%s', expected type '%s'", key, bsonkit.TypeAlias(v), want)
}

var _ = fmt.Sprintf
