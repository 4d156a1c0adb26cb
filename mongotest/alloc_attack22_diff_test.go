package mongotest_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// a22Normalize drops what differs between two servers running the same
// commands: times and cursor ids (replaced by their order of appearance).
func a22Normalize(d bson.D, ids map[int64]int) bson.D {
	var out bson.D
	for _, e := range d {
		switch e.Key {
		case "$clusterTime", "operationTime", "atClusterTime", "electionId", "opTime":
			continue
		case "id":
			if n, ok := e.Value.(int64); ok && n != 0 {
				if _, seen := ids[n]; !seen {
					ids[n] = len(ids) + 1
				}
				e.Value = fmt.Sprintf("cursor%d", ids[n])
			}
		}
		if sub, ok := e.Value.(bson.D); ok {
			e.Value = a22Normalize(sub, ids)
		}
		out = append(out, e)
	}
	return out
}

// The same random command sequence, once on one connection (each request
// read into the last one's buffer, its op and reply storage reused, lsid
// and $clusterTime shared between commands), once with a new connection
// for every command: the replies must be the same.
func TestA22OneConnectionAnswersAsFreshOnes(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			a22Differential(t, seed, 200)
		})
	}
}

func a22Differential(t *testing.T, seed uint64, steps int) {
	srvA, srvB := mongotest.Start(t), mongotest.Start(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	lsids := []bson.D{}
	for i := 0; i < 2; i++ {
		id := make([]byte, 16)
		for j := range id {
			id[j] = byte(rng.IntN(256))
		}
		lsids = append(lsids, bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: id}}})
	}
	one := &rawSession{t: t, nc: dial(t, srvA)}
	idsA, idsB := map[int64]int{}, map[int64]int{}
	var cursorsA, cursorsB []int64
	var cursorLsid []int
	txn := []int64{0, 0}
	inTxn := []bool{false, false}
	var last, lastReply bson.D
	var lastTxn int64
	var lastLsid int
	randID := func() any {
		switch rng.IntN(4) {
		case 0:
			return int32(rng.IntN(600) - 300)
		case 1:
			return int32(rng.Uint32()) // any int32, negatives included
		case 2:
			return fmt.Sprintf("s%d", rng.IntN(50))
		}
		return int32(rng.IntN(20))
	}
	randDoc := func() bson.D {
		return bson.D{{Key: "_id", Value: randID()}, {Key: "pad", Value: strings.Repeat("x", rng.IntN(3)*rng.IntN(5000))}, {Key: "k", Value: int32(rng.IntN(5) - 2)}}
	}
	for step := 0; step < steps; step++ {
		s := rng.IntN(2)
		if inTxn[0] {
			s = 0 // another session's write would wait for the transaction
		} else if inTxn[1] {
			s = 1
		}
		var cmd bson.D
		db := "db"
		retryable := false
		switch k := rng.IntN(12); k {
		case 0, 1:
			docs := bson.A{}
			for n := rng.IntN(3) + 1; n > 0; n-- {
				docs = append(docs, randDoc())
			}
			cmd = bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: docs}, {Key: "ordered", Value: rng.IntN(2) == 0}}
			retryable = true
		case 2:
			cmd = bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: randID()}}}}
		case 3:
			cmd = bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "k", Value: bson.D{{Key: "$gte", Value: int32(rng.IntN(3) - 2)}}}}}, {Key: "batchSize", Value: int32(rng.IntN(3))}, {Key: "sort", Value: bson.D{{Key: "_id", Value: 1}}}}
		case 4:
			if len(cursorsA) == 0 {
				continue
			}
			i := rng.IntN(len(cursorsA))
			if cursorLsid[i] != s {
				continue
			}
			if rng.IntN(5) == 0 {
				ra := one.runLsid(db, bson.D{{Key: "killCursors", Value: "c"}, {Key: "cursors", Value: bson.A{cursorsA[i]}}}, lsids[s])
				rb := a22Fresh(t, srvB, db, bson.D{{Key: "killCursors", Value: "c"}, {Key: "cursors", Value: bson.A{cursorsB[i]}}}, lsids[s])
				_, _ = ra, rb
				cursorsA = append(cursorsA[:i], cursorsA[i+1:]...)
				cursorsB = append(cursorsB[:i], cursorsB[i+1:]...)
				cursorLsid = append(cursorLsid[:i], cursorLsid[i+1:]...)
				continue
			}
			bs := int32(rng.IntN(3) + 1)
			ra := one.runLsid(db, bson.D{{Key: "getMore", Value: cursorsA[i]}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: bs}}, lsids[s])
			rb := a22Fresh(t, srvB, db, bson.D{{Key: "getMore", Value: cursorsB[i]}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: bs}}, lsids[s])
			require.Equal(t, a22Normalize(rb, idsB), a22Normalize(ra, idsA), "step %d getMore", step)
			if cur, ok := replyField(ra, "cursor").(bson.D); !ok || replyField(cur, "id") == int64(0) {
				cursorsA = append(cursorsA[:i], cursorsA[i+1:]...)
				cursorsB = append(cursorsB[:i], cursorsB[i+1:]...)
				cursorLsid = append(cursorLsid[:i], cursorLsid[i+1:]...)
			}
			continue
		case 5:
			cmd = bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: randID()}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "k", Value: int32(1)}}}}}, {Key: "upsert", Value: rng.IntN(2) == 0}}}}}
			retryable = true
		case 6:
			cmd = bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{{Key: "_id", Value: randID()}}}, {Key: "update", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "f", Value: int32(step)}}}}}, {Key: "new", Value: rng.IntN(2) == 0}, {Key: "upsert", Value: rng.IntN(2) == 0}}
			retryable = true
		case 7:
			cmd = bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: randID()}}}, {Key: "limit", Value: int32(1)}}}}}
			retryable = true
		case 8:
			cmd = bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "k", Value: int32(rng.IntN(5) - 2)}}}}, bson.D{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}}}}, {Key: "cursor", Value: bson.D{{Key: "batchSize", Value: int32(rng.IntN(3))}}}}
		case 9:
			if last == nil || inTxn[lastLsid] || txn[lastLsid] != lastTxn {
				continue
			}
			// resend the last retryable write exactly: a replay
			ra := one.runLsid(db, last, lsids[lastLsid])
			rb := a22Fresh(t, srvB, db, last, lsids[lastLsid])
			require.Equal(t, a22Normalize(rb, idsB), a22Normalize(ra, idsA), "step %d replay of %.300v", step, last)
			if ok, _ := replyField(lastReply, "ok").(float64); ok == 1 && replyField(lastReply, "writeErrors") == nil {
				require.Equal(t, a22Normalize(lastReply, map[int64]int{}), a22Normalize(ra, map[int64]int{}), "step %d: a replay answers as the write did: %.300v", step, last)
			}
			continue
		case 10:
			// transactions: start, or commit/abort an open one
			if !inTxn[s] {
				txn[s]++
				inTxn[s] = true
				cmd = append(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{randDoc()}}}, bson.E{Key: "txnNumber", Value: txn[s]}, bson.E{Key: "autocommit", Value: false}, bson.E{Key: "startTransaction", Value: true})
			} else {
				end := "commitTransaction"
				if rng.IntN(2) == 0 {
					end = "abortTransaction"
				}
				db = "admin"
				cmd = bson.D{{Key: end, Value: 1}, {Key: "txnNumber", Value: txn[s]}, {Key: "autocommit", Value: false}}
				inTxn[s] = false
			}
		case 11:
			if !inTxn[s] {
				continue
			}
			cmd = bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: randID()}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "t", Value: int32(step)}}}}}, {Key: "upsert", Value: true}}}}, {Key: "txnNumber", Value: txn[s]}, {Key: "autocommit", Value: false}}
		}
		if retryable && !inTxn[s] && rng.IntN(2) == 0 {
			txn[s]++
			cmd = append(cmd, bson.E{Key: "txnNumber", Value: txn[s]})
			last, lastLsid, lastTxn = cmd, s, txn[s]
		} else if inTxn[s] && cmd[0].Key != "commitTransaction" && cmd[0].Key != "abortTransaction" && !hasKey(cmd, "txnNumber") {
			cmd = append(cmd, bson.E{Key: "txnNumber", Value: txn[s]}, bson.E{Key: "autocommit", Value: false})
		}
		ra := one.runLsid(db, cmd, lsids[s])
		rb := a22Fresh(t, srvB, db, cmd, lsids[s])
		if len(last) > 0 && &cmd[0] == &last[0] {
			lastReply = ra
		}
		require.Equal(t, a22Normalize(rb, idsB), a22Normalize(ra, idsA), "step %d: %.300v", step, cmd)
		if cur, ok := replyField(ra, "cursor").(bson.D); ok && replyField(cur, "id") != int64(0) && !inTxn[s] {
			cursorsA = append(cursorsA, replyField(cur, "id").(int64))
			cursorsB = append(cursorsB, replyField(replyField(rb, "cursor").(bson.D), "id").(int64))
			cursorLsid = append(cursorLsid, s)
		}
		if ok, _ := replyField(ra, "ok").(float64); ok == 0 && inTxn[s] {
			inTxn[s] = false // a failed statement aborts the transaction
		}
	}
	require.Equal(t, rawFindAll(t, &rawSession{t: t, nc: dial(t, srvB)}, "c"), rawFindAll(t, one, "c"))
}

func hasKey(d bson.D, key string) bool {
	_, ok := bsonkitGet(d, key)
	return ok
}

func bsonkitGet(d bson.D, key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// runLsid is run with lsid instead of the session's own.
func (r *rawSession) runLsid(db string, cmd bson.D, lsid bson.D) bson.D {
	r.lsid = lsid
	return r.run(db, cmd)
}

// a22Fresh runs cmd on a new connection.
func a22Fresh(t *testing.T, srv *mongotest.Server, db string, cmd bson.D, lsid bson.D) bson.D {
	s := &rawSession{t: t, nc: dial(t, srv), lsid: lsid}
	defer s.nc.Close()
	return s.run(db, cmd)
}
