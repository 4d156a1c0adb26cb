package payments

import (
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// Module provides the *[Service]; it needs credits.Module (and what that
// needs). On start it ensures the schema.
var Module = fx.Module("payments", fx.Provide(New))

// Params are the dependencies of [New].
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	DB        *mongo.Database
	Runner    *tx.Runner
	Credits   *credits.Service
	Options   []Option `group:"payments.options"`
}

// New builds the Service that [Module] provides. Without Fx, use
// [NewService].
func New(p Params) *Service {
	s := NewService(p.DB, p.Runner, p.Credits, p.Options...)
	p.Lifecycle.Append(fx.Hook{OnStart: s.EnsureSchema})
	return s
}

// Defaults adds options to the Service that [Module] provides, as
// credits.Defaults does for the ledger.
func Defaults(opts ...Option) fx.Option {
	return fx.Provide(fx.Annotate(func() Option { return optionList(opts) }, fx.ResultTags(`group:"payments.options"`)))
}
