package mongotest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/txkit/txkit/mongotest"
)

// writeErrorCode is the code of the first writeErrors entry of reply, or 0.
func writeErrorCode(t *testing.T, reply bson.D) int32 {
	t.Helper()
	werrs, _ := replyField(reply, "writeErrors").(bson.A)
	if len(werrs) == 0 {
		return 0
	}
	code, _ := replyField(werrs[0].(bson.D), "code").(int32)
	return code
}

func otherSession(t *testing.T, srv *mongotest.Server, flip byte) *rawSession {
	s := newRawSession(t, srv)
	s.lsid[0].Value.(bson.Binary).Data[15] ^= flip
	return s
}

// MongoDB's storage engine checks for a duplicate key visible in the
// writer's snapshot before it checks for a write conflict
// (WiredTigerIndexUnique::_insert, then the record store's insert), so an
// insert of an _id the inserter can see is E11000 at once, whoever holds
// that document.
func TestInsertOfAVisibleIDIsADuplicateAtOnce(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := otherSession(t, srv, 0), otherSession(t, srv, 0xff)
	requireOK(t, a.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	del := bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "limit", Value: 1}}}}}
	requireOK(t, a.run("db", txnCmd(del, 1, true)))

	t.Run("a plain insert while a transaction deletes it", func(t *testing.T) {
		reply := b.run("db", append(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), bson.E{Key: "maxTimeMS", Value: int32(2000)}))
		require.Equal(t, int32(11000), writeErrorCode(t, reply), "got %v", reply)
	})
	t.Run("an insert in another transaction while a transaction deletes it", func(t *testing.T) {
		reply := b.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 1, true))
		require.Equal(t, int32(11000), writeErrorCode(t, reply), "got %v", reply)
		b.run("admin", txnCmd(bson.D{{Key: "abortTransaction", Value: 1}}, 1, false))
	})
	requireOK(t, a.run("admin", txnCmd(bson.D{{Key: "abortTransaction", Value: 1}}, 1, false)))

	t.Run("an insert in a transaction whose snapshot predates the delete's commit", func(t *testing.T) {
		requireOK(t, b.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, 2, true)))
		requireOK(t, a.run("db", del))
		reply := b.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 1}}), 2, false))
		require.Equal(t, int32(11000), writeErrorCode(t, reply), "got %v", reply)
	})
}

// MongoDB's getMore refuses a cursor from another session (50738), from no
// session (50737) and, for a transaction's cursor, outside the transaction
// (50740), since that cursor reads the transaction's uncommitted writes.
func TestGetMoreOfATransactionCursorOutsideIt(t *testing.T) {
	srv := mongotest.Start(t)
	a, b := otherSession(t, srv, 0), otherSession(t, srv, 0xff)
	requireOK(t, a.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "_id", Value: 3}})))
	requireOK(t, a.run("db", txnCmd(insertCmd("c", bson.D{{Key: "_id", Value: 4}}), 1, true)))
	reply := a.run("db", append(txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, false), bson.E{Key: "batchSize", Value: 1}))
	requireOK(t, reply)
	id := replyField(replyField(reply, "cursor").(bson.D), "id").(int64)
	getMore := bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: 1}}

	requireCode(t, b.run("db", getMore), 50738, "Location50738")
	requireCode(t, a.run("db", getMore), 50740, "Location50740")
	requireCode(t, runWithoutLsid(t, newRawSession(t, srv), "db", getMore), 50737, "Location50737")
	// Inside the transaction the cursor still works, and its uncommitted
	// document is there.
	requireOK(t, a.run("db", txnCmd(append(getMore[:2:2], bson.E{Key: "batchSize", Value: int32(10)}), 1, false)))
}

// runWithoutLsid is rawSession.run for a command that carries no lsid.
func runWithoutLsid(t *testing.T, r *rawSession, db string, cmd bson.D) bson.D {
	t.Helper()
	cmd = append(cmd, bson.E{Key: "$db", Value: db})
	raw, err := bson.Marshal(cmd)
	require.NoError(t, err)
	r.reqID++
	write(t, r.nc, opMsg(r.reqID, 0, bsoncore.Document(raw)))
	var out bson.D
	require.NoError(t, bson.Unmarshal(readMsgReply(t, r.nc, r.reqID), &out))
	return out
}

