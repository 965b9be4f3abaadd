package push

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ErrTokenRejected marks a delivery the relay refused because of the
// sensor's token (close status 1008: bad or missing token, ingest
// disabled). Retrying cannot help until the token or the relay's token file
// changes, so it is reported as an ERROR, once a minute, not as a transient
// failure.
var ErrTokenRejected = errors.New("the relay rejected the sensor's token")

// Prober is a Sink that can check the relay and the token before there is
// anything to deliver. The Forwarder probes at start, so a wrong token or an
// unreachable relay is reported when the sensor starts, not at its first
// incident.
type Prober interface {
	Probe(ctx context.Context) error
}

// authReportEvery spaces the ERROR lines about a rejected token: the
// forwarder retries every 30 s at most (Backoff.Max), and one line a
// minute keeps the problem in view without flooding the log.
const authReportEvery = time.Minute

// health is a forwarder's view of its relay, for logs, Stats, the metrics
// and the sensor's /healthz.
type health struct {
	mu       sync.Mutex
	known    bool   // one attempt has finished
	everOK   bool   // one attempt has succeeded
	rejected bool   // the last attempt failed with ErrTokenRejected
	lastErr  string // the last attempt's error, "" after a success
	reportAt time.Time
}

// probe checks the relay and the token at start, retrying with the usual
// backoff until it succeeds; it returns an error only when ctx ends.
func (f *Forwarder) probe(ctx context.Context, p Prober, log *slog.Logger) error {
	for failures := 0; ; {
		err := p.Probe(ctx)
		if err == nil {
			f.noteSuccess(failures, log)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		if err := f.backOff(ctx, err, failures, log); err != nil {
			return err
		}
	}
}

// noteSuccess records a delivery or probe the relay answered. It logs the
// connection only when it changes: at the first success, and after
// failures.
func (f *Forwarder) noteSuccess(failures int, log *slog.Logger) {
	f.up.Store(1)
	f.h.mu.Lock()
	first, wasRejected := !f.h.everOK, f.h.rejected
	f.h.known, f.h.everOK, f.h.rejected, f.h.lastErr = true, true, false, ""
	f.h.mu.Unlock()
	switch {
	case wasRejected:
		log.Info("push: the relay accepts the token now", "relay", f.Name, "after_failures", failures)
	case first:
		log.Info("push: connected to the relay", "relay", f.Name, "after_failures", failures)
	case failures > 0:
		log.Info("push: delivering again", "relay", f.Name, "after_failures", failures)
	}
}

// noteFailure records a failed attempt and logs it: a rejected token as an
// ERROR at most once a minute, naming what the sensor knows of the token
// (the relay, the token's SHA-256 prefix, this sensor's host setting);
// other failures as a WARN the first time and every tenth.
func (f *Forwarder) noteFailure(err error, failures int, wait time.Duration, log *slog.Logger) {
	f.failures.Add(1)
	f.up.Store(0)
	rejected := errors.Is(err, ErrTokenRejected)
	now := time.Now()
	f.h.mu.Lock()
	report := rejected && (!f.h.rejected || now.Sub(f.h.reportAt) >= authReportEvery)
	if report {
		f.h.reportAt = now
	}
	f.h.known, f.h.rejected, f.h.lastErr = true, rejected, err.Error()
	f.h.mu.Unlock()
	switch {
	case report:
		args := []any{"relay", f.Name, "err", err, "retry_in", wait.Round(time.Millisecond)}
		if f.TokenID != "" {
			args = append(args, "token_sha256_prefix", f.TokenID)
		}
		if f.Host != "" {
			args = append(args, "sensor_host", f.Host)
		}
		log.Error("push: the relay rejected this sensor's token: nothing is delivered until it is fixed "+
			"(the relay's token file holds the token's SHA-256 on the line of the host it was made for; "+
			"attackmap-relay token add NAME makes a new one)", args...)
	case rejected:
	case failures == 1 || failures%10 == 0:
		// A relay down for an hour gives a dozen lines, not thousands.
		log.Warn("push: delivery failed, retrying", "relay", f.Name, "err", err, "failures", failures,
			"retry_in", wait.Round(time.Millisecond))
	}
}

// Health is why a forwarder is unhealthy, or "" when it is not: its token
// is rejected, its relay cannot be reached, or its cursor cannot be
// stored. Before the first attempt has finished it is healthy (starting).
func (f *Forwarder) Health() string {
	s := f.Stats()
	switch {
	case s.TokenRejected:
		// One plain sentence: LastError repeats the relay and the
		// rejection inside its own prefixes.
		h := "relay " + f.Name + " rejects this sensor's token"
		if f.TokenID != "" {
			h += " (SHA-256 " + f.TokenID + "...)"
		}
		return h + "; attackmap-relay token add NAME on the relay makes a new one"
	case s.LastError != "":
		return "relay " + f.Name + " unreachable: " + s.LastError
	case s.CursorStuck:
		return "relay " + f.Name + ": the delivery cursor cannot be stored (full disk?)"
	}
	return ""
}
