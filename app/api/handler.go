// Package api is txkit's HTTP API as an importable Fx module: the credits
// ledger, payments and payment webhooks over JSON, with bearer-token
// authentication, Idempotency-Key on every money-changing route, RFC 9457
// problems and one access-log line per request. The routes and their
// answers are described in docs/app.md; composing the module in an
// application of your own in docs/fx.md.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/txkit/txkit/internal/idempotency"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

// Config is what the API needs to know besides its dependencies.
type Config struct {
	// APIToken is the bearer token every /v1 route requires.
	APIToken string
	// WebhookSecret is the HMAC-SHA256 key of payment webhooks.
	WebhookSecret string
	// RequestTimeout bounds each request's work, database calls included.
	RequestTimeout time.Duration
}

// Module provides the API's [*Handler] to an Fx application. It needs a
// [Config], a *mongo.Client and *mongo.Database (mongofx provides both),
// a *tx.Runner (tx.Module), *credits.Service (credits.Module) and
// *payments.Service (payments.Module). Mount the handler on a server of
// your own, or use it as the whole server's handler.
//
// It also sets the runner's clean-up timeout (tx.WithCleanupTimeout) to
// [CleanupTimeout] of Config.RequestTimeout, through tx.Module's options
// group, so that a handler ends within [AnswerGrace] of its request's
// deadline even when the database stops answering during an abort: do not
// set tx.WithCleanupTimeout in tx.Defaults as well.
var Module = fx.Module("api",
	fx.Provide(NewHandler),
	fx.Provide(fx.Annotate(runnerCleanup, fx.ResultTags(`group:"tx.options"`))),
)

// CleanupTimeout returns the tx runner's clean-up timeout
// (tx.WithCleanupTimeout) that fits requests bounded by requestTimeout: a
// handler may spend it aborting after its deadline, and still answers
// within [AnswerGrace] of it, with half of AnswerGrace left to learn an
// outcome and write the answer. It is never more than requestTimeout
// itself: an abort slower than a whole request means the database stalls,
// and the runner's reaper then kills the transaction once it answers.
func CleanupTimeout(requestTimeout time.Duration) time.Duration {
	if requestTimeout <= 0 {
		return AnswerGrace / 2
	}
	return min(requestTimeout, AnswerGrace/2)
}

func runnerCleanup(c Config) tx.Option {
	return tx.WithCleanupTimeout(CleanupTimeout(c.RequestTimeout))
}

// api holds what the handlers use.
type api struct {
	cfg      Config
	log      *zap.Logger
	client   *mongo.Client
	credits  *credits.Service
	payments *payments.Service
	runner   *tx.Runner
	// responses records the keys of requests whose operation has no
	// ledger key (see recorded), in the ledger's key space; legacy is
	// where earlier versions recorded them.
	responses *idempotency.Store
	legacy    *idempotency.Store
	// legacyUntil (Unix ns) is when the last record in legacy expires
	// (see loadLegacyHorizon); 0 when there is none.
	legacyUntil atomic.Int64
	webhooks    *webhookStore
	tokenSum    [sha256.Size]byte
}

// Handler is the whole HTTP API: request ids, the access log, the request
// timeout, authentication and every route. It is an [http.Handler].
type Handler struct {
	h http.Handler
}

var _ http.Handler = (*Handler)(nil)

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.h.ServeHTTP(w, r) }

// HandlerParams are the dependencies of [NewHandler].
type HandlerParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Logger    *zap.Logger `optional:"true"`
	Client    *mongo.Client
	DB        *mongo.Database
	Runner    *tx.Runner
	Credits   *credits.Service
	Payments  *payments.Service

	// MeterProvider, when set, receives the txkit.http.* metrics.
	MeterProvider metric.MeterProvider `optional:"true"`
	// Metrics, when set, is served at GET /metrics behind the API token
	// (Prometheus scrape configs send it as a bearer token).
	Metrics http.Handler `name:"txkit_metrics" optional:"true"`
}

