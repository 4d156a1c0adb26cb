package merr_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

func TestDocHasMongoDBErrorShape(t *testing.T) {
	e := merr.New(merr.DuplicateKey, "E11000 duplicate key error collection: %s", "db.c").WithLabels(merr.LabelTransient)
	e.Extra = bson.D{{Key: "keyValue", Value: bson.D{{Key: "_id", Value: int32(1)}}}}
	assert.Equal(t, bson.D{
		{Key: "ok", Value: 0.0},
		{Key: "errmsg", Value: "E11000 duplicate key error collection: db.c"},
		{Key: "code", Value: int32(11000)},
		{Key: "codeName", Value: "DuplicateKey"},
		{Key: "keyValue", Value: bson.D{{Key: "_id", Value: int32(1)}}},
		{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
	}, e.Doc())
	assert.True(t, e.HasLabel(merr.LabelTransient))
	assert.False(t, e.HasLabel(merr.LabelRetryableWrite))
}

func TestNameOfAnUnnamedCodeIsItsLocation(t *testing.T) {
	assert.Equal(t, "Location40414", merr.Name(40414))
	assert.Equal(t, "WriteConflict", merr.Name(merr.WriteConflict))
}

func TestClassification(t *testing.T) {
	tests := []struct {
		give                               int32
		wantRetryable, wantTransient       bool
		wantTransientCommit, wantWithWCErr bool
	}{
		{give: merr.WriteConflict, wantTransient: true, wantTransientCommit: true, wantWithWCErr: true},
		{give: merr.NoSuchTransaction, wantTransient: true, wantTransientCommit: true},
		{give: merr.NotWritablePrimary, wantRetryable: true, wantTransient: true},
		{give: merr.ExceededTimeLimit, wantRetryable: true, wantTransient: true},
		{give: merr.SnapshotTooOld, wantTransientCommit: true, wantWithWCErr: true},
		{give: merr.DuplicateKey},
		{give: merr.MaxTimeMSExpired},
	}
	for _, tt := range tests {
		t.Run(merr.Name(tt.give), func(t *testing.T) {
			assert.Equal(t, tt.wantRetryable, merr.IsRetryable(tt.give), "IsRetryable")
			assert.Equal(t, tt.wantTransient, merr.IsTransient(tt.give), "IsTransient")
			assert.Equal(t, tt.wantTransientCommit, merr.IsTransientCommit(tt.give, false), "IsTransientCommit")
			assert.Equal(t, tt.wantWithWCErr, merr.IsTransientCommit(tt.give, true), "IsTransientCommit with a write concern error")
		})
	}
}
