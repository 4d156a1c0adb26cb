package credits

import "go.mongodb.org/mongo-driver/v2/bson"

// The placeholder. For a batch holding a credit, the fence of an unknown
// outcome (see hotWriter.resolve) inserts the missing account as a
// placeholder, {placeholder: true} with a position of 0, an incarnation
// of its own and no updatedAt, so that the credit's send still on its way
// can neither match nor create it. Such a document is no account: every
// reader takes it for a missing one, and no debit can match it.
//
// The mark alone does not decide that: an instance of the previous
// release (a rolling upgrade, or a rollback) writes to a placeholder as to
// an empty account and leaves the mark, which it does not know. So a
// marked document is no account only while it is as the fence left it,
// which every write of the position, of any release, changes: it sets
// updatedAt. A credit makes the placeholder an account for good, even if
// debits bring it back to 0 later.

// isPlaceholder reports whether acc is a placeholder that nothing has
// written to: no account. acc must be read with its embedded entries, or
// at least the first one. It is the only test of the mark: no filter
// needs one, since every debit's filter demands an available (or held)
// amount of at least 1, which only a written document can have, and
// every credit applies to a placeholder (and makes it an account).
func (acc accountDoc) isPlaceholder() bool {
	return acc.Placeholder && acc.UpdatedAt.IsZero() &&
		acc.Balance == 0 && acc.Held == 0 && acc.Available == 0 && len(acc.Pending) == 0
}

// clearPlaceholder is the update operator that every credit and debit of
// this release carries (on either path, and Reserve's): the account is an
// account from then on, atomically with the write, and its document loses
// the mark. Only a credit can apply to a placeholder; a debit applies to
// a marked document only after a credit of an older release.
var clearPlaceholder = bson.E{Key: "$unset", Value: bson.D{{Key: "placeholder", Value: ""}}}
