package mongotest

import (
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

func cmdPing(*op) (bson.D, error) { return ok1(), nil }

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
		case "ttlMonitorEnabled":
			on, ok := e.Value.(bool)
			if !ok {
				return nil, typeErr("ttlMonitorEnabled", e.Value, "bool")
			}
			was = append(was, bson.E{Key: "was", Value: !o.s.core.ttlDisabled()})
			o.s.core.setTTLDisabled(!on)
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
		bson.E{Key: "metrics", Value: bson.D{{Key: "queryExecutor", Value: c.scans.queryExecutor()}}},
	), nil
}

// buildInfoReply answers buildInfo.
func buildInfoReply() bson.D {
	return ok1(
		bson.E{Key: "version", Value: serverVersion},
		bson.E{Key: "gitVersion", Value: "mongotest"},
		bson.E{Key: "versionArray", Value: bson.A{int32(7), int32(0), int32(0), int32(0)}},
		bson.E{Key: "bits", Value: int32(64)},
		bson.E{Key: "debug", Value: false},
		bson.E{Key: "maxBsonObjectSize", Value: int32(maxBSONObjectSize)},
		bson.E{Key: "storageEngines", Value: bson.A{"mongotest"}},
		bson.E{Key: "modules", Value: bson.A{}},
	)
}
