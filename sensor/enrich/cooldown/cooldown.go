// Package cooldown keeps a client of an outside service (AbuseIPDB, ip-api)
// quiet after a failed request or a spent rate limit, so that a broken or
// overloaded service costs each enrichment batch nothing instead of a
// timeout, and the service is not hammered while it recovers.
package cooldown

import (
	"log/slog"
	"sync"
	"time"
)

// Cooldown is the quiet period of one client. It is safe for concurrent use.
type Cooldown struct {
	name string
	def  time.Duration
	now  func() time.Time
	log  *slog.Logger

	mu       sync.Mutex
	until    time.Time
	failures uint64
}

// New returns a Cooldown for the client called name (used in log lines);
// def is the pause after a failure when the caller names none.
func New(name string, def time.Duration, now func() time.Time, log *slog.Logger) *Cooldown {
	return &Cooldown{name: name, def: def, now: now, log: log}
}

// Active reports whether the client should stay quiet now.
func (c *Cooldown) Active() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now().Before(c.until)
}

// Until keeps the client quiet until t (a rate limit's reset time). A later
// quiet period already set is kept.
func (c *Cooldown) Until(t time.Time) {
	c.mu.Lock()
	if t.After(c.until) {
		c.until = t
	}
	c.mu.Unlock()
}

// Fail counts a failure, keeps the client quiet for pause (or the default
// when pause <= 0), logs one line, and returns err for the caller to pass on.
func (c *Cooldown) Fail(err error, pause time.Duration) error {
	if pause <= 0 {
		pause = c.def
	}
	c.mu.Lock()
	c.failures++
	c.mu.Unlock()
	c.Until(c.now().Add(pause))
	c.log.Warn(c.name+": request failed, pausing", "err", err, "pause", pause)
	return err
}

// Failures returns how many requests failed so far.
func (c *Cooldown) Failures() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures
}
