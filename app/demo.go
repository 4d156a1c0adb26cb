package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/txkit/txkit/app/api"
	"github.com/txkit/txkit/tx"
)

// runDemo runs the design note's scenarios end to end on an in-process
// stack (embedded mongotest, the real Fx graph and HTTP server) and prints
// what happened and which invariant held. It returns 1 if any failed.
func runDemo(args []string, out io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(out, "txkit demo: unexpected argument %q\n", args[0])
		return 2
	}
	cfg := Config{
		Addr: "127.0.0.1:0", DB: "txkit_demo", LogFormat: "json",
		APIToken: randomSecret(), WebhookSecret: randomSecret(),
		ShutdownTimeout: 5 * time.Second, RequestTimeout: 30 * time.Second, MongoTimeout: 5 * time.Second,
	}
	var (
		srv    *Server
		client *mongo.Client
	)
	retries := &retryCounter{}
	app := newApp(cfg,
		fx.Decorate(func() *zap.Logger { return zap.NewNop() }),
		fx.Supply(fx.Annotate(retries, fx.As(new(tx.Observer)), fx.ResultTags(`group:"txkit.observers"`))),
		fx.Populate(&srv, &client),
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		fmt.Fprintln(out, "txkit demo: start:", err)
		return 1
	}
	defer func() { _ = app.Stop(context.Background()) }()

	d := &demo{out: out, base: srv.URL(), cfg: cfg, client: client, retries: retries, http: &http.Client{Timeout: 30 * time.Second}}
	fmt.Fprintf(out, "txkit demo: the real service (Fx graph, HTTP API on %s) over an embedded in-memory MongoDB\n", srv.Addr())
	d.concurrentDeductions(ctx)
	d.paymentWithFailedCommit(ctx)
	d.duplicateWebhook()
	d.transfer()
	d.reconcile()
	if d.failed > 0 {
		fmt.Fprintf(out, "\n%d invariant(s) FAILED\n", d.failed)
		return 1
	}
	fmt.Fprintln(out, "\nall invariants held")
	return 0
}

type demo struct {
	out     io.Writer
	base    string
	cfg     Config
	client  *mongo.Client
	retries *retryCounter
	http    *http.Client
	failed  int
	step    int
}

// retryCounter counts transaction retries, to show that one happened.
type retryCounter struct{ n atomic.Int64 }

func (c *retryCounter) Observe(e tx.Event) {
	if e.Kind == tx.EventRetry {
		c.n.Add(1)
	}
}

func (d *demo) title(s string) {
	d.step++
	fmt.Fprintf(d.out, "\n%d. %s\n", d.step, s)
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, "   "+format+"\n", args...) }

// check reports an invariant.
func (d *demo) check(ok bool, invariant string) {
	if ok {
		fmt.Fprintf(d.out, "   ok    %s\n", invariant)
		return
	}
	d.failed++
	fmt.Fprintf(d.out, "   FAIL  %s\n", invariant)
}

// call sends a request and decodes the answer.
func (d *demo) call(method, path, key string, body any, header ...string) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+d.cfg.APIToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(api.HeaderIdempotencyKey, key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return d.send(req)
}

