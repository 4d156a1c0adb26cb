// Package update compiles and applies MongoDB update documents: operator
// updates ($set, $inc, $push, ...) and replacement documents, with the
// server's path rules, conflict checks, error codes and messages.
//
// # Application order
//
// As in MongoDB 5.0+, an operator update is compiled into a tree of paths
// and applied field by field in lexicographic order (numeric components in
// numeric order), not in the order the operators were written: new fields
// appear in that order at the end of their parent document.
//
// # Modification
//
// [Update.Apply] reports whether the document changed the way MongoDB counts
// nModified: a $set to a value that is already there, type included, is not
// a modification.
//
// # Upserts
//
// [Seed] builds the base document from a filter's equality fields and
// [Options.Insert] makes $setOnInsert take effect; the caller adds a
// generated _id when the result has none.
package update