// MongoDB rejects a readConcern afterClusterTime beyond its cluster time
// with InvalidOptions (read_concern_mongod.cpp); a time it handed out is
// fine.
func TestAfterClusterTimeInTheFuture(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	reply := s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}}))
	requireOK(t, reply)
	now := replyField(reply, "operationTime").(bson.Timestamp)
	find := func(ts bson.Timestamp) bson.D {
		return bson.D{{Key: "find", Value: "c"}, {Key: "readConcern", Value: bson.D{{Key: "afterClusterTime", Value: ts}}}}
	}
	requireOK(t, s.run("db", find(now)))
	requireCode(t, s.run("db", find(bson.Timestamp{T: now.T + 3600, I: 1})), 72, "InvalidOptions")
	requireCode(t, s.run("db", txnCmd(find(bson.Timestamp{T: now.T + 3600, I: 1}), 1, true)), 72, "InvalidOptions")
}

// A find's cursor in a transaction reads through the transaction's
// WiredTiger snapshot, which includes the transaction's own writes: a
// getMore returns the transaction's latest version of each document it has
// not returned yet and skips the ones it deleted (or that no longer match).
func TestGetMoreInATransactionSeesItsOwnWrites(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}}, bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: 0}},
		bson.D{{Key: "_id", Value: 3}, {Key: "v", Value: 0}}, bson.D{{Key: "_id", Value: 4}, {Key: "v", Value: 0}})))
	reply := s.run("db", append(txnCmd(bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "v", Value: bson.D{{Key: "$lt", Value: 10}}}}},
		{Key: "projection", Value: bson.D{{Key: "v", Value: 1}}}}, 1, true), bson.E{Key: "batchSize", Value: 1}))
	requireOK(t, reply)
	id := replyField(replyField(reply, "cursor").(bson.D), "id").(int64)

	set := func(id, v int32) bson.D {
		return bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: id}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: v}}}}}}}}}
	}
	requireOK(t, s.run("db", txnCmd(set(2, 5), 1, false)))
	requireOK(t, s.run("db", txnCmd(set(3, 50), 1, false)))
	requireOK(t, s.run("db", txnCmd(bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 4}}}, {Key: "limit", Value: 1}}}}}, 1, false)))

	reply = s.run("db", txnCmd(bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}}, 1, false))
	requireOK(t, reply)
	next := replyField(replyField(reply, "cursor").(bson.D), "nextBatch").(bson.A)
	require.Equal(t, bson.A{bson.D{{Key: "_id", Value: int32(2)}, {Key: "v", Value: int32(5)}}}, next)
}

// Inside a transaction a write error ends the batch, ordered or not, and
// aborts the transaction: handleError in src/mongo/db/ops/write_ops_exec.cpp
// ("If we are in a transaction, we must fail the whole batch": it records
// the error, calls abortTransaction and returns false, so no later
// statement runs).
func TestUnorderedInsertInATransactionStopsAtTheFirstError(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRawSession(t, srv)
	requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))

	insert := append(insertCmd("c", bson.D{{Key: "_id", Value: 0}}, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}),
		bson.E{Key: "ordered", Value: false})
	reply := s.run("db", txnCmd(insert, 1, true))
	require.Equal(t, int32(11000), writeErrorCode(t, reply), "got %v", reply)
	require.EqualValues(t, 1, replyField(reply, "n"), "the statement after the error ran: %v", reply)
	require.Len(t, replyField(reply, "writeErrors"), 1)

	// The transaction is gone.
	commit := s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false))
	require.Equal(t, int32(251), replyField(commit, "code"), "commit after the failed batch: %v", commit)
	count := s.run("db", bson.D{{Key: "count", Value: "c"}})
	require.EqualValues(t, 1, replyField(count, "n"))
}

