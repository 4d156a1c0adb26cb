package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Environment variables read by [loadConfig].
const (
	envAddr          = "TXKIT_ADDR"
	envMongoURI      = "MONGODB_URI"
	envDB            = "TXKIT_DB"
	envAPIToken      = "TXKIT_API_TOKEN"
	envWebhookSecret = "TXKIT_WEBHOOK_SECRET"
	envLog           = "TXKIT_LOG"
	envInstance      = "TXKIT_INSTANCE"
)

// Defaults of [Config].
const (
	defaultAddr            = "127.0.0.1:8080"
	defaultDB              = "txkit"
	defaultShutdownTimeout = 15 * time.Second
	defaultRequestTimeout  = 10 * time.Second
	defaultMongoTimeout    = 10 * time.Second

	// minSecretLen keeps a token or secret guessable by no one: 16 bytes
	// is what `openssl rand -hex 8` gives, the least we accept.
	minSecretLen = 16
)

// Config is the whole configuration of the service. [loadConfig] builds it
// from the environment and flags; tests build it directly.
type Config struct {
	// Addr is the TCP address the HTTP server listens on; port 0 picks a
	// free one (see [Server.Addr]).
	Addr string
	// MongoURI is the replica set to use; empty runs an embedded in-memory
	// server, whose data is lost when the service stops.
	MongoURI string
	// DB is the database that holds the ledger, payments and the HTTP
	// idempotency records.
	DB string
	// APIToken is the bearer token every /v1 route requires.
	APIToken string
	// WebhookSecret is the HMAC-SHA256 key of payment webhooks.
	WebhookSecret string
	// LogFormat is "json" or "console".
	LogFormat string
	// Instance names this process's slot among the service's processes:
	// the same across its restarts, unique among the processes running
	// at one time (a StatefulSet pod's name). A restart under the same
	// name kills at once the transactions its killed predecessor left
	// open; empty gives a random name, and they are killed once the dead
	// process's lease expires (see tx.WithOrphanReaping).
	Instance string

	// ShutdownTimeout bounds the drain of in-flight requests on stop.
	ShutdownTimeout time.Duration
	// RequestTimeout bounds each request's work, database calls included.
	RequestTimeout time.Duration
	// MongoTimeout bounds server selection, and so how long a request
	// waits for an unreachable database before it is answered with 503.
	MongoTimeout time.Duration

	// Out receives the one-time start-up banner (listening address and,
	// in embedded mode, the generated token and secret); nil prints none.
	Out io.Writer

	// generated lists which secrets were generated, for the banner.
	tokenGenerated, secretGenerated bool
	// steps, when set, learns which start hook runs (see run).
	steps *startSteps
	// getenv reads OTEL_* variables; none are set when nil.
	getenv func(string) string
}

// env reads an environment variable through getenv.
func (c Config) env(name string) string {
	if c.getenv == nil {
		return ""
	}
	return c.getenv(name)
}

// embedded reports whether the service runs on its own in-memory server.
func (c Config) embedded() bool { return c.MongoURI == "" }

// loadConfig builds a Config from args and the environment (getenv); a
// flag overrides its variable. The token and the secret have no flags: a
// command line is visible to every user of the machine. In embedded mode a
// missing token or secret is generated; against a real database it is an
// error.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	cfg := Config{
		getenv:          getenv,
		Addr:            or(getenv(envAddr), defaultAddr),
		MongoURI:        getenv(envMongoURI),
		DB:              or(getenv(envDB), defaultDB),
		APIToken:        getenv(envAPIToken),
		WebhookSecret:   getenv(envWebhookSecret),
		LogFormat:       or(getenv(envLog), "json"),
		Instance:        getenv(envInstance),
		ShutdownTimeout: defaultShutdownTimeout,
		RequestTimeout:  defaultRequestTimeout,
		MongoTimeout:    defaultMongoTimeout,
	}

	fs := flag.NewFlagSet("txkit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address ("+envAddr+")")
	fs.StringVar(&cfg.MongoURI, "mongodb-uri", cfg.MongoURI, "MongoDB replica set URI; empty runs an embedded in-memory server ("+envMongoURI+")")
	fs.StringVar(&cfg.DB, "db", cfg.DB, "database name ("+envDB+")")
	fs.StringVar(&cfg.LogFormat, "log", cfg.LogFormat, "log format, json or console ("+envLog+")")
	fs.StringVar(&cfg.Instance, "instance", cfg.Instance, "this process's name, stable across restarts and unique among running processes, e.g. a StatefulSet pod's ("+envInstance+")")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "bound on draining in-flight requests at stop")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "bound on each request's work")
	fs.DurationVar(&cfg.MongoTimeout, "mongodb-timeout", cfg.MongoTimeout, "bound on waiting for the database (server selection)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}

	// A secret read from a file often ends in a newline that no client
	// sends: surrounding whitespace is not part of a secret.
	cfg.APIToken = strings.TrimSpace(cfg.APIToken)
	cfg.WebhookSecret = strings.TrimSpace(cfg.WebhookSecret)
	if cfg.embedded() {
		if cfg.APIToken == "" {
			cfg.APIToken, cfg.tokenGenerated = randomSecret(), true
		}
		if cfg.WebhookSecret == "" {
			cfg.WebhookSecret, cfg.secretGenerated = randomSecret(), true
		}
	}
	return cfg, cfg.validate()
}

// validate reports every problem of c at once, so that one start tells the
// operator all there is to fix.
func (c Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("%s %q is not host:port: %w", envAddr, c.Addr, err))
	}
	if err := validDBName(c.DB); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", envDB, err))
	}
	if len(c.Instance) > 128 || strings.IndexFunc(c.Instance, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		errs = append(errs, fmt.Errorf("%s %q must be at most 128 characters, without whitespace or control characters", envInstance, c.Instance))
	}
	errs = append(errs, checkSecret(envAPIToken, c.APIToken), checkSecret(envWebhookSecret, c.WebhookSecret))
	switch c.LogFormat {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("%s is %q; want json or console", envLog, c.LogFormat))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"shutdown timeout", c.ShutdownTimeout}, {"request timeout", c.RequestTimeout}, {"MongoDB timeout", c.MongoTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", d.name, d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func checkSecret(name, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is required when %s is set (generate one with `openssl rand -hex 32`)", name, envMongoURI)
	case len(v) < minSecretLen:
		return fmt.Errorf("%s is too short: at least %d characters", name, minSecretLen)
	case strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf("%s contains whitespace or control characters; a client could not send it in a header", name)
	}
	return nil
}

// validDBName applies MongoDB's rules for database names.
func validDBName(name string) error {
	switch {
	case name == "":
		return errors.New("database name is empty")
	case len(name) > 63:
		return fmt.Errorf("database name %q is longer than 63 bytes", name)
	case strings.ContainsAny(name, "/\\. \"$*<>:|?\x00"):
		return fmt.Errorf("database name %q contains one of /\\. \"$*<>:|?", name)
	}
	return nil
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
