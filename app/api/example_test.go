package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"

	"github.com/txkit/txkit/app/api"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/mongofx"
	"github.com/txkit/txkit/tx"
)

// Rewards is a module of your own: a referral pays the referrer 50
// credits, once per referred user.
type Rewards struct {
	referrals *mongo.Collection
	runner    *tx.Runner
	credits   *credits.Service
}

// RewardsParams are the dependencies of NewRewards.
type RewardsParams struct {
	fx.In

	DB      *mongo.Database // from mongofx: the same database as the ledger
	Runner  *tx.Runner
	Credits *credits.Service
}

// NewRewards builds the module's service.
func NewRewards(p RewardsParams) *Rewards {
	return &Rewards{referrals: p.DB.Collection("referrals"), runner: p.Runner, credits: p.Credits}
}

// RewardsModule provides *Rewards.
var RewardsModule = fx.Module("rewards", fx.Provide(NewRewards))

// Referral records that referee was referred by referrer and credits the
// referrer, in one transaction: both happen, or neither. The referral's
// _id is the referee, so a second referral of the same user fails on the
// always-present _id index; the ledger's idempotency key says the same.
func (r *Rewards) Referral(ctx context.Context, referrer, referee string) error {
	return r.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := r.referrals.InsertOne(ctx, bson.D{{Key: "_id", Value: referee}, {Key: "referrer", Value: referrer}}); err != nil {
			return err
		}
		_, err := r.credits.Add(ctx, referrer, 50, credits.IdempotencyKey("referral:"+referee), credits.Reason("referral"))
		return err
	}, tx.WithName("rewards.referral"))
}

// Example_composeWithYourOwnModule mounts txkit's HTTP API next to a module
// of your own in one Fx application.
func Example_composeWithYourOwnModule() {
	const token = "example-token-0123456789"
	var (
		handler *api.Handler
		rewards *Rewards
	)
	app := fx.New(
		fx.NopLogger,
		fx.Supply(mongofx.Config{Embedded: true, Database: "shop"}), // or URI: os.Getenv("MONGODB_URI")
		fx.Supply(api.Config{APIToken: token, WebhookSecret: "example-secret-0123456789", RequestTimeout: 5 * time.Second}),
		mongofx.Module,  // *mongo.Client and *mongo.Database
		tx.Module,       // *tx.Runner
		credits.Module,  // *credits.Service
		payments.Module, // *payments.Service
		api.Module,      // *api.Handler: txkit's routes
		RewardsModule,   // yours
		fx.Populate(&handler, &rewards),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println("start:", err)
		return
	}
	defer func() { _ = app.Stop(ctx) }()

	if err := rewards.Referral(ctx, "ann", "ben"); err != nil {
		fmt.Println("referral:", err)
		return
	}

	// Mount txkit's routes on your own mux, next to your routes.
	mux := http.NewServeMux()
	mux.Handle("/v1/", handler)
	mux.Handle("/webhooks/", handler)

	req := httptest.NewRequest("GET", "/v1/accounts/ann", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	// Output:
	// 200 {"account":"ann","balance":50,"held":0,"available":50}
}
