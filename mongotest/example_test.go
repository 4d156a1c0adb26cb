package mongotest_test

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
)

// A server for a program or an example; in a test, mongotest.Start(t)
// does the same and closes it in t.Cleanup.
func ExampleNewServer() {
	srv, err := mongotest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		panic(err)
	}
	defer client.Disconnect(context.Background())

	ctx := context.Background()
	coll := client.Database("app").Collection("users")
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "ada"}, {Key: "credits", Value: 10}})
	if err != nil {
		panic(err)
	}
	var user struct {
		Credits int `bson:"credits"`
	}
	err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: "ada"}}).Decode(&user)
	fmt.Println(user.Credits, err)
	// Output: 10 <nil>
}

// A server embedded in a program that opens no port: the client reaches it
// in memory, through the server's dialer.
func ExampleWithoutListener() {
	srv, err := mongotest.NewServer(mongotest.WithoutListener())
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(srv.ClientOptions()) // the URI and srv.Dialer()
	if err != nil {
		panic(err)
	}
	defer client.Disconnect(context.Background())

	err = client.Ping(context.Background(), nil)
	fmt.Println(err)
	// Output: <nil>
}

// Fault injection uses MongoDB's own failCommand fail point.
func ExampleServer_FailCommand() {
	srv, err := mongotest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetRetryWrites(false))
	if err != nil {
		panic(err)
	}
	defer client.Disconnect(context.Background())

	err = srv.FailCommand(bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}},
		{Key: "errorCode", Value: 112}, // WriteConflict
	})
	if err != nil {
		panic(err)
	}
	coll := client.Database("app").Collection("users")
	_, err = coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}})
	var se mongo.ServerError
	fmt.Println(errors.As(err, &se) && se.HasErrorCode(112))
	_, err = coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}})
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}
