package relay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/attackmap/attackmap/internal/atomicfile"
	"github.com/attackmap/attackmap/relay/token"
)

// Sensor tokens live in a JetStream key-value bucket (ATTACKMAP_TOKENS: key
// NAME, value the token file line "NAME SHA256-HEX [LAT LON]"), which every
// relay of a cluster watches and authenticates against, so a token added or
// removed on one relay is valid or gone on all within a second.
//
// Each relay's token file feeds the bucket with its changes: whenever the
// file changes (token add, token remove, an edit), the relay puts the lines
// added or changed since the version it last applied and deletes the names
// removed since then. That version is kept in DataDir/tokens.applied, so a
// change made while the relay was stopped is applied when it starts, and a
// relay whose file is behind another's (unchanged since it last applied it)
// changes nothing. The file stays the way to manage tokens on a single
// relay, with the same commands; while it is missing or malformed this
// relay refuses all ingest (fail closed), as before.

// appliedFile holds the token file version last applied to the bucket.
const appliedFile = "tokens.applied"

// tokenSyncTimeout bounds one application of the file's changes to the
// bucket: a few small writes, milliseconds with a leader; a cluster
// without one is retried at the next change or poll.
const tokenSyncTimeout = 5 * time.Second

// tokenKV is the relay's view of the bucket.
type tokenKV struct {
	mu      sync.Mutex
	entries map[string]token.Entry // the bucket, by name
	set     *token.Set             // the same, for Lookup
	applied *token.Set             // the file version last applied
	syncMu  sync.Mutex             // one application at a time
	kick    chan struct{}          // the file changed
}

// startTokens applies the file's changes since the last run, loads the
// bucket and starts watching it and the file.
func (r *Relay) startTokens() error {
	tk := &tokenKV{entries: map[string]token.Entry{}, set: &token.Set{}, kick: make(chan struct{}, 1)}
	r.tk = tk
	if r.cfg.DataDir != "" {
		if b, err := os.ReadFile(filepath.Join(r.cfg.DataDir, appliedFile)); err == nil {
			if s, err := token.Parse(bytes.NewReader(b)); err == nil {
				tk.applied = s
			}
		}
	}
	timeout := r.cfg.NATSStartTimeout
	if timeout <= 0 {
		timeout = DefaultNATSStartTimeout
	}
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	if err := retry(ctx, r, "applying the token file to the token bucket", func(context.Context) error {
		return r.syncTokens()
	}); err != nil {
		return err
	}
	// The watcher sends every current value, then nil: wait for that so
	// the first ingest sees the bucket.
	ready := make(chan struct{})
	go r.watchBucket(ready)
	select {
	case <-ready:
	case <-ctx.Done():
		return errors.New("relay: loading the token bucket: timed out")
	}
	return nil
}

// syncTokens applies the file's changes since the version last applied to
// the bucket and records the file's version as applied.
func (r *Relay) syncTokens() error {
	tk := r.tk
	tk.syncMu.Lock()
	defer tk.syncMu.Unlock()
	cur, err := r.tokens.Snapshot()
	if err != nil {
		return nil // unusable: the relay refuses ingest; the bucket stays
	}
	ctx, cancel := context.WithTimeout(r.ctx, tokenSyncTimeout)
	defer cancel()
	prev := tk.applied
	for _, e := range cur.Entries() {
		if prev.Has(e) {
			continue
		}
		if _, err := r.nats.kv.PutString(ctx, e.Name, e.Line()); err != nil {
			return err
		}
	}
	if prev != nil {
		names := map[string]bool{}
		for _, e := range cur.Entries() {
			names[e.Name] = true
		}
		for _, e := range prev.Entries() {
			if names[e.Name] {
				continue
			}
			if err := r.nats.kv.Delete(ctx, e.Name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return err
			}
		}
	}
	tk.applied = cur
	if r.cfg.DataDir != "" {
		var b strings.Builder
		for _, e := range cur.Entries() {
			b.WriteString(e.Line() + "\n")
		}
		if err := atomicfile.Write(filepath.Join(r.cfg.DataDir, appliedFile), []byte(b.String()), 0o600); err != nil {
			r.log.Warn("relay: recording the applied token file", "err", err)
		}
	}
	return nil
}

