package mongotest_test

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// Attacks on the per-connection buffer reuse (attack22): a command's data
// must not survive into the next command on the same connection.

func a22doc(id any, size int) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "pad", Value: strings.Repeat(string(rune('a'+size%26)), size)}, {Key: "n", Value: int32(size)}}
}

func stripTimes(d bson.D) bson.D {
	var out bson.D
	for _, e := range d {
		if e.Key == "$clusterTime" || e.Key == "operationTime" {
			continue
		}
		out = append(out, e)
	}
	return out
}

func TestA22CursorSurvivesOtherCommands(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	var want bson.A
	for i := 0; i < 9; i++ {
		d := a22doc(int32(300+i), 10+i*37)
		want = append(want, d)
		requireOK(t, a.run("db", insertCmd("c", d)))
	}
	r := a.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: int32(1)}})
	requireOK(t, r)
	cur := replyField(r, "cursor").(bson.D)
	got := append(bson.A{}, replyField(cur, "firstBatch").(bson.A)...)
	id := replyField(cur, "id").(int64)
	r2 := a.run("db", bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: bson.A{}}, {Key: "cursor", Value: bson.D{{Key: "batchSize", Value: int32(1)}}}})
	requireOK(t, r2)
	cur2 := replyField(r2, "cursor").(bson.D)
	got2 := append(bson.A{}, replyField(cur2, "firstBatch").(bson.A)...)
	id2 := replyField(cur2, "id").(int64)
	for step := 0; step < 20; step++ {
		// other commands of various sizes on both connections
		requireOK(t, a.run("db", insertCmd("other", a22doc(int32(-1000-step), 5000*(step%3)+1))))
		requireOK(t, b.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: int32(300 + step%9)}}}}))
		requireOK(t, a.run("db", bson.D{{Key: "find", Value: "other"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: int32(-1000 - step)}}}}))
		for _, c := range []struct {
			id  *int64
			got *bson.A
			key string
		}{{&id, &got, "nextBatch"}, {&id2, &got2, "nextBatch"}} {
			if *c.id == 0 {
				continue
			}
			r := a.run("db", bson.D{{Key: "getMore", Value: *c.id}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: int32(1 + step%2)}})
			requireOK(t, r)
			cd := replyField(r, "cursor").(bson.D)
			*c.got = append(*c.got, replyField(cd, c.key).(bson.A)...)
			*c.id = replyField(cd, "id").(int64)
		}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, want, got2)
	assert.Equal(t, want, rawFindAll(t, b, "c"))
}

func TestA22RetryableInsertReplayAfterOtherCommands(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	ins := func(txn int64, docs ...bson.D) bson.D {
		return append(insertCmd("c", docs...), bson.E{Key: "txnNumber", Value: txn})
	}
	first := a.run("db", ins(1, a22doc(int32(-7), 100), a22doc("s", 3)))
	requireOK(t, first)
	for i := 0; i < 10; i++ {
		requireOK(t, a.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: int32(-7)}}}}))
		requireOK(t, a.run("db", insertCmd("d", a22doc(int32(-7-i), 3000*i))))
		requireOK(t, b.run("db", insertCmd("e", a22doc(int32(-7-i), 30*i))))
	}
	again := a.run("db", ins(1, a22doc(int32(-7), 100), a22doc("s", 3)))
	assert.Equal(t, stripTimes(first), stripTimes(again))
	// the next txnNumber reuses the record; a replay of it then
	up := func(txn int64) bson.D {
		return bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
			bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: int32(-9999)}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}}, {Key: "upsert", Value: true}},
			bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: "s"}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}},
		}}, {Key: "txnNumber", Value: txn}}
	}
	u1 := a.run("db", up(2))
	requireOK(t, u1)
	for i := 0; i < 10; i++ {
		requireOK(t, a.run("db", insertCmd("f", a22doc(int32(50000+i), 10*i))))
		requireOK(t, a.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: int32(-9999)}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "y", Value: i}}}}}}}}}))
	}
	u2 := a.run("db", up(2))
	assert.Equal(t, stripTimes(u1), stripTimes(u2))
	f := func(txn int64) bson.D {
		return bson.D{{Key: "findAndModify", Value: "c"}, {Key: "query", Value: bson.D{{Key: "_id", Value: "s"}}}, {Key: "update", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 100}}}}}, {Key: "new", Value: true}, {Key: "txnNumber", Value: txn}}
	}
	f1 := a.run("db", f(3))
	requireOK(t, f1)
	for i := 0; i < 5; i++ {
		requireOK(t, a.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: "s"}}}}))
		requireOK(t, a.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: "s"}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "z", Value: i}}}}}}}}}))
	}
	f2 := a.run("db", f(3))
	assert.Equal(t, stripTimes(f1), stripTimes(f2))
	d1 := a.run("db", bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: int32(-7)}}}, {Key: "limit", Value: 1}}}}, {Key: "txnNumber", Value: int64(4)}})
	requireOK(t, d1)
	requireOK(t, a.run("db", ins(5, a22doc(int32(-7), 1))))
	requireCode(t, a.run("db", ins(4, a22doc(int32(-7), 1))), 225, "TransactionTooOld")
	i5 := a.run("db", ins(5, a22doc(int32(-7), 1)))
	requireOK(t, i5)
	assert.EqualValues(t, 1, replyField(i5, "n"))
}

