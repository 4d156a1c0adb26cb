package update

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// pipelineStages are the stages an update pipeline may use.
var pipelineStages = map[string]bool{
	"$addFields": true, "$set": true, "$project": true, "$unset": true,
	"$replaceRoot": true, "$replaceWith": true,
}

// compilePipeline compiles a pipeline-style update: each document is
// passed through the stages and replaced by the result.
func compilePipeline(stages bson.A, vars map[string]any) (*Update, error) {
	for _, s := range stages {
		if d, ok := s.(bson.D); ok && len(d) == 1 && !pipelineStages[d[0].Key] {
			return nil, merr.New(merr.InvalidOptions, "%s is not allowed to be used within an update", d[0].Key)
		}
	}
	p, err := aggregate.CompileWith(stages, aggregate.Options{Vars: vars})
	if err != nil {
		return nil, err
	}
	return &Update{pipeline: p}, nil
}

// IsPipeline reports whether u is a pipeline-style update.
func (u *Update) IsPipeline() bool { return u.pipeline != nil }

// runPipeline applies a pipeline update as MongoDB's PipelineExecutor: the
// result replaces the document; an _id the pipeline dropped is put back
// first, and one it changed fails with ImmutableField.
func (u *Update) runPipeline(doc bson.D, o Options) (bson.D, error) {
	if len(o.ArrayFilters) > 0 {
		return nil, merr.New(merr.FailedToParse, "arrayFilters may not be specified for pipeline-style updates")
	}
	res, err := u.pipeline.Run([]bson.D{doc})
	if err != nil {
		return nil, err
	}
	out := res[0]
	id, hasID := bsonkit.Get(doc, "_id")
	if !hasID {
		return out, nil
	}
	newID, newHasID := bsonkit.Get(out, "_id")
	switch {
	case !newHasID:
		return append(bson.D{{Key: "_id", Value: bsonkit.Clone(id)}}, out...), nil
	case !identical(id, newID):
		return nil, merr.New(merr.ImmutableField,
			"After applying the update, the (immutable) field '_id' was found to have been altered to %s",
			bsonkit.FormatElem("_id", newID))
	}
	return out, nil
}
