// Command app is the txkit credits service: an HTTP API over the credits
// ledger and the payments state machine, composed with Fx.
//
//	go run ./app        # serve; embedded in-memory MongoDB unless MONGODB_URI is set
//	go run ./app demo   # run the end-to-end scenarios and report their invariants
//
// Configuration, the API and running against a replica set are described
// in docs/app.md.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Getenv)) }