func TestA22Int32Edges(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	vals := []int32{-1, -2, 255, 256, -256, -2147483648, 2147483647, 1 << 20, -(1 << 20), 1000, 1001}
	for i, v := range vals {
		requireOK(t, a.run("db", insertCmd("c", bson.D{{Key: "_id", Value: v}, {Key: "i", Value: int32(i)}, {Key: "neg", Value: -v}})))
	}
	for i, v := range vals {
		docs := findAll(t, b, "c", bson.D{{Key: "_id", Value: v}})
		require.Len(t, docs, 1, "%d", v)
		assert.Equal(t, bson.D{{Key: "_id", Value: v}, {Key: "i", Value: int32(i)}, {Key: "neg", Value: -v}}, docs[0])
	}
}

func TestA22TransactionInlineFirstWrite(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, b.run("db", insertCmd("c", a22doc(int32(1), 5))))
	snapAt := replyField(b.run("db", bson.D{{Key: "find", Value: "c"}}), "operationTime").(bson.Timestamp)
	// aborted: first write inline, then more
	requireOK(t, a.run("db", txnCmd(insertCmd("c", a22doc(int32(2), 6)), 1, true)))
	requireOK(t, a.run("db", txnCmd(bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "t", Value: 1}}}}}}}}}, 1, false)))
	requireOK(t, a.run("db", txnCmd(insertCmd("c", a22doc(int32(3), 7)), 1, false)))
	requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "abortTransaction", Value: 1}}, 1, false)))
	assert.Equal(t, bson.A{a22doc(int32(1), 5)}, rawFindAll(t, b, "c"))
	// committed: first write only
	requireOK(t, a.run("db", txnCmd(bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "t", Value: 2}}}}}}}}}, 2, true)))
	requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 2, false)))
	// committed: several writes to the same record and others
	requireOK(t, a.run("db", txnCmd(insertCmd("c", a22doc(int32(4), 8)), 3, true)))
	for i := 0; i < 5; i++ {
		requireOK(t, a.run("db", txnCmd(bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: int32(4)}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}}}}}}, 3, false)))
	}
	requireOK(t, a.run("db", txnCmd(bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "limit", Value: 1}}}}}, 3, false)))
	requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 3, false)))
	want4 := a22doc(int32(4), 8)
	want4[2].Value = int32(13)
	assert.Equal(t, bson.A{want4}, rawFindAll(t, b, "c"))
	// snapshot read of the older version
	r := b.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "level", Value: "snapshot"}, {Key: "atClusterTime", Value: snapAt}}}})
	requireOK(t, r)
	assert.Equal(t, bson.A{a22doc(int32(1), 5)}, replyField(replyField(r, "cursor").(bson.D), "firstBatch"))
}

// docSeq is an OP_MSG document sequence section (kind 1) holding docs.
func docSeq(id string, docs ...bson.D) []byte {
	var data []byte
	for _, d := range docs {
		raw, _ := bson.Marshal(d)
		data = append(data, raw...)
	}
	size := 4 + len(id) + 1 + len(data)
	b := []byte{1, byte(size), byte(size >> 8), byte(size >> 16), byte(size >> 24)}
	b = append(b, id...)
	b = append(b, 0)
	return append(b, data...)
}

