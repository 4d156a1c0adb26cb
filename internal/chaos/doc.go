// Package chaos is the engine of cmd/txchaos: a concurrent workload that
// drives the credits and payments modules while MongoDB fail points and
// cancelled contexts hit it, a recorded history of what every operation's
// caller was told, and a checker that holds that history against the raw
// documents of the ledger.
//
// # Outcomes
//
// Every operation ends in one [Outcome]: [Applied] (it returned success),
// [Rejected] (a business error such as insufficient credits: nothing was
// written), [Failed] (any other error: the caller was told it did not
// happen), or [Unknown] (the caller was told plainly that nobody knows, or
// its context ended after a commit or a write had been sent, or the
// process was killed while it ran).
//
// # Invariants
//
// [Check] reads nothing but a [Snapshot] of raw documents (taken by
// [Read] with the plain driver, in one snapshot transaction) and the
// history. It reports a [Violation] when an account's balance is not the
// sum of its entries, its held amount not the sum of its open holds, its
// available balance not balance − held or negative; when an operation
// reported applied is not in the ledger exactly once, one reported not
// applied is in it at all, one of unknown outcome is in it partially or
// more than once; when a payment is credited or refunded other than once
// per transition; when one idempotency key has two effects; and when an
// entry exists that no operation explains.
package chaos
