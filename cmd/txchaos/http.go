package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/txkit/txkit/internal/chaos"
)

// appClientName is the app name that the application gives its MongoDB
// client (app/app.go), which the fail points aim at.
const appClientName = "txkit"

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startApp starts the application (app/) as a child process on uri's
// database db, and returns the backend that drives its HTTP API and a
// function that stops it. bin is the application's binary; when empty it
// is built from ./app, so txchaos must then run from the repository.
func startApp(ctx context.Context, bin, uri, db string) (*chaos.HTTP, func(), error) {
	dir, err := os.MkdirTemp("", "txchaos-app-")
	if err != nil {
		return nil, nil, err
	}
	if bin == "" {
		bin = filepath.Join(dir, "txkit-app")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./app")
		if out, err := build.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("build ./app (run txchaos -http from the repository, or give -app): %v\n%s", err, out)
		}
	}
	token, secret := secretHex(), secretHex()
	// As connect does for txchaos's own clients: a ShutdownInProgress the
	// injector sends marks the server unknown until the app's next
	// heartbeat, 10 s by default, during which every request waits for
	// server selection and most reach their timeout.
	uri = withHeartbeat(uri)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"MONGODB_URI="+uri, "TXKIT_DB="+db, "TXKIT_ADDR=127.0.0.1:0",
		"TXKIT_API_TOKEN="+token, "TXKIT_WEBHOOK_SECRET="+secret, "TXKIT_LOG=json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cmd.Stderr = io.Discard // request logs
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
	}
	base := make(chan string, 1)
	go func() { // reads the banner, then drains stdout until the app exits
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				base <- m[1]
				sent = true
			}
		}
		if !sent {
			close(base)
		}
	}()
	select {
	case b, ok := <-base:
		if !ok {
			stop()
			return nil, nil, fmt.Errorf("the app exited before it listened")
		}
		return &chaos.HTTP{Base: b, Token: token, WebhookSecret: secret, Client: &http.Client{}}, stop, nil
	case <-time.After(time.Minute):
		stop()
		return nil, nil, fmt.Errorf("the app did not listen within a minute")
	}
}

func secretHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// withHeartbeat returns uri asking for the shortest heartbeat (500 ms).
func withHeartbeat(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	q := u.Query()
	q.Set("heartbeatFrequencyMS", "500")
	u.RawQuery = q.Encode()
	return u.String()
}
