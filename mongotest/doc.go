// Package mongotest is an in-process MongoDB-compatible server, written in
// pure Go, for tests and for running txkit with no MongoDB installed.
//
// The server speaks MongoDB's wire protocol (OP_MSG, plus OP_QUERY for the
// legacy handshake) over TCP, or over in-memory connections from
// [Server.Dialer], so the official mongo-driver talks to it exactly as it
// talks to a real deployment. It presents itself as the
// primary of a single-member replica set, which is what sessions and
// multi-document transactions require.
//
// # Use in tests
//
// [Start] runs a server for the duration of a test and closes it in
// t.Cleanup:
//
//	func TestSomething(t *testing.T) {
//		srv := mongotest.Start(t)
//		client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
//		require.NoError(t, err)
//		t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
//		// ...
//	}
//
// [Start] takes a [TB], which any testing.TB satisfies: package mongotest
// does not import package testing.
//
// Outside tests, use [NewServer] and [Server.Close]; cmd/mongotest runs the
// same server as a standalone program. Close waits for every goroutine the
// server started, so packages that use it can be checked with goleak.
//
// # Options
//
// [WithAddr] picks the listen address (a free loopback port by default),
// [WithoutListener] opens no port (clients connect through [Server.Dialer]
// or [Server.ClientOptions]),
// [WithReplicaSet] the replica set name ("rs0"), [WithLogger] a zap logger
// and [WithTransactionLifetimeLimit] how long a transaction may stay open.
//
// See docs/mongotest.md for what the server supports and how it differs
// from MongoDB.
package mongotest
