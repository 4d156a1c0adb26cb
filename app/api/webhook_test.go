package api

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWebhookSignature(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := &webhookStore{secret: []byte("new-secret-0123456789"), now: func() time.Time { return now }}
	body := []byte(`{"id":"evt_1"}`)
	good := SignWebhook(s.secret, now, body)
	old := SignWebhook([]byte("old-secret-0123456789"), now, body)

	tests := []struct {
		name   string
		give   string
		body   []byte
		want   string // problem code, "" for accepted
		status int
	}{
		{name: "a valid signature is accepted", give: good, body: body},
		{name: "during a rotation, either secret's signature is accepted", give: old + "," + good[len("t=1700000000,"):], body: body},
		{name: "a signature of another body is refused", give: good, body: []byte(`{"id":"evt_2"}`), want: codeBadSignature},
		{name: "a signature of another secret alone is refused", give: old, body: body, want: codeBadSignature},
		{name: "a timestamp changed after signing is refused", give: "t=" + strconv.FormatInt(now.Unix()+1, 10) + good[len("t=1700000000"):], body: body, want: codeBadSignature},
		{name: "a signature 301 s old is stale", give: SignWebhook(s.secret, now.Add(-301*time.Second), body), body: body, want: codeStaleSignature},
		{name: "a signature 299 s old is accepted", give: SignWebhook(s.secret, now.Add(-299*time.Second), body), body: body},
		{name: "a truncated signature is refused", give: good[:len(good)-2], body: body, want: codeBadSignature},
		{name: "an empty header is refused", give: "", body: body, want: codeBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.verify(tt.give, tt.body)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			p := toProblem(err)
			assert.Equal(t, http.StatusUnauthorized, p.Status)
			assert.Equal(t, tt.want, p.Code)
		})
	}
}
