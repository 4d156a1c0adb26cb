package effects

import (
	"context"
	"net/http"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

// Look-alikes that are re-runnable, or not in a re-runnable callback.

func afterCommit(ctx context.Context, events chan<- string) (int, error) {
	sent := 0
	err := runner.Run(ctx, func(ctx context.Context) error {
		if _, err := coll.InsertOne(ctx, bson.D{}); err != nil {
			return err
		}
		tx.AfterCommit(ctx, func(context.Context) {
			sent++
			events <- "committed"
			_, _ = http.Get("http://example.com/hook")
			go func() {}()
		})
		return nil
	})
	return sent, err
}

func resetFirst(ctx context.Context) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	count := 0
	err := runner.Run(ctx, func(ctx context.Context) error {
		names = names[:0] // each attempt starts over
		clear(seen)
		count = 0
		for _, n := range []string{"a", "b"} {
			names = append(names, n)
			seen[n] = true
			count++
		}
		return nil
	})
	return names, err
}

func resultAssigned(ctx context.Context) (int64, error) {
	var n int64
	err := runner.Run(ctx, func(ctx context.Context) error {
		var err error
		n, err = coll.CountDocuments(ctx, bson.D{}) // a plain assignment: the last attempt's value wins
		return err
	})
	return n, err
}

func locals(ctx context.Context) error {
	return runner.Run(ctx, func(ctx context.Context) error {
		var docs []any
		m := map[string]int{}
		i := 0
		ch := make(chan int, 1)
		for ; i < 3; i++ {
			docs = append(docs, bson.D{{Key: "i", Value: i}})
			m["k"] += i
		}
		ch <- i
		<-ch
		_, err := coll.InsertMany(ctx, docs)
		return err
	})
}

func idempotentFlags(ctx context.Context) (uint8, error) {
	var flags uint8
	err := runner.Run(ctx, func(ctx context.Context) error {
		flags |= 1
		flags &^= 2
		return nil
	})
	return flags, err
}

func goWithoutCtx(ctx context.Context, done chan struct{}) error {
	return runner.Run(ctx, func(tctx context.Context) error {
		go func() { close(done) }()
		go func(c context.Context) { <-c.Done() }(ctx) // the outer ctx: no session
		return nil
	})
}

func notRerun(ctx context.Context, sess *mongo.Session, events chan<- string) error {
	n := 0
	if err := mongo.WithSession(ctx, sess, func(ctx context.Context) error {
		n++ // mongo.WithSession runs its callback once
		events <- "once"
		return nil
	}); err != nil {
		return err
	}
	ctx, t, err := runner.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback(ctx)
	n++ // a manual scope runs once: nothing re-runs it
	_ = n
	return t.Commit(ctx)
}

func outside(ctx context.Context, events chan<- string) error {
	n := 0
	if err := runner.Run(ctx, func(ctx context.Context) error { return nil }); err != nil {
		return err
	}
	n++
	_ = n
	events <- "after"
	return nil
}

func ignoredEffect(ctx context.Context) (int, error) {
	attempts := 0
	err := runner.Run(ctx, func(ctx context.Context) error {
		attempts++ //txcheck:ignore counts the attempts on purpose
		return nil
	})
	return attempts, err
}