// tokenSettle is how long the file must stay unchanged before its changes
// are applied to the bucket: a file rewritten in place (truncated, then
// written) is briefly empty, and applying that would delete every token
// in the cluster for a moment. A tenth of a second keeps a change well
// within the second it may take.
const tokenSettle = 100 * time.Millisecond

// runTokenSync applies the file's changes whenever it changes.
func (r *Relay) runTokenSync() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.tk.kick:
			for settled := false; !settled; {
				select {
				case <-r.ctx.Done():
					return
				case <-r.tk.kick:
				case <-time.After(tokenSettle):
					settled = true
				}
			}
			if err := r.syncTokens(); err != nil {
				r.log.Warn("relay: applying the token file to the token bucket; retried at the next change", "err", err)
			}
		}
	}
}

// watchBucket keeps the relay's view of the bucket current and closes the
// ingest sockets of tokens that left it. The watch lives as long as the
// relay (its context); it is set up again, a second later, until the
// stream answers.
func (r *Relay) watchBucket(ready chan struct{}) {
	var w jetstream.KeyWatcher
	for {
		var err error
		if w, err = r.nats.kv.WatchAll(r.ctx); err == nil {
			break
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	defer func() { _ = w.Stop() }()
	tk := r.tk
	loaded := false
	for {
		select {
		case <-r.ctx.Done():
			return
		case u, ok := <-w.Updates():
			if !ok {
				return
			}
			if u == nil {
				if !loaded {
					loaded = true
					tk.rebuild()
					close(ready)
				}
				continue
			}
			tk.mu.Lock()
			if u.Operation() == jetstream.KeyValuePut {
				s, err := token.Parse(bytes.NewReader(u.Value()))
				if es := entriesOf(s); err == nil && len(es) == 1 && es[0].Name == u.Key() {
					tk.entries[u.Key()] = es[0]
				} else {
					delete(tk.entries, u.Key()) // not a token line: no token
					r.log.Warn("relay: ignoring a malformed token bucket entry", "key", u.Key())
				}
			} else {
				delete(tk.entries, u.Key())
			}
			tk.mu.Unlock()
			if loaded {
				tk.rebuild()
				r.revokeStale()
			}
		}
	}
}

func entriesOf(s *token.Set) []token.Entry {
	if s == nil {
		return nil
	}
	return s.Entries()
}

// rebuild makes the lookup set from the entries.
func (tk *tokenKV) rebuild() {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	var b strings.Builder
	for _, e := range tk.entries {
		b.WriteString(e.Line() + "\n")
	}
	s, err := token.Parse(strings.NewReader(b.String()))
	if err == nil {
		tk.set = s
	}
}

func (tk *tokenKV) current() *token.Set {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.set
}

// lookupToken authenticates a sensor token against the bucket. A token
// whose line was just added to this relay's file and not applied yet is
// applied first, so "token add" then a sensor start works at once. A
// non-nil error means the local token file is unusable (fail closed).
func (r *Relay) lookupToken(tok string) (token.Entry, bool, error) {
	fe, inFile, err := r.tokens.Lookup(tok)
	if err != nil {
		return token.Entry{}, false, err
	}
	if e, ok := r.tk.current().Lookup(tok); ok {
		return e, true, nil
	}
	r.tk.syncMu.Lock()
	pending := inFile && !r.tk.applied.Has(fe)
	r.tk.syncMu.Unlock()
	if pending {
		if err := r.syncTokens(); err == nil {
			// The watcher applies the put within milliseconds.
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				if e, ok := r.tk.current().Lookup(tok); ok {
					return e, true, nil
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	return token.Entry{}, false, nil
}

// tokenCurrent reports whether e is still a valid token: in the bucket
// unchanged, and the local token file usable.
func (r *Relay) tokenCurrent(e token.Entry) bool {
	return r.tokens.Err() == nil && r.tk.current().Has(e)
}

// revokeStale closes every ingest socket whose token is no longer current.
func (r *Relay) revokeStale() {
	for _, sc := range r.sensors.all() {
		if !r.tokenCurrent(sc.entry) {
			go r.revoke(sc)
		}
	}
}
