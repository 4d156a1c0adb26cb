package tx

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides a *[Runner] for the application's *mongo.Client (see
// package mongofx). With a *zap.Logger in the graph, the runner logs with
// a [ZapObserver]; runner-wide options come from [Defaults].
var Module = fx.Module("tx", fx.Provide(New))

// optionsGroup is the value group [Defaults] feeds and [New] reads.
const optionsGroup = "tx.options"

// Params are the dependencies of [New].
type Params struct {
	fx.In

	Client  *mongo.Client
	Logger  *zap.Logger `optional:"true"`
	Options []Option    `group:"tx.options"`
	// Lifecycle, when given, stops the runner's reaper (see [Runner.Close])
	// when the application stops.
	Lifecycle fx.Lifecycle `optional:"true"`
}

// New builds the Runner that [Module] provides. Without Fx, use [NewRunner].
func New(p Params) *Runner {
	opts := make([]Option, 0, len(p.Options)+1)
	if p.Logger != nil {
		opts = append(opts, WithObserver(NewZapObserver(p.Logger.Named("tx"))))
	}
	// Options come after the logger's observer so that WithObserver wins.
	opts = append(opts, p.Options...)
	if p.Logger != nil {
		opts = append(opts, withLogger(p.Logger.Named("tx")))
	}
	if p.Lifecycle == nil {
		return NewRunner(p.Client, opts...)
	}
	r := newRunner(p.Client, opts)
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p.Lifecycle.Append(fx.Hook{
		// The orphan reaping's goroutine starts with the application, so
		// that an application that fails to start leaves none behind.
		OnStart: func(context.Context) error {
			if r.orphans != nil {
				r.orphans.start()
			}
			return nil
		},
		OnStop: func(ctx context.Context) error {
			// Not a failed stop: the server ends transactions left open
			// at its lifetime limit; a registry document written late
			// holds nothing (see registry.close).
			if err := r.Close(ctx); err != nil {
				log.Warn("tx: Close left work to the server (transactions open, or registry documents)", zap.Error(err))
			}
			return nil
		},
	})
	return r
}

// Defaults adds runner-wide default options to the Runner that [Module]
// provides, e.g.
//
//	fx.New(mongofx.Module, tx.Module, tx.Defaults(tx.WithMaxAttempts(5)))
//
// The options of one Defaults apply in order; several Defaults may be
// given, in which case their relative order is unspecified (Fx value
// groups have none), so do not set the same option in two of them.
func Defaults(opts ...Option) fx.Option {
	all := optionList(opts)
	return fx.Provide(fx.Annotate(func() Option { return all }, fx.ResultTags(`group:"`+optionsGroup+`"`)))
}

// optionList applies several options in order, as one.
type optionList []Option

func (l optionList) apply(c *config) {
	for _, o := range l {
		if o != nil {
			o.apply(c)
		}
	}
}
