// Package schema holds the schema set-up steps that txkit's modules share.
package schema

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// codeNamespaceExists is MongoDB's answer to creating a collection twice.
const codeNamespaceExists = 48

// CreateCollection creates the collection name in db, or does nothing when
// it exists. Modules create their collections at start because MongoDB may
// refuse to create one inside a transaction.
func CreateCollection(ctx context.Context, db *mongo.Database, name string) error {
	err := db.CreateCollection(ctx, name)
	if ce, ok := errors.AsType[mongo.CommandError](err); ok && ce.Code == codeNamespaceExists {
		return nil
	}
	return err
}
