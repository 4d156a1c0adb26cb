package mongotest

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/bsonkit"
	"github.com/txkit/txkit/mongotest/internal/engine"
	"github.com/txkit/txkit/mongotest/internal/merr"
)

// viewGraph is a database's views as MongoDB's ViewGraph keeps them: an
// edge from each view to every namespace it reads, its viewOn and those
// its pipeline names (ViewCatalog's refs).
type viewGraph struct {
	db       string
	children map[string][]string
	parents  map[string][]string
	// sizes are the views' pipeline sizes, the sum of their stages' BSON
	// sizes; a collection's is 0.
	sizes map[string]int
}

// maxViewPipelineSize is ViewGraph::kMaxViewPipelineSizeBytes: the most
// a resolved view pipeline may weigh.
const maxViewPipelineSize = 16 * 1000 * 1000

// viewStats is what a walk of the graph learns of a node (ViewGraph's
// StatsMap): the height of the chain below or above it, itself included,
// and the heaviest cumulative pipeline size along such a chain.
type viewStats struct{ height, size int }

// checkViewGraph refuses the definition of view ns (on, pipeline) when it
// would close a cycle (GraphContainsCycle), make a chain of views deeper
// than maxViewDepth (ViewDepthLimitExceeded) or a resolved pipeline
// heavier than maxViewPipelineSize (ViewPipelineMaxSizeExceeded), as ViewGraph::
// insertAndValidate (src/mongo/db/views/view_graph.cpp) does at create and
// collMod. Views are never created in a transaction, so the committed
// catalog is the one to check against.
func checkViewGraph(e *engine.Engine, ns engine.Namespace, on string, pipeline bson.A) error {
	g := viewGraph{db: ns.DB, children: map[string][]string{}, parents: map[string][]string{}, sizes: map[string]int{}}
	for _, c := range e.Collections(ns.DB) {
		if c.Name == ns.Coll {
			continue // its new definition replaces the old one
		}
		if on, ok := bsonkit.Get(c.Options, "viewOn"); ok {
			p, _ := bsonkit.Get(c.Options, "pipeline")
			stages, _ := p.(bson.A)
			g.add(c.Name, on, stages)
		}
	}
	g.add(ns.Coll, on, pipeline)

	down := map[string]viewStats{}
	trail := []string{}
	if err := g.validateChildren(ns.Coll, ns.Coll, 0, down, &trail); err != nil {
		return err
	}
	childrenHeight := down[ns.Coll].height - 1 // less the collection at the foot
	up := map[string]viewStats{}
	if err := g.validateParents(ns.Coll, 0, up); err != nil {
		return err
	}
	if up[ns.Coll].height+childrenHeight-1 > maxViewDepth {
		return viewDepthErr()
	}
	// Both walks count the view's own pipeline.
	if up[ns.Coll].size+down[ns.Coll].size-g.sizes[ns.Coll] > maxViewPipelineSize {
		return merr.New(merr.ViewPipelineMaxSizeExceeded, "Operation would result in a resolved view pipeline that exceeds the maximum size of %d bytes", maxViewPipelineSize)
	}
	return nil
}

func viewDepthErr() error {
	return merr.New(merr.ViewDepthLimitExceeded, "View depth limit exceeded; maximum depth is %d", maxViewDepth)
}

