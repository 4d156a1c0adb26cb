package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfig(t *testing.T) {
	t.Run("defaults run embedded and generate the token and secret", func(t *testing.T) {
		cfg, err := loadConfig(nil, env(nil))
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1:8080", cfg.Addr)
		assert.Equal(t, "txkit", cfg.DB)
		assert.Equal(t, "json", cfg.LogFormat)
		assert.True(t, cfg.embedded())
		assert.Len(t, cfg.APIToken, 64)
		assert.Len(t, cfg.WebhookSecret, 64)
		assert.NotEqual(t, cfg.APIToken, cfg.WebhookSecret)
		assert.True(t, cfg.tokenGenerated && cfg.secretGenerated)
	})

	t.Run("the environment is read and flags override it", func(t *testing.T) {
		cfg, err := loadConfig([]string{"-addr", ":9999", "-log", "console"}, env(map[string]string{
			envAddr: "0.0.0.0:1", envMongoURI: "mongodb://db:27017/?replicaSet=rs0", envDB: "prod",
			envAPIToken: "a-token-of-enough-length", envWebhookSecret: "a-secret-of-enough-length", envLog: "json",
		}))
		require.NoError(t, err)
		assert.Equal(t, ":9999", cfg.Addr)
		assert.Equal(t, "console", cfg.LogFormat)
		assert.Equal(t, "prod", cfg.DB)
		assert.False(t, cfg.embedded())
		assert.False(t, cfg.tokenGenerated || cfg.secretGenerated)
		assert.Equal(t, 15*time.Second, cfg.ShutdownTimeout)
	})

	t.Run("the instance name comes from TXKIT_INSTANCE, and -instance wins", func(t *testing.T) {
		cfg, err := loadConfig(nil, env(map[string]string{envInstance: "pod-1"}))
		require.NoError(t, err)
		assert.Equal(t, "pod-1", cfg.Instance)
		cfg, err = loadConfig([]string{"-instance", "pod-2"}, env(map[string]string{envInstance: "pod-1"}))
		require.NoError(t, err)
		assert.Equal(t, "pod-2", cfg.Instance)
	})

	tests := []struct {
		name string
		give map[string]string
		args []string
		want string
	}{
		{name: "a real database without a token refuses to start", give: map[string]string{envMongoURI: "mongodb://db/?replicaSet=rs0", envWebhookSecret: "a-secret-of-enough-length"}, want: "TXKIT_API_TOKEN is required when MONGODB_URI is set"},
		{name: "a real database without a webhook secret refuses to start", give: map[string]string{envMongoURI: "mongodb://db/?replicaSet=rs0", envAPIToken: "a-token-of-enough-length"}, want: "TXKIT_WEBHOOK_SECRET is required when MONGODB_URI is set"},
		{name: "a short token is refused", give: map[string]string{envAPIToken: "short"}, want: "TXKIT_API_TOKEN is too short"},
		{name: "an address without a port is refused", give: map[string]string{envAddr: "localhost"}, want: "TXKIT_ADDR"},
		{name: "a database name with a dot is refused", give: map[string]string{envDB: "a.b"}, want: "TXKIT_DB"},
		{name: "an instance name with whitespace is refused", give: map[string]string{envInstance: "pod 1"}, want: "TXKIT_INSTANCE"},
		{name: "an unknown log format is refused", give: map[string]string{envLog: "xml"}, want: "TXKIT_LOG"},
		{name: "an unknown flag is refused", args: []string{"-token", "x"}, want: "flag provided but not defined"},
		{name: "a stray argument is refused", args: []string{"serve"}, want: `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.args, env(tt.give))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	t.Run("every problem is reported at once, and no secret is in the message", func(t *testing.T) {
		_, err := loadConfig(nil, env(map[string]string{envMongoURI: "mongodb://u:pw@db/?replicaSet=rs0", envLog: "xml"}))
		require.Error(t, err)
		for _, want := range []string{envAPIToken, envWebhookSecret, envLog} {
			assert.Contains(t, err.Error(), want)
		}
		assert.NotContains(t, err.Error(), "pw")
	})
}
