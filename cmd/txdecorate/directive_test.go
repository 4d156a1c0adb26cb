package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name string
		give string // the body of package a, which imports context
		want string
	}{
		{
			name: "an unknown type",
			give: "type X interface{}",
			want: "package example.com/a has no type Service",
		},
		{
			name: "a struct",
			give: "type Service struct{}",
			want: "Service is not an interface",
		},
		{
			name: "an alias",
			give: "type S interface{}\ntype Service = S",
			want: "Service is an alias",
		},
		{
			name: "a type that does not compile",
			give: "type Service interface{ Get(context.Context) (Missing, error) }",
			want: "method Get of Service: the type of result 1 does not compile",
		},
		{
			name: "an unknown directive",
			give: "type Service interface{\n//txkit:isolation=serializable\nGet(context.Context) error\n}",
			want: `unknown directive "isolation"`,
		},
		{
			name: "a directive with a space",
			give: "type Service interface{\n// txkit:none\nGet(context.Context) error\n}",
			want: "write directives without a space, as //txkit:none",
		},
		{
			name: "an unknown propagation",
			give: "type Service interface{\n//txkit:propagation=sometimes\nGet(context.Context) error\n}",
			want: `unknown propagation "sometimes"`,
		},
		{
			name: "nested propagation",
			give: "type Service interface{\n//txkit:propagation=nested\nGet(context.Context) error\n}",
			want: "nested is not supported: MongoDB has no savepoints",
		},
		{
			name: "a bad timeout",
			give: "type Service interface{\n//txkit:timeout=soon\nGet(context.Context) error\n}",
			want: "timeout must be a positive duration",
		},
		{
			name: "a negative timeout",
			give: "type Service interface{\n//txkit:timeout=-1s\nGet(context.Context) error\n}",
			want: "timeout must be a positive duration",
		},
		{
			name: "bad max attempts",
			give: "type Service interface{\n//txkit:max_attempts=0\nGet(context.Context) error\n}",
			want: "max_attempts must be a positive integer",
		},
		{
			name: "a directive without value",
			give: "type Service interface{\n//txkit:name\nGet(context.Context) error\n}",
			want: "name needs a value",
		},
		{
			name: "none with a value",
			give: "type Service interface{\n//txkit:none=yes\nGet(context.Context) error\n}",
			want: "none takes no value",
		},
		{
			name: "none with other directives",
			give: "type Service interface{\n//txkit:none\n//txkit:timeout=1s\nGet(context.Context) error\n}",
			want: "txkit:none cannot be combined",
		},
		{
			name: "a directive given twice",
			give: "type Service interface{\n//txkit:timeout=1s\n//txkit:timeout=2s\nGet(context.Context) error\n}",
			want: "timeout given twice",
		},
		{
			name: "a directive on a method without ctx",
			give: "type Service interface{\n//txkit:timeout=1s\nGet() error\n}",
			want: "method Get has txkit directives but cannot run in a transaction",
		},
		{
			name: "a directive on a method without error",
			give: "type Service interface{\n//txkit:propagation=requires_new\nGet(context.Context) int\n}",
			want: "method Get has txkit directives but cannot run in a transaction",
		},
		{
			name: "a name on the interface",
			give: "//txkit:name=all\ntype Service interface{ Get(context.Context) error }",
			want: "txkit:none and txkit:name belong on methods",
		},
		{
			name: "a name clash with the constructor",
			give: "type Service interface{ Get(context.Context) error }\nfunc TransactionalService() {}",
			want: "package a already declares TransactionalService",
		},
		// The package's body starts on line 7 of a.go.
		{
			name: "a directive on an embedded interface",
			give: "type Base interface{ Get(context.Context) error }\ntype Service interface{\n//txkit:timeout=1s\nBase\n}",
			want: "a.go:9:1: //txkit:timeout=1s: on an embedded interface",
		},
		{
			name: "a directive separated from its method by a blank line",
			give: "type Service interface{\n//txkit:timeout=1s\n\nGet(context.Context) error\n}",
			want: "a.go:8:1: //txkit:timeout=1s: misplaced",
		},
		{
			name: "a directive above a parenthesised type group",
			give: "//txkit:timeout=1s\ntype (\nService interface{ Get(context.Context) error }\n)",
			want: "a.go:7:1: //txkit:timeout=1s: above a parenthesised type",
		},
		{
			name: "a directive on a function",
			give: "//txkit:none\nfunc F() {}\n\ntype Service interface{ Get(context.Context) error }",
			want: "a.go:7:1: //txkit:none: misplaced",
		},
		{
			name: "a directive in a block comment",
			give: "type Service interface{\n/*txkit:timeout=1s*/\nGet(context.Context) error\n}",
			want: "a.go:8:1: /*txkit:timeout=1s*/: directives must be line comments",
		},
		{
			name: "a directive in a multi-line block comment",
			give: "type Service interface{\n/*\n * Get gets.\n * txkit:none\n */\nGet(context.Context) error\n}",
			want: "a.go:8:1: /*: directives must be line comments",
		},
		{
			name: "a capitalised prefix",
			give: "type Service interface{\n//Txkit:none\nGet(context.Context) error\n}",
			want: "a.go:8:1: //Txkit:none: misspelt directive",
		},
		{
			name: "a prefix without colon",
			give: "type Service interface{\n//txkit none\nGet(context.Context) error\n}",
			want: "a.go:8:1: //txkit none: misspelt directive",
		},
		{
			name: "a prefix with a dash",
			give: "type Service interface{\n//txkit-none\nGet(context.Context) error\n}",
			want: "a.go:8:1: //txkit-none: misspelt directive",
		},
		{
			name: "a prefix with a dot",
			give: "type Service interface{\n//txkit.timeout=1s\nGet(context.Context) error\n}",
			want: "a.go:8:1: //txkit.timeout=1s: misspelt directive",
		},
		{
			name: "a tx: prefix",
			give: "type Service interface{\n//tx:none\nGet(context.Context) error\n}",
			want: "a.go:8:1: //tx:none: misspelt directive",
		},
		{
			name: "a misspelt prefix away from any interface",
			give: "//Txkit:none\nfunc F() {}\n\ntype Service interface{ Get(context.Context) error }",
			want: "a.go:7:1: //Txkit:none: misspelt directive",
		},
		{
			name: "max_attempts on a mandatory method",
			give: "type Service interface{\n//txkit:propagation=mandatory\n//txkit:max_attempts=3\nGet(context.Context) error\n}",
			want: "method Get: txkit:max_attempts can never take effect: propagation=mandatory always joins",
		},
		{
			name: "max_attempts on a method of a mandatory interface",
			give: "//txkit:propagation=mandatory\ntype Service interface{\n//txkit:max_attempts=3\nGet(context.Context) error\n}",
			want: "a.go:9:1: method Get: txkit:max_attempts can never take effect",
		},
		{
			name: "max_attempts and mandatory on the interface",
			give: "//txkit:propagation=mandatory\n//txkit:max_attempts=3\ntype Service interface{\nGet(context.Context) error\n}",
			want: "method Get: txkit:max_attempts can never take effect",
		},
		{
			name: "max_attempts on a supports method",
			give: "type Service interface{\n//txkit:propagation=supports\n//txkit:max_attempts=3\nGet(context.Context) error\n}",
			want: "propagation=supports never starts a transaction",
		},
		{
			name: "max_attempts on a never method",
			give: "type Service interface{\n//txkit:max_attempts=3\n//txkit:propagation=never\nGet(context.Context) error\n}",
			want: "propagation=never runs without a transaction",
		},
		{
			name: "defaults on an embedded interface",
			give: "//txkit:timeout=3s\ntype K interface{\n//txkit:propagation=requires_new\nKM(context.Context) error\n}\ntype Service interface{\nK\nGet(context.Context) error\n}",
			want: "directive on interface K, which Service embeds",
		},
		{
			name: "defaults on an interface embedded two levels down",
			give: "//txkit:max_attempts=7\ntype R interface{ Plain(context.Context) error }\ntype K interface{ R }\ntype Service interface{\nK\nGet(context.Context) error\n}",
			want: "directive on interface R, which Service embeds",
		},
		{
			name: "max_attempts on a not_supported method",
			give: "type Service interface{\n//txkit:max_attempts=3\n//txkit:propagation=not_supported\nGet(context.Context) error\n}",
			want: "propagation=not_supported runs without a transaction",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case runs the go command
			dir := newModule(t, map[string]string{"a.go": "package a\n\nimport \"context\"\n\nvar _ context.Context\n\n" + tt.give + "\n"})
			_, _, err := generate(config{typeName: "Service", dir: dir, command: "txdecorate"})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDurationExpr(t *testing.T) {
	tests := []struct {
		give time.Duration
		want string
	}{
		{give: time.Second, want: "time.Second"},
		{give: 2 * time.Second, want: "2 * time.Second"},
		{give: 1500 * time.Millisecond, want: "1500 * time.Millisecond"},
		{give: 90 * time.Minute, want: "90 * time.Minute"},
		{give: 3 * time.Hour, want: "3 * time.Hour"},
		{give: 7, want: "7 * time.Nanosecond"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, durationExpr(tt.give, "time"))
		})
	}
}

func TestSnake(t *testing.T) {
	tests := []struct{ give, want string }{
		{give: "Ledger", want: "ledger"},
		{give: "LedgerService", want: "ledger_service"},
		{give: "HTTPClient", want: "http_client"},
		{give: "service", want: "service"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			assert.Equal(t, tt.want, snake(tt.give))
		})
	}
}