// NewHandler returns the API's handler and registers the creation of its
// collections' indexes at start.
func NewHandler(p HandlerParams) (*Handler, error) {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	a := &api{
		cfg:       p.Config,
		log:       log.Named("api"),
		client:    p.Client,
		credits:   p.Credits,
		payments:  p.Payments,
		runner:    p.Runner,
		responses: newResponseStore(p.Credits),
		legacy:    newLegacyStore(p.DB),
		webhooks:  newWebhookStore(p.DB, p.Runner, p.Payments, p.Config.WebhookSecret),
		tokenSum:  sha256.Sum256([]byte(p.Config.APIToken)),
	}
	p.Lifecycle.Append(fx.Hook{OnStart: func(ctx context.Context) error {
		if err := a.responses.EnsureSchema(ctx); err != nil {
			return fmt.Errorf("api: %w", err)
		}
		if err := a.loadLegacyHorizon(ctx); err != nil {
			return fmt.Errorf("api: %w", err)
		}
		return a.webhooks.ensureIndexes(ctx)
	}})
	metrics, err := newHTTPMetrics(p.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("api: metrics: %w", err)
	}
	mux := a.routes()
	if p.Metrics != nil {
		mux.Handle("GET /metrics", a.authorized(p.Metrics))
	}
	return &Handler{h: withRequestLog(log.Named("http"), metrics, p.Config.RequestTimeout, problemMux(mux))}, nil
}

func (a *api) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", a.handle(a.healthz))
	mux.Handle("GET /readyz", a.handle(a.readyz))

	v1 := func(pattern string, h handlerFunc) { mux.Handle(pattern, a.authorized(a.handle(h))) }
	v1("GET /v1/accounts/{account}", a.getBalance)
	v1("GET /v1/accounts/{account}/entries", a.listEntries)
	v1("POST /v1/accounts/{account}/credits", a.addCredits)
	v1("POST /v1/accounts/{account}/debits", a.deductCredits)
	v1("POST /v1/transfers", a.transfer)
	v1("POST /v1/accounts/{account}/holds", a.reserve)
	v1("POST /v1/holds/{id}/capture", a.capture)
	v1("POST /v1/holds/{id}/release", a.release)
	v1("POST /v1/payments", a.createPayment)
	v1("GET /v1/payments/{id}", a.getPayment)
	v1("POST /v1/payments/{id}/complete", a.completePayment)
	v1("POST /v1/payments/{id}/refund", a.refundPayment)
	v1("GET /v1/reconcile", a.reconcile)

	mux.Handle("POST /webhooks/payments", a.handle(a.webhook))
	return mux
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle writes the problem of h's error. Server-side failures are logged
// here, once, with the request id; client errors are not.
func (a *api) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		p := toProblem(err)
		if p.Status >= 500 {
			a.log.Error("request failed", zap.String("request_id", requestIDFrom(r.Context())), zap.Int("status", p.Status), zap.Error(err))
		}
		writeProblem(w, r, p)
	})
}

// authorized requires "Authorization: Bearer <token>". Comparing hashes
// keeps the comparison constant-time in the token's length too.
func (a *api) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(token))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="txkit"`)
			writeProblem(w, r, problem{Status: http.StatusUnauthorized, Code: codeUnauthorized, Detail: "missing or wrong bearer token (Authorization: Bearer <TXKIT_API_TOKEN>)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *api) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz pings the primary: ready means able to run transactions.
func (a *api) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.client.Ping(ctx, readpref.Primary()); err != nil {
		a.log.Warn("not ready", zap.Error(err))
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Detail: "the database does not answer"}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// validID is the shape of every account, hold and payment id in a path or
// body (the ledger's own rule for accounts): user input never reaches a
// query as anything but such a string.
var validID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

func pathID(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if !validID.MatchString(v) {
		return "", invalidID(name)
	}
	return v, nil
}

func invalidID(name string) error {
	code := codeInvalidID
	if name == "account" || name == "from" || name == "to" {
		code = codeInvalidAccount
	}
	return errBadRequest(code, name+" must be 1 to 128 characters from A-Z a-z 0-9 _ . : -")
}
