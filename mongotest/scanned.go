package mongotest

import (
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// scanStats counts what queries examine, for serverStatus
// metrics.queryExecutor: scanned is index keys examined and scannedObjects
// documents examined, the sums of explain's totalKeysExamined and
// totalDocsExamined over every operation, as MongoDB's. Atomics: a find
// by _id must not allocate for it.
type scanStats struct {
	keys atomic.Int64
	docs atomic.Int64
}

// add counts keys index keys and docs documents examined. A nil s counts
// nothing.
func (s *scanStats) add(keys, docs int) {
	if s == nil {
		return
	}
	if keys > 0 {
		s.keys.Add(int64(keys))
	}
	if docs > 0 {
		s.docs.Add(int64(docs))
	}
}

// queryExecutor is serverStatus metrics.queryExecutor.
func (s *scanStats) queryExecutor() bson.D {
	return bson.D{
		{Key: "scanned", Value: s.keys.Load()},
		{Key: "scannedObjects", Value: s.docs.Load()},
	}
}
