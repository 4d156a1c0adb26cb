// Command app is the txkit credits service.
package main

import "fmt"

func main() {
	fmt.Println("txkit: the credits service is not built yet; run `go test -race ./...` to exercise the framework.")
}
