// Command txdecorate generates transactional decorators for interfaces: a
// type that implements the interface by calling a wrapped implementation
// inside a [tx.Runner], one transaction per method call, and a constructor
// to install it with fx.Decorate.
//
// Usage, in a go:generate line next to the interface:
//
//	//go:generate go run github.com/txkit/txkit/cmd/txdecorate -type Service
//
// or from a shell:
//
//	txdecorate -type Service [-output file] [-constructor name] [directory]
//
// The directory (default ".") holds the package that declares the
// interface; the decorator is written to that package, by default to
// <type>_tx.go (snake case). For -type Service it is
//
//	func TransactionalService(next Service, r *tx.Runner) Service
//
// (for a generic interface Repo[T any], TransactionalRepo[T any] takes and
// returns a Repo[T]), which -constructor renames, e.g. to Transactional, so that an app writes
// fx.Decorate(credits.Transactional).
//
// A method whose first parameter is a context.Context and whose last
// result is an error runs in a transaction named "<package>.<Type>.<Method>"
// with the default propagation, [tx.Required]; other methods pass through.
// Comment directives on the interface method change that; on the interface
// itself they set the default of every method:
//
//	//txkit:propagation=requires_new   required, requires_new, mandatory, never, supports, not_supported
//	//txkit:name=credits.deduct        the transaction's name (methods only)
//	//txkit:timeout=2s                 tx.WithTimeout, a time.ParseDuration string
//	//txkit:max_attempts=3             tx.WithMaxAttempts
//	//txkit:none                       no transaction: call through (methods only)
//
// Directives are written without a space after the slashes, like
// //go:generate. A misspelt or misplaced directive is an error with its
// file:line, and so is a setting that can never take effect:
// max_attempts with propagation=mandatory (it always joins, and only a
// transaction's owner retries) or supports, never, not_supported (they
// never start a transaction). An interface default is left out of the
// methods whose own propagation rules it out. Only the options that
// directives ask for are emitted.
//
// txdecorate overwrites only files it generated itself.
//
// [tx.Runner]: https://pkg.go.dev/github.com/txkit/txkit/tx#Runner
// [tx.Required]: https://pkg.go.dev/github.com/txkit/txkit/tx#Required
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "txdecorate:", err)
		os.Exit(1)
	}
}

// run parses args, generates the decorator and writes it.
func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("txdecorate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.typeName, "type", "", "name of the interface to decorate (required)")
	fs.StringVar(&cfg.output, "output", "", "output file (default <dir>/<type>_tx.go)")
	fs.StringVar(&cfg.constructor, "constructor", "", "name of the generated constructor (default Transactional<Type>)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: txdecorate -type Name [-output file] [-constructor name] [directory]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		cfg.dir = "."
	case 1:
		cfg.dir = fs.Arg(0)
	default:
		fs.Usage()
		return fmt.Errorf("one directory expected, got %d arguments", fs.NArg())
	}
	if cfg.typeName == "" {
		fs.Usage()
		return fmt.Errorf("-type is required")
	}
	// The header quotes the go:generate line, so that it does not depend
	// on who ran the tool or where.
	cfg.command = "txdecorate " + strings.Join(args, " ")

	out, src, err := generate(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}