func (d *demo) send(req *http.Request) (int, map[string]any) {
	res, err := d.http.Do(req)
	if err != nil {
		return 0, map[string]any{"error": err.Error()}
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func (d *demo) balance(account string) int64 {
	_, b := d.call("GET", "/v1/accounts/"+account, "", nil)
	n, _ := b["balance"].(float64)
	return int64(n)
}

func (d *demo) concurrentDeductions(context.Context) {
	const start, racers, amount = 100, 25, 10
	d.title(fmt.Sprintf("Concurrent deductions: %d chat messages of %d credits race for one balance of %d", racers, amount, start))
	d.call("POST", "/v1/accounts/demo-user/credits", "demo-welcome", map[string]any{"amount": start, "reason": "welcome"})
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			status, _ := d.call("POST", "/v1/accounts/demo-user/debits", fmt.Sprintf("demo-msg-%d", i), map[string]any{"amount": amount, "reason": "chat message"})
			mu.Lock()
			codes[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	bal := d.balance("demo-user")
	d.say("%d × 201 Created, %d × 409 insufficient_credits; final balance %d", codes[http.StatusCreated], codes[http.StatusConflict], bal)
	d.check(codes[http.StatusCreated] == start/amount && codes[http.StatusConflict] == racers-start/amount,
		fmt.Sprintf("exactly %d debits succeed, the rest are refused", start/amount))
	d.check(bal == start-int64(codes[http.StatusCreated])*amount && bal >= 0,
		"balance = start − amount × successful debits, never below zero (no lost update)")
}

func (d *demo) paymentWithFailedCommit(ctx context.Context) {
	d.title("A payment completes while its commit is made to fail once")
	_, p := d.call("POST", "/v1/payments", "demo-pay-1", map[string]any{
		"account": "demo-buyer", "amount_minor": 499, "currency": "USD", "credits": 500, "provider": "demo", "provider_ref": "pi_demo_1",
	})
	id, _ := p["id"].(string)
	// MongoDB's own fault injection: the next commitTransaction fails with
	// NoSuchTransaction labelled TransientTransactionError, the one refusal
	// of a commit that proves it did not commit (any other is sent again).
	err := d.client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "errorCode", Value: 251},
			{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
		}},
	}).Err()
	if err != nil {
		d.say("cannot inject the fault: %v", err)
		d.check(false, "fault injected")
		return
	}
	before := d.retries.n.Load()
	status, done := d.call("POST", "/v1/payments/"+id+"/complete", "demo-complete-1", nil)
	retried := d.retries.n.Load() - before
	d.say("complete → %d %v after %d transaction retry(ies)", status, done["status"], retried)
	_, got := d.call("GET", "/v1/payments/"+id, "", nil)
	entries := d.entries("demo-buyer")
	d.check(status == http.StatusOK && got["status"] == "completed" && retried >= 1,
		"the failed commit was retried as a whole and the payment is completed")
	d.check(d.balance("demo-buyer") == 500 && entries == 1,
		"credited exactly once: balance 500, one ledger entry (no partial or double state)")
}

func (d *demo) entries(account string) int {
	_, page := d.call("GET", "/v1/accounts/"+account+"/entries?limit=100", "", nil)
	es, _ := page["entries"].([]any)
	return len(es)
}

func (d *demo) duplicateWebhook() {
	d.title("The payment provider delivers the same webhook twice")
	_, p := d.call("POST", "/v1/payments", "demo-pay-2", map[string]any{
		"account": "demo-buyer", "amount_minor": 199, "currency": "USD", "credits": 200, "provider": "demo", "provider_ref": "pi_demo_2",
	})
	_ = p
	body := []byte(`{"id":"evt_demo_1","type":"payment.succeeded","provider":"demo","provider_ref":"pi_demo_2"}`)
	var answers []string
	for range 2 {
		req, _ := http.NewRequest("POST", d.base+"/webhooks/payments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(api.HeaderSignature, api.SignWebhook([]byte(d.cfg.WebhookSecret), time.Now(), body))
		status, res := d.send(req)
		answers = append(answers, fmt.Sprintf("%d %v", status, res["status"]))
	}
	bal := d.balance("demo-buyer")
	d.say("deliveries answered: %s; balance %d", strings.Join(answers, ", "), bal)
	d.check(answers[0] == "200 processed" && answers[1] == "200 duplicate" && bal == 700,
		"processed once per event id: the redelivery answers 200 and credits nothing")
}

func (d *demo) transfer() {
	d.title("A transfer between two accounts")
	before := d.balance("demo-buyer") + d.balance("demo-user")
	status, _ := d.call("POST", "/v1/transfers", "demo-transfer-1", map[string]any{"from": "demo-buyer", "to": "demo-user", "amount": 300, "reason": "gift"})
	again, _ := d.call("POST", "/v1/transfers", "demo-transfer-1", map[string]any{"from": "demo-buyer", "to": "demo-user", "amount": 300, "reason": "gift"})
	buyer, user := d.balance("demo-buyer"), d.balance("demo-user")
	d.say("transfer → %d, its retry with the same Idempotency-Key → %d; balances %d and %d", status, again, buyer, user)
	d.check(status == http.StatusCreated && buyer == 400 && user == 300 && buyer+user == before,
		"both sides moved together and the total is conserved; the retry moved nothing")
}

func (d *demo) reconcile() {
	d.title("Reconciliation of the whole ledger")
	status, rep := d.call("GET", "/v1/reconcile", "", nil)
	ms, _ := rep["mismatches"].([]any)
	d.say("%d accounts, %v entries, %d mismatches", int(num(rep["accounts"])), num(rep["entries"]), len(ms))
	d.check(status == http.StatusOK && rep["ok"] == true, "every balance equals the sum of its entries; held equals its open holds")
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

var _ tx.Observer = (*retryCounter)(nil)
