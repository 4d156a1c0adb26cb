// The analyzer's test corpus: a module of its own, so that it imports the
// real txkit and driver packages. go.work puts it in a workspace with the
// repository's module, whose go.mod and go.sum resolve every dependency.
module txcheckdata

go 1.26.0

require (
	go.mongodb.org/mongo-driver/v2 v2.10.0
)