// add records view's edges: viewOn and the namespaces of this database its
// pipeline reads.
func (g *viewGraph) add(view string, on any, pipeline bson.A) {
	refs := []string{}
	if s, ok := on.(string); ok {
		refs = append(refs, s)
	}
	refs = pipelineRefs(pipeline, g.db, refs)
	size := 0
	for _, st := range pipeline {
		if d, ok := st.(bson.D); ok {
			n, _ := bsonkit.Size(d)
			size += n
		}
	}
	g.sizes[view] = size
	for _, r := range refs {
		g.children[view] = appendNew(g.children[view], r)
		g.parents[r] = appendNew(g.parents[r], view)
	}
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// validateChildren is ViewGraph::_validateChildren: a walk down from start
// that fails when it comes back to start, naming the path, or goes deeper
// than maxViewDepth. stats receives each node's height (a collection's is
// 1) and the heaviest pipeline below it, its own included.
func (g *viewGraph) validateChildren(start, cur string, depth int, stats map[string]viewStats, trail *[]string) error {
	*trail = append(*trail, cur)
	if depth > 0 && cur == start {
		t := *trail
		var b strings.Builder
		b.WriteString("View cycle detected: " + g.db + "." + t[len(t)-1])
		for i := len(t) - 1; i >= 0; i-- {
			b.WriteString(" => " + g.db + "." + t[i])
		}
		return merr.New(merr.GraphContainsCycle, "%s", b.String())
	}
	if depth > maxViewDepth {
		return viewDepthErr()
	}
	var highest viewStats
	for _, c := range g.children[cur] {
		if _, checked := stats[c]; !checked {
			if err := g.validateChildren(start, c, depth+1, stats, trail); err != nil {
				return err
			}
		}
		highest.height = max(highest.height, stats[c].height)
		highest.size = max(highest.size, stats[c].size)
	}
	*trail = (*trail)[:len(*trail)-1]
	stats[cur] = viewStats{height: highest.height + 1, size: highest.size + g.sizes[cur]}
	return nil
}

// validateParents is ViewGraph::_validateParents: stats receives the
// length of the longest chain of views above each node, itself included,
// and the heaviest pipeline along such a chain, which may not pass
// maxViewPipelineSize.
func (g *viewGraph) validateParents(cur string, depth int, stats map[string]viewStats) error {
	if depth > maxViewDepth {
		return viewDepthErr()
	}
	var highest viewStats
	for _, p := range g.parents[cur] {
		if _, checked := stats[p]; !checked {
			if err := g.validateParents(p, depth+1, stats); err != nil {
				return err
			}
		}
		highest.height = max(highest.height, stats[p].height)
		highest.size = max(highest.size, stats[p].size)
	}
	st := viewStats{height: highest.height + 1, size: highest.size + g.sizes[cur]}
	stats[cur] = st
	if st.size > maxViewPipelineSize {
		return merr.New(merr.ViewPipelineMaxSizeExceeded, "View pipeline is too large and exceeds the maximum size of %d bytes", maxViewPipelineSize)
	}
	return nil
}

// pipelineRefs appends to refs the collections of database db that
// pipeline reads: $lookup's from, $unionWith's coll, and those of the
// pipelines nested in $lookup, $unionWith and $facet (LiteParsedPipeline::
// getInvolvedNamespaces; mongotest has no $graphLookup).
func pipelineRefs(pipeline bson.A, db string, refs []string) []string {
	for _, st := range pipeline {
		stage, ok := st.(bson.D)
		if !ok || len(stage) != 1 {
			continue
		}
		spec, _ := stage[0].Value.(bson.D)
		switch stage[0].Key {
		case "$lookup":
			refs = appendRef(refs, db, field(spec, "from"))
			if sub, ok := field(spec, "pipeline").(bson.A); ok {
				refs = pipelineRefs(sub, db, refs)
			}
		case "$unionWith":
			if s, ok := stage[0].Value.(string); ok {
				refs = appendRef(refs, db, s)
				continue
			}
			refs = appendRef(refs, db, field(spec, "coll"))
			if sub, ok := field(spec, "pipeline").(bson.A); ok {
				refs = pipelineRefs(sub, db, refs)
			}
		case "$facet":
			for _, f := range spec {
				if sub, ok := f.Value.(bson.A); ok {
					refs = pipelineRefs(sub, db, refs)
				}
			}
		}
	}
	return refs
}

// appendRef appends the collection from names, when it is one of db: a
// name, or {db, coll} naming db.
func appendRef(refs []string, db string, from any) []string {
	switch x := from.(type) {
	case string:
		return append(refs, x)
	case bson.D:
		d, _ := bsonkit.Get(x, "db")
		c, _ := bsonkit.Get(x, "coll")
		if name, ok := c.(string); ok && d == db {
			return append(refs, name)
		}
	}
	return refs
}
