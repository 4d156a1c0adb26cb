package aggregate_test

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/aggregate"
)

func ExamplePipeline_Run() {
	p, err := aggregate.Compile(bson.A{
		bson.D{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: "$k"},
			{Key: "total", Value: bson.D{{Key: "$sum", Value: "$v"}}},
		}}},
		bson.D{{Key: "$sort", Value: bson.D{{Key: "_id", Value: int32(1)}}}},
	})
	if err != nil {
		panic(err)
	}
	out, err := p.Run([]bson.D{
		{{Key: "k", Value: "b"}, {Key: "v", Value: int32(2)}},
		{{Key: "k", Value: "a"}, {Key: "v", Value: int32(1)}},
		{{Key: "k", Value: "b"}, {Key: "v", Value: int32(3)}},
	})
	fmt.Println(out, err)
	// Output: [{"_id":"a","total":{"$numberInt":"1"}} {"_id":"b","total":{"$numberInt":"5"}}] <nil>
}
