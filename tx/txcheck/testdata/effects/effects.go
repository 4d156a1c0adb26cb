// Package effects holds the re-runnable-callback check's cases.
package effects

import (
	"context"
	"net/http"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/batch"
	"github.com/txkit/txkit/tx/decorator"
)

var (
	runner *tx.Runner
	coll   *mongo.Collection
	total  int64
)

type stats struct {
	seen map[string]bool
	n    int
}

func counters(ctx context.Context, s *stats) (int, error) {
	calls := 0
	var ids []string
	byID := map[string]int{}
	var msg string
	err := runner.Run(ctx, func(ctx context.Context) error {
		calls++                // want `calls\+\+ on calls, declared outside the callback, in a re-runnable Runner.Run callback`
		ids = append(ids, "a") // want `append to ids, declared outside the callback`
		byID["a"] = 1          // want `write to map byID, declared outside the callback`
		byID["b"]++            // want `byID\["b"\]\+\+ on byID`
		msg += "x"             // want `msg \+= on msg`
		total -= 2             // want `total -= on total`
		s.n++                  // want `s.n\+\+ on s`
		s.seen["a"] = true     // want `write to map s.seen`
		_, err := coll.InsertOne(ctx, bson.D{})
		return err
	})
	return calls, err
}

func sends(ctx context.Context, events chan<- string) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		events <- "inserted" // want `send on channel events in a re-runnable Runner.Run callback`
		select {
		case events <- "again": // want `send on channel events`
		default:
		}
		return nil
	})
}

func requests(ctx context.Context, hc *http.Client) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		resp, err := http.Post("http://example.com/hook", "text/plain", strings.NewReader("x")) // want `HTTP request http.Post in a re-runnable Runner.Run callback`
		if err != nil {
			return err
		}
		resp.Body.Close()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://example.com", nil)
		resp, err = hc.Do(req) // want `HTTP request \(\*http.Client\).Do`
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
}

func goroutines(ctx context.Context) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		go func() { // want `go statement takes the transaction's ctx into a new goroutine in a Runner.Run callback`
			_, _ = coll.InsertOne(tctx, bson.D{})
		}()
		go insert(context.WithValue(tctx, key{}, 1)) // want `go statement takes the transaction's ctx`
		return nil
	})
}

type key struct{}

func insert(ctx context.Context) { _, _ = coll.InsertOne(ctx, bson.D{}) }

func otherCallbacks(ctx context.Context, e *batch.Executor, sess *mongo.Session) error {
	n := 0
	f := decorator.TransactionalErr(runner, func(ctx context.Context) error {
		n++ // want `n\+\+ on n, declared outside the callback, in a re-runnable decorator.TransactionalErr function`
		return nil
	})
	if err := f(ctx); err != nil {
		return err
	}
	if _, err := tx.Do(ctx, runner, func(ctx context.Context) (int, error) {
		n += 2 // want `in a re-runnable tx.Do callback`
		return n, nil
	}); err != nil {
		return err
	}
	if err := e.Execute(ctx, batch.Step{Name: "count", Run: func(ctx context.Context) error {
		n++ // want `in a re-runnable batch step`
		return nil
	}}); err != nil {
		return err
	}
	_, err := sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		n++ // want `in a re-runnable Session.WithTransaction callback`
		return nil, nil
	})
	return err
}

func nested(ctx context.Context) error {
	var log []string
	return runner.Run(ctx, func(ctx context.Context) error {
		return runner.Run(ctx, func(ctx context.Context) error {
			log = append(log, "inner") // want `append to log, declared outside the callback, in a re-runnable Runner.Run callback`
			return nil
		})
	})
}
