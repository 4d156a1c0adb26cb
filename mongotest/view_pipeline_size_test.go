package mongotest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest"
)

// ViewGraph::insertAndValidate checks, with the cycle and the depth, the
// size of the resolved pipeline through the new view: the sum of the
// pipelines' BSON sizes from the furthest parent to the furthest child
// may not pass kMaxViewPipelineSizeBytes (16 * 1000 * 1000), else
// ViewPipelineMaxSizeExceeded (195) and no view is created
// (src/mongo/db/views/view_graph.cpp). Two 9 MB views stacked resolve to
// 18 MB; a single view whose two stages total just over 16,000,000 bytes
// is refused too. Finding mongotest-view-pipeline-size.
func TestViewPipelineOverMaxSizeIsRefusedWhenDefined(t *testing.T) {
	srv := mongotest.Start(t)
	s := newRandomSession(t, srv)
	big := func(n int) bson.D {
		return bson.D{{Key: "$match", Value: bson.D{{Key: "x", Value: strings.Repeat("y", n)}}}}
	}
	requireOK(t, s.run("db", bson.D{{Key: "create", Value: "v1"}, {Key: "viewOn", Value: "c"}, {Key: "pipeline", Value: bson.A{big(9_000_000)}}}))
	requireCode(t, s.run("db", bson.D{{Key: "create", Value: "v2"}, {Key: "viewOn", Value: "v1"}, {Key: "pipeline", Value: bson.A{big(9_000_000)}}}),
		195, "ViewPipelineMaxSizeExceeded")
	requireCode(t, s.run("db", bson.D{{Key: "create", Value: "v3"}, {Key: "viewOn", Value: "c"}, {Key: "pipeline", Value: bson.A{big(8_000_000), big(8_000_000)}}}),
		195, "ViewPipelineMaxSizeExceeded")
	r := s.run("db", bson.D{{Key: "listCollections", Value: 1}, {Key: "nameOnly", Value: true}})
	requireOK(t, r)
	batch := replyField(replyField(r, "cursor").(bson.D), "firstBatch").(bson.A)
	names := []string{}
	for _, d := range batch {
		names = append(names, replyField(d.(bson.D), "name").(string))
	}
	assert.ElementsMatch(t, []string{"v1"}, names, "only the view within the limit exists")
}
