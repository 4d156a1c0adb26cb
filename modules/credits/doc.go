// Package credits is a ledger of credits: accounts, immutable entries and
// holds, built on the transaction runner of package tx. Users buy credits
// (see package payments) and spend them per use, often with the real cost
// known only after the work is done.
//
// # Invariants
//
// For every account, at every commit:
//
//   - balance = the sum of its entries' signed amounts;
//   - held = the sum of its open holds; available = balance - held;
//   - balance, held and available are never negative, and never overflow.
//
// [Service.Reconcile] checks all of them. They hold because a balance only
// ever changes in the same atomic write as its entry, and every write that
// lowers available is guarded: its filter demands enough available balance
// ({available: {$gte: amount}}), so the check and the write are one step on
// the server. There is no read-check-save anywhere.
//
// # The write path
//
// [Service.Add] and [Service.Deduct], with or without an idempotency key,
// take the single-document path unless ctx carries a transaction (txkit's
// or one started with the driver): one guarded update that changes the
// balance and embeds the entry in the account document ($push), atomic
// without a transaction. Writers on a hot account then queue on the
// document instead of aborting each other's transactions, and one
// process's concurrent writes to an account are combined into one update.
// Embedded entries are copied to the entries collection later (by the
// writer every few writes, and by the sweeper), idempotently: inserted
// under their own id, then removed from the document. Readers
// ([Service.History], [Service.Reconcile]) merge both places.
//
// Every other mutation (multi-document, or inside a caller's transaction)
// runs in a transaction: the caller's, so package payments composes it,
// or one of the [tx.Runner].
//
// # Idempotency
//
// A mutation given [IdempotencyKey] records the key, a hash of its
// parameters and its result: in a transaction, together with its effect;
// on the single-document path, before it, as a claim of the id of the
// entry to write, which is applied at most once. The call whose write
// applies it is the key's first success (see [Replayed]); a repeat
// returns the entry applied; a repeat with other parameters fails with
// [ErrIdempotencyConflict]. Keys
// are remembered for [DefaultKeyRetention] (see [WithKeyRetention]).
// After [ErrOutcomeUnknown], retry with the same key.
//
// # Holds
//
// [Service.Reserve] moves an amount from available to held; [Service.Capture]
// spends up to that amount and releases the rest; [Service.Release]
// releases it all. Holds past their TTL are released lazily (by Deduct and
// Reserve when short of credits, by Balance) and by the sweeper that
// [Service.Start] runs.
package credits
