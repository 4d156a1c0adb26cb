package update_test

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/update"
)

func ExampleUpdate_Apply() {
	u, err := update.Compile(bson.D{
		{Key: "$inc", Value: bson.D{{Key: "n", Value: int32(1)}}},
		{Key: "$push", Value: bson.D{{Key: "tags", Value: "new"}}},
	})
	if err != nil {
		panic(err)
	}
	doc := bson.D{{Key: "_id", Value: int32(1)}, {Key: "n", Value: int32(41)}}
	out, changed, err := u.Apply(doc, update.Options{})
	fmt.Println(out, changed, err)
	// Output: {"_id":{"$numberInt":"1"},"n":{"$numberInt":"42"},"tags":["new"]} true <nil>
}

func ExampleSeed() {
	seed, _ := update.Seed(bson.D{{Key: "a.b", Value: int32(1)}, {Key: "_id", Value: "k"}})
	fmt.Println(seed)
	// Output: {"_id":"k","a":{"b":{"$numberInt":"1"}}}
}
