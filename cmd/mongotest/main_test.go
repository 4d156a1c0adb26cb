package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunPrintsTheURIAndServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	var logs strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-replset", "rsx"}, w, &logs)
		_ = w.Close()
	}()

	lines := bufio.NewScanner(out)
	require.True(t, lines.Scan(), "one line on stdout")
	uri := lines.Text()
	require.Regexp(t, `^mongodb://127\.0\.0\.1:\d+/\?replicaSet=rsx$`, uri)

	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	_, err = client.Database("db").Collection("c").InsertOne(pctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	require.NoError(t, client.Disconnect(pctx))

	cancel()
	require.NoError(t, <-done)
	require.False(t, lines.Scan(), "nothing else on stdout")
	require.Contains(t, logs.String(), "shutting down")
	require.Contains(t, logs.String(), "NO AUTHENTICATION", "it says loudly that anyone reaching it can change data")
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"127.0.0.1:27017", true}, {"[::1]:1", true}, {"localhost:1", true},
		{"0.0.0.0:27017", false}, {"[::]:1", false}, {"10.0.0.1:1", false}, {"nonsense", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, loopback(tt.give), tt.give)
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	var stderr strings.Builder
	err := run(context.Background(), []string{"-nope"}, io.Discard, &stderr)
	require.ErrorIs(t, err, errUsage)
	require.Contains(t, stderr.String(), "-nope")
}
