// Package txotel reports txkit transactions to OpenTelemetry: an
// [Observer] for the tx runner that makes a span per transaction, a child
// span per attempt, and metrics.
//
//	obs, err := txotel.New(txotel.WithTracerProvider(tp), txotel.WithMeterProvider(mp))
//	runner := tx.NewRunner(client, tx.WithObserver(tx.Observers(tx.NewZapObserver(log), obs)))
//
// # Spans
//
// An outermost transaction is a span named "tx <name>", a child of the span
// in the caller's ctx (an HTTP request's, for instance). Each attempt is a
// child span "tx <name> attempt" with its number; a retry ends its attempt
// with the error and its MongoDB error labels, and a commit retried alone
// (UnknownTransactionCommitResult) is an event "commit retry" of the
// attempt. The transaction span ends with the outcome (attribute
// txkit.tx.outcome) and, on failure, the error. Scopes that join a
// transaction make no span of their own.
//
// # Metrics
//
// With the OpenTelemetry-to-Prometheus naming rules (dots become
// underscores, the unit "s" adds _seconds, counters end in _total):
//
//   - txkit_tx_duration_seconds: histogram of outermost transactions'
//     durations, by name and outcome.
//   - txkit_tx_attempts_total: attempts begun, by name.
//   - txkit_tx_retries_total: retries, by name, whether only the commit was
//     retried, and the first MongoDB error label of the cause.
//   - txkit_tx_outcomes_total: outermost scopes ended, by name, outcome
//     (committed, aborted, rolled_back, no_transaction, hook_panic) and
//     cause (none, business, infrastructure, cancelled, retries_exhausted,
//     commit_unknown, unexpected_rollback).
//
// Attribute values are the scope's name and fixed words: never an id or
// user input, so that the number of series stays bounded.
package txotel
