// Package samenames uses two packages named mongo and two named tx.
package samenames

import (
	"context"

	driver "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/cmd/txdecorate/testdata/corpus/mongo"
	ltx "github.com/txkit/txkit/cmd/txdecorate/testdata/corpus/tx"
)

// Repo is decorated.
type Repo interface {
	Find(ctx context.Context, f mongo.Filter, colls ...*driver.Collection) (*driver.SingleResult, error)
	Pay(ctx context.Context, c *driver.Collection) (ltx.Receipt, error)
	Boxed(ctx context.Context, b ltx.Box[mongo.Filter]) (ltx.Box[int], error)
}