// A plain multi-document update or delete is not atomic on MongoDB: each
// document is written in a storage transaction of its own, and a write
// conflict on one (a document a transaction holds) makes the operation
// yield and retry that document only (the UpdateStage / DeleteStage under
// the PlanExecutor, which retries on WriteConflictException; the manual's
// "Atomicity and Transactions": "when a single write operation modifies
// multiple documents, the modification of each document is atomic, but
// the operation as a whole is not atomic"). So while it waits, the
// documents before the held one are already written and visible.
func TestAPlainMultiWriteBlockedByATransactionHasWrittenTheDocumentsBefore(t *testing.T) {
	tests := []struct {
		name string
		give bson.D
		// done reports whether the write reached the document, as another
		// client reads it.
		done func(doc bson.D) bool
	}{
		{
			name: "updateMany",
			give: bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
				bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}}, {Key: "multi", Value: true}}}}},
			done: func(doc bson.D) bool { return doc != nil && replyField(doc, "v") == int32(1) },
		},
		{
			name: "deleteMany",
			give: bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{
				bson.D{{Key: "q", Value: bson.D{}}, {Key: "limit", Value: 0}}}}},
			done: func(doc bson.D) bool { return doc == nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mongotest.Start(t)
			holder, writer, reader := otherSession(t, srv, 1), otherSession(t, srv, 2), otherSession(t, srv, 3)
			requireOK(t, reader.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}},
				bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: 0}}, bson.D{{Key: "_id", Value: 3}, {Key: "v", Value: 0}})))
			hold := bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
				bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "held", Value: true}}}}}}}}}
			requireOK(t, holder.run("db", txnCmd(hold, 1, true)))

			replies := make(chan bson.D, 1)
			go func() { replies <- writer.run("db", tt.give) }()
			read := func(id int) bson.D {
				r := reader.run("db", bson.D{{Key: "find", Value: "c"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: id}}}})
				batch := replyField(replyField(r, "cursor").(bson.D), "firstBatch").(bson.A)
				if len(batch) == 0 {
					return nil
				}
				return batch[0].(bson.D)
			}
			require.Eventually(t, func() bool { return tt.done(read(1)) }, 5*time.Second, 5*time.Millisecond,
				"the document before the held one is not written while the write waits")
			require.False(t, tt.done(read(3)), "the write went past the held document")
			select {
			case r := <-replies:
				t.Fatalf("the write did not wait for the transaction: %v", r)
			default:
			}

			requireOK(t, holder.run("admin", txnCmd(bson.D{{Key: "abortTransaction", Value: 1}}, 1, false)))
			r := <-replies
			requireOK(t, r)
			require.EqualValues(t, 3, replyField(r, "n"), "reply: %v", r)
			for id := 1; id <= 3; id++ {
				require.True(t, tt.done(read(id)), "document %d", id)
			}
		})
	}
}

// A plain (non-snapshot) cursor is not a point-in-time view on MongoDB:
// between batches it gives up its storage snapshot and resumes on current
// data, so a getMore returns the latest version of the documents it has
// not returned yet and skips those deleted meanwhile (the manual, Cursors,
// "Cursor Isolation": "the cursor is not isolated during its lifetime").
// A snapshot read's cursor stays at its point in time.
func TestAPlainCursorsGetMoreSeesLaterCommits(t *testing.T) {
	tests := []struct {
		name        string
		readConcern bson.D
		want        bson.A
	}{
		{name: "a plain cursor", want: bson.A{bson.D{{Key: "_id", Value: int32(3)}, {Key: "v", Value: int32(1)}}}},
		{name: "a snapshot cursor", readConcern: bson.D{{Key: "level", Value: "snapshot"}},
			want: bson.A{bson.D{{Key: "_id", Value: int32(2)}, {Key: "v", Value: int32(0)}}, bson.D{{Key: "_id", Value: int32(3)}, {Key: "v", Value: int32(0)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mongotest.Start(t)
			s, other := otherSession(t, srv, 1), otherSession(t, srv, 2)
			requireOK(t, s.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 0}},
				bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: 0}}, bson.D{{Key: "_id", Value: 3}, {Key: "v", Value: 0}})))
			find := bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 1}}
			if tt.readConcern != nil {
				find = append(find, bson.E{Key: "readConcern", Value: tt.readConcern})
			}
			reply := s.run("db", find)
			requireOK(t, reply)
			id := replyField(replyField(reply, "cursor").(bson.D), "id").(int64)
			require.NotZero(t, id)

			// Another client deletes the second document and updates the third.
			requireOK(t, other.run("db", bson.D{{Key: "delete", Value: "c"}, {Key: "deletes", Value: bson.A{
				bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 2}}}, {Key: "limit", Value: 1}}}}}))
			requireOK(t, other.run("db", bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{
				bson.D{{Key: "q", Value: bson.D{{Key: "_id", Value: 3}}}, {Key: "u", Value: bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}}}}}}}))

			more := s.run("db", bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}})
			requireOK(t, more)
			got := replyField(replyField(more, "cursor").(bson.D), "nextBatch").(bson.A)
			require.Equal(t, tt.want, got)
		})
	}
}