// runSeq is rawSession.run with document sequences after the body.
func (r *rawSession) runSeq(db string, cmd bson.D, seqs ...[]byte) bson.D {
	r.t.Helper()
	cmd = append(cmd, bson.E{Key: "lsid", Value: r.lsid}, bson.E{Key: "$db", Value: db})
	raw, err := bson.Marshal(cmd)
	require.NoError(r.t, err)
	var trailer []byte
	for _, s := range seqs {
		trailer = append(trailer, s...)
	}
	r.reqID++
	write(r.t, r.nc, opMsg(r.reqID, 0, raw, trailer...))
	var out bson.D
	require.NoError(r.t, bson.Unmarshal(readMsgReply(r.t, r.nc, r.reqID), &out))
	return out
}

// An OP_MSG document sequence is the command's array field (OpMsg's
// body with each sequence appended as an array), an empty sequence an
// empty array: a view created with an empty pipeline sequence lists
// pipeline: [], as one created with pipeline: [] in the body.
func TestA22EmptyDocumentSequenceIsAnEmptyArray(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	requireOK(t, s.runSeq("db", bson.D{{Key: "create", Value: "v1"}, {Key: "viewOn", Value: "c"}}, docSeq("pipeline")))
	requireOK(t, s.run("db", bson.D{{Key: "create", Value: "v2"}, {Key: "viewOn", Value: "c"}, {Key: "pipeline", Value: bson.A{}}}))
	r := s.run("db", bson.D{{Key: "listCollections", Value: 1}, {Key: "filter", Value: bson.D{{Key: "type", Value: "view"}}}})
	requireOK(t, r)
	pipelines := map[string]any{}
	for _, d := range replyField(replyField(r, "cursor").(bson.D), "firstBatch").(bson.A) {
		opts := replyField(d.(bson.D), "options").(bson.D)
		pipelines[replyField(d.(bson.D), "name").(string)] = replyField(opts, "pipeline")
	}
	assert.Equal(t, map[string]any{"v1": bson.A{}, "v2": bson.A{}}, pipelines)
	assert.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(1)}}}, findAll(t, s, "v1", nil))
}

// Unacknowledged writes (moreToCome), a legacy OP_QUERY hello, a document
// bigger than the request buffer a connection keeps (1 MB) and small
// commands, all on one connection: each command sees its own bytes, and
// what was stored reads back unchanged. (2 MB, not 16: the same paths, a
// shorter test under the race detector.)
func TestA22MixedMessagesOnOneConnection(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	s.nc.SetDeadline(time.Now().Add(60 * time.Second))
	var want bson.A
	for i := 0; i < 3; i++ {
		d := a22doc(int32(-20-i), 50*i+1)
		want = append(want, d)
		cmd := append(insertCmd("c", d), bson.E{Key: "writeConcern", Value: bson.D{{Key: "w", Value: 0}}}, bson.E{Key: "lsid", Value: s.lsid}, bson.E{Key: "$db", Value: "db"})
		raw, err := bson.Marshal(cmd)
		require.NoError(t, err)
		s.reqID++
		write(t, s.nc, opMsg(s.reqID, wiremessage.MoreToCome, raw))
	}
	hello, _ := bson.Marshal(bson.D{{Key: "isMaster", Value: 1}, {Key: "lsid", Value: s.lsid}})
	write(t, s.nc, opQuery(99, "admin.$cmd", hello))
	reply := read(t, s.nc)
	_, _, responseTo, opcode, _, _ := wiremessage.ReadHeader(reply)
	require.Equal(t, wiremessage.OpReply, opcode)
	require.EqualValues(t, 99, responseTo)
	big := a22doc(int32(-100), 2<<20)
	requireOK(t, s.run("db", insertCmd("c", big)))
	small := a22doc(int32(-101), 3)
	requireOK(t, s.run("db", insertCmd("c", small)))
	want = append(want, big, small)
	r := s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: int32(-100)}}}})
	requireOK(t, r)
	got := replyField(replyField(r, "cursor").(bson.D), "firstBatch").(bson.A)
	require.Len(t, got, 1)
	assert.True(t, assert.ObjectsAreEqual(big, got[0]), "the big document reads back")
	r = s.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: int32(2)}})
	cur := replyField(r, "cursor").(bson.D)
	all := append(bson.A{}, replyField(cur, "firstBatch").(bson.A)...)
	for id := replyField(cur, "id").(int64); id != 0; {
		r = s.run("db", bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: int32(1)}})
		requireOK(t, r)
		cur = replyField(r, "cursor").(bson.D)
		all = append(all, replyField(cur, "nextBatch").(bson.A)...)
		id = replyField(cur, "id").(int64)
	}
	assert.True(t, assert.ObjectsAreEqual(want, all), "every document reads back")
}
