// Package query evaluates MongoDB's query language against documents: match
// filters, find projections and sort specifications, with MongoDB 7.0's
// semantics for arrays, missing fields, type bracketing and numeric
// cross-type equality.
//
// # Filters
//
// [Compile] turns a filter into a [Filter] once; [Filter.Match] then runs
// without parsing. Paths are split and operands validated at compile time, so
// every user-facing error (a *merr.Error with MongoDB's code and message)
// surfaces from Compile, never from Match.
//
// # Paths
//
// [Lookup] resolves a dotted path the way the matcher does: a component
// applied to an array of documents reaches into each element, and a numeric
// component also indexes the array.
//
// # Projections and sorts
//
// [CompileProjection] and [CompileSort] validate a find command's projection
// and sort; [Projection.Apply] and [Sort.Compare] apply them.
package query
