package mongotest

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/merr"
)

type pipeline interface {
	Run(docs []bson.D) ([]bson.D, error)
}

func compilePipeline(stages bson.A) (pipeline, error) {
	return nil, merr.New(merr.CommandNotFound, "aggregate is not available yet")
}
