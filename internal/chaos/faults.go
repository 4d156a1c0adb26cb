package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Rates are how many fail points of each kind are armed per second, on
// average (0 turns a kind off), and the probability that an operation's
// context is cancelled or given a short deadline.
type Rates struct {
	Transient     float64 `json:"transient"`      // WriteConflict, TransientTransactionError
	UnknownCommit float64 `json:"unknown_commit"` // commitTransaction answers UnknownTransactionCommitResult
	WriteConcern  float64 `json:"write_concern"`  // writes succeed with a writeConcernError
	Close         float64 `json:"close"`          // closeConnection
	Block         float64 `json:"block"`          // blockConnection
	Cancel        float64 `json:"cancel"`         // caller contexts cancelled or expiring
}

// FaultKinds are the fail point kinds, in the order the injector draws them.
var FaultKinds = []string{"transient", "unknown-commit", "write-concern", "close", "block"}

func (r Rates) of(kind string) float64 {
	switch kind {
	case "transient":
		return r.Transient
	case "unknown-commit":
		return r.UnknownCommit
	case "write-concern":
		return r.WriteConcern
	case "close":
		return r.Close
	case "block":
		return r.Block
	}
	return 0
}

// Injector arms MongoDB's failCommand fail point at random, for the
// clients named AppName only, through Command (which runs
// configureFailPoint on the admin database of a client that is spared).
type Injector struct {
	Rates   Rates
	AppName string
	Rng     *rand.Rand
	Command func(ctx context.Context, cmd bson.D) error
	Record  func(Fault)
}

const injectTick = 10 * time.Millisecond

// Run arms fail points until ctx is done, then turns the fail point off.
func (in *Injector) Run(ctx context.Context) error {
	t := time.NewTicker(injectTick)
	defer t.Stop()
	defer func() {
		off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = in.Command(octx, off)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, kind := range FaultKinds {
			if in.Rng.Float64() >= in.Rates.of(kind)*injectTick.Seconds() {
				continue
			}
			cmd, desc := in.failPoint(kind)
			if err := in.Command(ctx, cmd); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("chaos: arm %s fail point: %w", kind, err)
			}
			in.Record(Fault{At: time.Now(), Kind: kind, Desc: desc})
		}
	}
}

func (in *Injector) pick(from []string) bson.A {
	n := 1 + in.Rng.IntN(len(from))
	perm := in.Rng.Perm(len(from))
	out := bson.A{}
	for _, i := range perm[:n] {
		out = append(out, from[i])
	}
	return out
}

// failPoint returns a failCommand configuration of the kind and its
// description.
func (in *Injector) failPoint(kind string) (bson.D, string) {
	times := 1 + in.Rng.IntN(3)
	var data bson.D
	switch kind {
	case "transient":
		data = bson.D{
			{Key: "failCommands", Value: in.pick([]string{"insert", "update", "find", "findAndModify", "aggregate", "delete"})},
			{Key: "errorCode", Value: int32(112)}, // WriteConflict
			{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
		}
	case "unknown-commit":
		switch in.Rng.IntN(3) {
		case 0: // not committed, and the driver cannot know it
			data = bson.D{
				{Key: "failCommands", Value: bson.A{"commitTransaction"}},
				{Key: "errorCode", Value: int32(91)}, // ShutdownInProgress
				{Key: "errorLabels", Value: bson.A{"UnknownTransactionCommitResult"}},
			}
		case 1: // committed, but replication was not confirmed in time
			data = bson.D{
				{Key: "failCommands", Value: bson.A{"commitTransaction"}},
				{Key: "writeConcernError", Value: bson.D{
					{Key: "code", Value: int32(64)}, {Key: "codeName", Value: "WriteConcernFailed"},
					{Key: "errmsg", Value: "waiting for replication timed out"},
					{Key: "errInfo", Value: bson.D{{Key: "wtimeout", Value: true}}},
				}},
			}
		default: // committed, but the commit ran out of time waiting for it
			data = bson.D{
				{Key: "failCommands", Value: bson.A{"commitTransaction"}},
				{Key: "writeConcernError", Value: bson.D{
					{Key: "code", Value: int32(50)}, {Key: "codeName", Value: "MaxTimeMSExpired"},
					{Key: "errmsg", Value: "operation exceeded time limit"},
				}},
			}
		}
	case "write-concern":
		code, name := int32(64), "WriteConcernFailed"
		if in.Rng.IntN(2) == 0 {
			code, name = 91, "ShutdownInProgress"
		}
		data = bson.D{
			{Key: "failCommands", Value: in.pick([]string{"insert", "update", "delete", "findAndModify", "commitTransaction"})},
			{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: code}, {Key: "codeName", Value: name}, {Key: "errmsg", Value: "chaos write concern error"}}},
		}
	case "close":
		data = bson.D{
			{Key: "failCommands", Value: in.pick([]string{"insert", "update", "find", "findAndModify", "aggregate", "delete", "commitTransaction", "abortTransaction"})},
			{Key: "closeConnection", Value: true},
		}
	case "block":
		data = bson.D{
			{Key: "failCommands", Value: in.pick([]string{"insert", "update", "find", "findAndModify", "aggregate", "commitTransaction"})},
			{Key: "blockConnection", Value: true},
			{Key: "blockTimeMS", Value: int32(20 + in.Rng.IntN(400))},
		}
	}
	data = append(data, bson.E{Key: "appName", Value: in.AppName})
	cmd := bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: int32(times)}}},
		{Key: "data", Value: data},
	}
	return cmd, fmt.Sprintf("%dx %v", times, describe(data))
}

func describe(data bson.D) string {
	var s string
	for _, e := range data {
		if e.Key == "appName" {
			continue
		}
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s=%v", e.Key, e.Value)
	}
	return s
}
