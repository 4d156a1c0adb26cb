// Command txcheck reports MongoDB transaction bugs in Go code: a collection
// call given a ctx from outside its transaction, effects that a re-run
// transaction callback repeats, and manual scopes that are not ended. See
// docs/txcheck.md.
//
// Standalone:
//
//	go run github.com/txkit/txkit/cmd/txcheck ./...
//
// As a vet tool:
//
//	go build -o txcheck github.com/txkit/txkit/cmd/txcheck
//	go vet -vettool=$(pwd)/txcheck ./...
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/txkit/txkit/tx/txcheck"
)

func main() { singlechecker.Main(txcheck.Analyzer) }
