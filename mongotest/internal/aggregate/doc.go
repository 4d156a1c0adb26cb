// Package aggregate runs MongoDB aggregation pipelines over in-memory
// documents: the common stages ($match, $project, $addFields/$set, $unset,
// $sort, $skip, $limit, $count, $group, $unwind) and a core set of
// expression operators.
//
// Stages that reach other collections ($lookup, $out, $merge, ...) are not
// supported by mongotest; [Compile] reports them as errors rather than
// running them wrongly.
//
// # Missing values
//
// Expressions distinguish a missing field from null, as the server does:
// a missing result leaves a field out of $project and $addFields output,
// compares below null, and becomes null inside arrays.
package aggregate
