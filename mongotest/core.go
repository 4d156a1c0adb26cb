package mongotest

import (
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/mongotest/internal/engine"
)

// core is the server's state behind the wire layer: storage, sessions,
// cursors and fail points.
type core struct {
	engine     *engine.Engine
	sessions   *sessions
	cursors    *cursors
	failpoints *failpoints
	started    time.Time
	scans      scanStats // serverStatus metrics.queryExecutor

	mu       sync.Mutex
	lifetime time.Duration // transactionLifetimeLimitSeconds
	history  time.Duration // minSnapshotHistoryWindowInSeconds
	ttlOff   bool          // ttlMonitorEnabled: false
	ttlLast  time.Time     // the TTL monitor's last pass
}

// ttlMonitorSleep is how often the TTL monitor deletes expired documents,
// MongoDB's default ttlMonitorSleepSecs.
const ttlMonitorSleep = 60 * time.Second

func newCore(lifetime time.Duration, tick func() bson.Timestamp) *core {
	if lifetime <= 0 {
		lifetime = 60 * time.Second
	}
	c := &core{
		engine:     engine.New(tick),
		cursors:    newCursors(),
		failpoints: &failpoints{},
		started:    time.Now(),
		ttlLast:    time.Now(),
		lifetime:   lifetime,
		history:    300 * time.Second,
	}
	c.sessions = newSessions(c)
	c.engine.SetHistoryWindow(c.history)
	return c
}

func (c *core) txnLifetime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lifetime
}

func (c *core) setTxnLifetime(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lifetime = d
}

func (c *core) historyWindow() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.history
}

func (c *core) setHistoryWindow(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.history = d
	c.engine.SetHistoryWindow(d)
}

func (c *core) parameters() bson.D {
	return bson.D{
		{Key: "transactionLifetimeLimitSeconds", Value: int32(c.txnLifetime().Seconds())},
		{Key: "minSnapshotHistoryWindowInSeconds", Value: int32(c.historyWindow().Seconds())},
		{Key: "featureCompatibilityVersion", Value: bson.D{{Key: "version", Value: "7.0"}}},
		{Key: "enableTestCommands", Value: true},
		{Key: "logicalSessionTimeoutMinutes", Value: int32(logicalSessionTimeoutMinutes)},
		{Key: "logicalSessionRefreshMillis", Value: int32(logicalSessionRefresh / time.Millisecond)},
		{Key: "ttlMonitorEnabled", Value: !c.ttlDisabled()},
		{Key: "ttlMonitorSleepSecs", Value: int32(ttlMonitorSleep / time.Second)},
	}
}

// housekeep aborts transactions past their lifetime and forgets idle
// sessions; the server runs it periodically until Close.
func (c *core) housekeep(now time.Time) {
	c.sessions.reap(now, logicalSessionTimeoutMinutes*time.Minute, c.historyWindow())
	c.sessions.refresh(now)
	c.cursors.reap(now)
	c.mu.Lock()
	due := !c.ttlOff && now.Sub(c.ttlLast) >= ttlMonitorSleep
	if due {
		c.ttlLast = now
	}
	c.mu.Unlock()
	if due {
		c.expireTTL(now)
	}
}

func (c *core) ttlDisabled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ttlOff
}

func (c *core) setTTLDisabled(off bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ttlOff = off
}
