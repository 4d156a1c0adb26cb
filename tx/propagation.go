package tx

import "strconv"

// Propagation says how a scope relates to a transaction already carried by
// its ctx (one started by a [Runner] of the same client, or with the
// driver on that client's session). A transaction of another client cannot
// be joined: the scopes that would join it fail with [ErrOtherClient]
// ([Never]: [ErrTransactionExists]); [RequiresNew] and [NotSupported] run.
type Propagation uint8

// The propagation modes. They follow Spring's, which most Java and Kotlin
// engineers know; MongoDB has no savepoints, so [Nested] is refused.
const (
	// Required joins the transaction in ctx, or starts one. The default.
	Required Propagation = iota
	// RequiresNew always starts its own session and transaction, which
	// commits or aborts independently of the caller's.
	RequiresNew
	// Mandatory joins the transaction in ctx, or fails with ErrNoTransaction.
	Mandatory
	// Never runs without a transaction, or fails with ErrTransactionExists.
	Never
	// Supports joins the transaction in ctx, or runs without one.
	Supports
	// NotSupported runs outside any transaction: the callback's ctx carries
	// no session, so its writes are not part of the caller's transaction.
	NotSupported
	// Nested fails with ErrNestedNotSupported: MongoDB has no savepoints.
	Nested
)

var propagationNames = [...]string{
	Required:     "Required",
	RequiresNew:  "RequiresNew",
	Mandatory:    "Mandatory",
	Never:        "Never",
	Supports:     "Supports",
	NotSupported: "NotSupported",
	Nested:       "Nested",
}

// String returns the mode's name, e.g. "RequiresNew".
func (p Propagation) String() string {
	if int(p) < len(propagationNames) {
		return propagationNames[p]
	}
	return "Propagation(" + strconv.Itoa(int(p)) + ")"
}
