package credits

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/txkit/txkit/tx"
)

// Module provides the *[Service] for the graph's *mongo.Database and
// *tx.Runner (see tx.Module). On start it ensures the schema and starts
// the sweeper; on stop it stops the sweeper.
var Module = fx.Module("credits", fx.Provide(New))

// Params are the dependencies of [New].
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	DB        *mongo.Database
	Runner    *tx.Runner
	Logger    *zap.Logger `optional:"true"`
	Options   []Option    `group:"credits.options"`
}

// New builds the Service that [Module] provides and registers its
// lifecycle. Without Fx, use [NewService].
func New(p Params) *Service {
	opts := make([]Option, 0, len(p.Options)+1)
	if p.Logger != nil {
		opts = append(opts, WithLogger(p.Logger.Named("credits")))
	}
	s := NewService(p.DB, p.Runner, append(opts, p.Options...)...)
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := s.EnsureSchema(ctx); err != nil {
				return err
			}
			s.Start()
			return nil
		},
		OnStop: func(context.Context) error {
			s.Stop()
			return nil
		},
	})
	return s
}

// Defaults adds options to the Service that [Module] provides.
func Defaults(opts ...Option) fx.Option {
	return fx.Provide(fx.Annotate(func() Option { return optionList(opts) }, fx.ResultTags(`group:"credits.options"`)))
}

type optionList []Option

func (l optionList) apply(c *config) {
	for _, o := range l {
		if o != nil {
			o.apply(c)
		}
	}
}
