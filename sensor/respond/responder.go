package respond

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
)

// Options configure a Responder.
type Options struct {
	Config  Config
	DataDir string
	// Relays are the relay URLs the sensor pushes to: their hosts are
	// resolved and never blocked.
	Relays []string
	// Update receives an incident whose action changed; the daemon appends
	// it to the incidents journal, so it reaches the map as an update
	// under the same id. Nil drops updates (the CLI).
	Update func(incident.Incident)
	// RetentionDays for the audit files (0 keeps them).
	RetentionDays int
	Logger        *slog.Logger
	// Backend replaces the one named in the configuration (tests, the
	// benchmark). The responder closes it.
	Backend Backend
	// ProcRoot is where the socket tables are read ("/proc").
	ProcRoot string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Manual opens the configured backend even when blocking is off, so
	// `attackmap-sensor block flush` and `list` see the kernel objects a
	// former configuration left behind. The CLI sets it.
	Manual bool
}

// Stats are the responder's counters, for the sensor's metrics.
type Stats struct {
	Backend string `json:"backend"`
	DryRun  bool   `json:"dry_run"`
	// Active is the number of blocks in place.
	Active int `json:"active"`
	// Blocks counts blocks made (would-be blocks in a dry run).
	Blocks uint64 `json:"blocks"`
	// Skips counts refusals by reason.
	Skips map[string]uint64 `json:"skips"`
	// Expired counts blocks that reached their end.
	Expired uint64 `json:"expired"`
	// Dropped counts incidents not considered because the queue was full.
	Dropped uint64 `json:"dropped"`
	// KernelDrops is the backend's dropped-packet counter, when it has one.
	KernelDrops uint64 `json:"kernel_drops,omitempty"`
}

// queueLen is the capacity of the queue between detection and decisions.
// Detection never waits on the responder: a full queue drops the offer and
// counts it, and the incident is offered again at its next update. 1024
// incidents is minutes of the worst detector output the caps would let
// through anyway.
const queueLen = 1024

// memoLimit caps the remembered actions per incident id (what Annotate
// copies onto the detectors' later copies of an incident). An episode
// lives minutes to hours; 50,000 ids is far more than a day of incidents
// that pass the filter.
const memoLimit = 50_000

// memo is the decision taken for one incident id.
type memo struct {
	action string
	// final decisions are not taken again; a skip for a passing reason
	// (an SSH session, the rate limit, the cap, a backend error) is
	// re-decided at the incident's next update.
	final bool
	at    time.Time
}

// Responder decides on incidents and blocks through a Backend.
type Responder struct {
	cfg     Config
	dry     bool
	backend Backend
	guard   *guard
	socks   *procSessions
	audit   *jsonl.Writer
	update  func(incident.Incident)
	log     *slog.Logger
	now     func() time.Time
	dataDir string

	queue chan string

	mu        sync.Mutex // everything below
	st        *state
	pending   map[string]incident.Incident // latest copy of each queued incident
	memos     map[string]memo
	recent    []time.Time // new blocks within the last minute
	dirty     bool
	ensured   bool
	lastTry   time.Time // last failed Ensure
	stats     Stats
	unlock    func()
	closeOnce sync.Once
}

// New opens the responder: it reads the state, opens the audit trail and
// the backend (touching no kernel object yet; Run does).
func New(opts Options) (*Responder, error) {
	cfg := opts.Config
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("part", "response")
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	root := opts.ProcRoot
	if root == "" {
		root = "/proc"
	}
	socks := newProcSessions(root, cfg.SSHPorts)
	g, err := newGuard(&cfg, opts.Relays, socks, log)
	if err != nil {
		return nil, err
	}
	b := opts.Backend
	if b == nil {
		if b, err = openBackend(&cfg, opts.Manual, log); err != nil {
			return nil, err
		}
	}
	st, err := loadState(filepath.Join(opts.DataDir, StateFile), b.Name())
	if err != nil {
		b.Close()
		return nil, err
	}
	audit, err := openAudit(opts.DataDir, opts.RetentionDays)
	if err != nil {
		b.Close()
		return nil, err
	}
	r := &Responder{
		cfg: cfg, dry: cfg.DryRun(), backend: b, guard: g, socks: socks, audit: audit,
		update: opts.Update, log: log, now: now, dataDir: opts.DataDir,
		queue: make(chan string, queueLen), st: st,
		pending: map[string]incident.Incident{}, memos: map[string]memo{},
	}
	r.stats.Backend, r.stats.DryRun, r.stats.Skips = b.Name(), r.dry, map[string]uint64{}
	return r, nil
}

// openBackend opens the backend the configuration names.
func openBackend(cfg *Config, manual bool, log *slog.Logger) (Backend, error) {
	if cfg.DryRun() && !manual {
		return noneBackend{}, nil
	}
	switch cfg.Backend {
	case "nftables":
		return newNFTables(cfg.NFTables)
	case "xdp":
		return newXDP(cfg.XDP, log)
	}
	return noneBackend{}, nil
}

// DryRun reports whether the responder only says what it would do.
func (r *Responder) DryRun() bool { return r.dry }

// Offer hands an incident (just written to the incidents journal) to the
// responder. It never blocks: see queueLen.
func (r *Responder) Offer(in incident.Incident) {
	if !r.cfg.wants(&in) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.memos[in.ID]; ok && m.final && in.Action == m.action {
		return // already decided, and this copy already says so
	}
	if _, queued := r.pending[in.ID]; queued {
		r.pending[in.ID] = in // the decision will use the latest copy
		return
	}
	select {
	case r.queue <- in.ID:
		r.pending[in.ID] = in
	default:
		r.stats.Dropped++
	}
}

// Annotate copies the decided action onto a later copy of an incident
// (the detectors re-emit growing incidents with the default action), so an
// update never turns "blocked 1h" back into "logged" on the map.
func (r *Responder) Annotate(in *incident.Incident) {
	r.mu.Lock()
	m, ok := r.memos[in.ID]
	r.mu.Unlock()
	if ok && (in.Action == "" || in.Action == "logged") {
		in.Action = m.action
	}
}

// Stats returns the counters.
func (r *Responder) Stats() Stats {
	r.mu.Lock()
	s := r.stats
	s.Skips = make(map[string]uint64, len(r.stats.Skips))
	for k, v := range r.stats.Skips {
		s.Skips[k] = v
	}
	s.Active = len(r.st.entries)
	r.mu.Unlock()
	if dc, ok := r.backend.(DropCounter); ok && !r.dry {
		if n, err := dc.Drops(); err == nil {
			s.KernelDrops = n
		}
	}
	return s
}

// How often expired blocks are swept from the state (the kernel expires
// them by itself; this only writes the audit record and frees the slot)
// and how soon a changed state reaches the disk. Batching the state write
// keeps a burst of blocks from writing a 10 MB file per block; a crash
// loses at most the last second of blocks from the state, and those
// entries are still in the kernel until their own timeout.
const (
	sweepEvery = time.Second
	saveEvery  = time.Second
	// retryEnsure spaces attempts to create the kernel objects after a
	// failure, so a broken backend costs one netlink round trip per
	// interval, not one per incident.
	retryEnsure = 10 * time.Second
	// lockPoll is how often Run retries the state lock a CLI command
	// holds (a command takes milliseconds).
	lockPoll = 100 * time.Millisecond
)

// Run starts the responder: it takes the state lock, creates the kernel
// objects, reconciles them with the state, serves the control socket for
// `attackmap-sensor block`, and decides on offered incidents until ctx
// ends.
func (r *Responder) Run(ctx context.Context) error {
	defer r.Close()
	for {
		unlock, err := lockState(r.dataDir)
		if err == nil {
			r.unlock = unlock
			break
		}
		if !errors.Is(err, errLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(lockPoll):
		}
	}
	r.guard.refreshOwn()
	r.guard.refreshRelays(ctx)
	r.socks.refresh()
	if r.dry {
		r.log.Info("response in dry run: incidents say what would be blocked; nothing changes in the kernel",
			"backend", r.cfg.Backend, "enabled", r.cfg.Enabled)
	} else if err := r.start(ctx); err != nil {
		r.log.Error("response backend unavailable; blocks are refused until it works", "backend", r.backend.Name(), "err", err)
	}
	ctl, err := listenControl(r.dataDir)
	if err != nil {
		r.log.Warn("response: no control socket; `attackmap-sensor block` works only with the sensor stopped", "err", err)
	} else {
		go serveControl(ctx, ctl, r)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { r.guard.run(ctx) })
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	save := time.NewTicker(saveEvery)
	defer save.Stop()
	ports := time.NewTicker(ownRefresh)
	defer ports.Stop()
	for {
		select {
		case <-ctx.Done():
			r.saveNow()
			return nil
		case id := <-r.queue:
			r.decideID(ctx, id)
		case <-sweep.C:
			r.sweep()
		case <-save.C:
			r.saveIfDirty()
		case <-ports.C:
			r.socks.refresh()
		}
	}
}

// start creates the kernel objects and reconciles them with the state.
func (r *Responder) start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.ensureLocked(ctx); err != nil {
		return err
	}
	return r.reconcileLocked(ctx)
}

func (r *Responder) ensureLocked(ctx context.Context) error {
	if r.ensured {
		return nil
	}
	if !r.lastTry.IsZero() && r.now().Sub(r.lastTry) < retryEnsure {
		return errors.New("response: backend failed recently; retrying later")
	}
	if err := r.backend.Ensure(ctx); err != nil {
		r.lastTry = r.now()
		return err
	}
	r.ensured, r.lastTry = true, time.Time{}
	return nil
}

// reconcileLocked makes the kernel hold exactly the state's live entries:
// entries the state does not hold (or holds as expired) are removed,
// missing ones restored with their remaining time.
func (r *Responder) reconcileLocked(ctx context.Context) error {
	now := r.now()
	have, err := r.backend.List(ctx)
	if err != nil {
		return err
	}
	inKernel := map[netip.Addr]bool{}
	for _, e := range have {
		want, ok := r.st.entries[e.Addr]
		if ok && want.Expires.After(now) {
			inKernel[e.Addr] = true
			continue
		}
		if err := r.backend.Remove(ctx, e.Addr); err != nil {
			return err
		}
		r.record(Record{Decision: DecisionStale, Addr: e.Addr.String(), Reason: "not in the state", Backend: r.backend.Name()})
	}
	for a, e := range r.st.entries {
		left := e.Expires.Sub(now)
		if left < time.Second {
			delete(r.st.entries, a)
			r.stats.Expired++
			r.dirty = true
			r.record(Record{Decision: DecisionExpire, Addr: a.String(), Incident: e.Incident, Backend: r.backend.Name()})
			continue
		}
		if inKernel[a] {
			continue
		}
		if err := r.backend.Add(ctx, a, left.Truncate(time.Second)); err != nil {
			return err
		}
		r.record(Record{Decision: DecisionRestore, Addr: a.String(), Incident: e.Incident,
			TTL: FormatDuration(left.Truncate(time.Second)), Backend: r.backend.Name()})
	}
	if r.st.Backend != r.backend.Name() {
		r.st.Backend, r.dirty = r.backend.Name(), true
	}
	return nil
}

func (r *Responder) decideID(ctx context.Context, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.pending[id]
	delete(r.pending, id)
	if !ok {
		return
	}
	action := r.decideLocked(ctx, &in)
	if action == "" || in.Action == action {
		return
	}
	in.Action = action
	// An action is news the relay must not take for a redelivery: the
	// copy carries a later last_seen (the decision time), which the relay
	// and the map treat as an update of the same incident.
	now := r.now().UTC()
	if !now.After(in.LastSeen) {
		now = in.LastSeen.Add(time.Millisecond)
	}
	in.LastSeen = now
	if err := in.Validate(); err != nil {
		r.log.Error("response: updated incident invalid; not sent", "id", in.ID, "err", err)
		return
	}
	if r.update != nil {
		r.update(in)
	}
}

// decideLocked takes the decision for one incident and returns its action.
func (r *Responder) decideLocked(ctx context.Context, in *incident.Incident) string {
	now := r.now()
	if m, ok := r.memos[in.ID]; ok && m.final {
		return m.action
	}
	rec := Record{Incident: in.ID, Source: in.Source, Severity: string(in.Severity), Backend: r.backend.Name(), DryRun: r.dry}
	addr, err := netip.ParseAddr(in.IP)
	if err != nil {
		return r.skipLocked(in.ID, rec, "bad address", true)
	}
	addr = addr.Unmap().WithZone("")
	rec.Addr = addr.String()

	if e, ok := r.st.entries[addr]; ok && e.Expires.After(now) {
		action := "blocked " + FormatDuration(time.Duration(e.TTL))
		rec.Decision, rec.Reason, rec.TTL, rec.Action = DecisionBlock, "already blocked", FormatDuration(time.Duration(e.TTL)), action
		r.record(rec)
		r.memoLocked(in.ID, action, true)
		return action
	}
	if reason := r.guard.check(addr); reason != "" {
		return r.skipLocked(in.ID, rec, reason, reason != ReasonSSHSession)
	}
	if !r.dry && len(r.st.entries) >= r.cfg.MaxEntries {
		return r.skipLocked(in.ID, rec, ReasonFull, false)
	}
	r.trimRecentLocked(now)
	if len(r.recent) >= r.cfg.MaxPerMinute {
		return r.skipLocked(in.ID, rec, ReasonRateLimit, false)
	}
	strikes := r.st.strikes(addr, now, time.Duration(r.cfg.RepeatWindow))
	ttl := r.cfg.ttlFor(strikes)
	rec.TTL, rec.Strikes = FormatDuration(ttl), strikes
	if r.dry {
		r.recent = append(r.recent, now)
		r.stats.Blocks++
		action := "would block (dry run)"
		rec.Decision, rec.Action = DecisionBlock, action
		r.record(rec)
		r.memoLocked(in.ID, action, true)
		return action
	}
	if err := r.ensureLocked(ctx); err != nil {
		rec.Error = err.Error()
		return r.skipLocked(in.ID, rec, ReasonError, false)
	}
	if err := r.backend.Add(ctx, addr, ttl); err != nil {
		r.log.Error("response: block failed", "addr", addr, "err", err)
		rec.Error = err.Error()
		r.ensured = false // the table may have been removed under us
		return r.skipLocked(in.ID, rec, ReasonError, false)
	}
	r.st.entries[addr] = &stateEntry{Addr: addr, Added: now.UTC(), Expires: now.Add(ttl).UTC(),
		TTL: Duration(ttl), Incident: in.ID, Source: in.Source}
	r.st.strike(addr, now, time.Duration(r.cfg.RepeatWindow), 2*r.cfg.MaxEntries)
	r.recent = append(r.recent, now)
	r.dirty = true
	r.stats.Blocks++
	action := "blocked " + FormatDuration(ttl)
	rec.Decision, rec.Action = DecisionBlock, action
	r.record(rec)
	r.memoLocked(in.ID, action, true)
	r.log.Info("blocked", "addr", addr, "ttl", ttl, "incident", in.ID)
	return action
}

func (r *Responder) skipLocked(id string, rec Record, reason string, final bool) string {
	action := "not blocked: " + reason
	rec.Decision, rec.Reason, rec.Action = DecisionSkip, reason, action
	r.stats.Skips[reason]++
	r.record(rec)
	r.memoLocked(id, action, final)
	return action
}

func (r *Responder) memoLocked(id, action string, final bool) {
	if _, ok := r.memos[id]; !ok && len(r.memos) >= memoLimit {
		r.pruneMemosLocked()
	}
	r.memos[id] = memo{action: action, final: final, at: r.now()}
}

// pruneMemosLocked forgets the older half of the memos.
func (r *Responder) pruneMemosLocked() {
	ats := make([]time.Time, 0, len(r.memos))
	for _, m := range r.memos {
		ats = append(ats, m.at)
	}
	sort.Slice(ats, func(i, j int) bool { return ats[i].Before(ats[j]) })
	cut := ats[len(ats)/2]
	for id, m := range r.memos {
		if !m.at.After(cut) {
			delete(r.memos, id)
		}
	}
}

func (r *Responder) trimRecentLocked(now time.Time) {
	i := 0
	for i < len(r.recent) && now.Sub(r.recent[i]) >= time.Minute {
		i++
	}
	r.recent = r.recent[i:]
}

// record appends one audit line; a failing disk is logged, never fatal.
func (r *Responder) record(rec Record) {
	if rec.TS.IsZero() {
		rec.TS = r.now().UTC()
	}
	if err := r.audit.AppendJSON(&rec); err != nil {
		r.log.Warn("response: audit trail", "err", err)
	}
}

// sweep forgets expired blocks (the kernel already dropped them).
func (r *Responder) sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for a, e := range r.st.entries {
		if !e.Expires.After(now) {
			delete(r.st.entries, a)
			r.dirty = true
			r.stats.Expired++
			r.record(Record{Decision: DecisionExpire, Addr: a.String(), Incident: e.Incident,
				TTL: FormatDuration(time.Duration(e.TTL)), Backend: r.backend.Name()})
		}
	}
}

func (r *Responder) saveIfDirty() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dirty {
		r.saveLocked()
	}
}

func (r *Responder) saveNow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.saveLocked()
}

func (r *Responder) saveLocked() {
	if err := r.st.save(filepath.Join(r.dataDir, StateFile)); err != nil {
		r.log.Error("response: saving state", "err", err)
		return
	}
	r.dirty = false
}

// Close saves the state and releases the backend, the audit trail and the
// state lock. Kernel entries stay in place.
func (r *Responder) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.mu.Lock()
		if r.dirty {
			r.saveLocked()
		}
		r.mu.Unlock()
		err = errors.Join(r.backend.Close(), r.audit.Close())
		if r.unlock != nil {
			r.unlock()
		}
	})
	return err
}

// Manual operations, shared by the control socket (sensor running) and
// the CLI's direct mode (sensor stopped).

// ManualAdd blocks addr for ttl (0: the ladder's step for the address).
// Unless force is set it refuses what the safety rules refuse, and says
// why.
func (r *Responder) ManualAdd(ctx context.Context, addr netip.Addr, ttl time.Duration, force bool) (Entry, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return Entry{}, errors.New("response: invalid address")
	}
	if !force {
		if reason := r.guard.check(addr); reason != "" {
			return Entry{}, fmt.Errorf("response: %s is not blocked: %s (use --force to block it anyway)", addr, reason)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dry {
		return Entry{}, fmt.Errorf("response: blocking is off in the configuration (response.enabled false or backend none)")
	}
	now := r.now()
	if _, ok := r.st.entries[addr]; !ok && len(r.st.entries) >= r.cfg.MaxEntries {
		return Entry{}, fmt.Errorf("response: %d blocks in place, the max_entries cap", len(r.st.entries))
	}
	strikes := r.st.strikes(addr, now, time.Duration(r.cfg.RepeatWindow))
	if ttl <= 0 {
		ttl = r.cfg.ttlFor(strikes)
	}
	if err := r.ensureLocked(ctx); err != nil {
		return Entry{}, err
	}
	if err := r.backend.Add(ctx, addr, ttl); err != nil {
		r.ensured = false
		return Entry{}, err
	}
	e := &stateEntry{Addr: addr, Added: now.UTC(), Expires: now.Add(ttl).UTC(), TTL: Duration(ttl), Source: "manual"}
	r.st.entries[addr] = e
	r.st.strike(addr, now, time.Duration(r.cfg.RepeatWindow), 2*r.cfg.MaxEntries)
	r.saveLocked()
	r.record(Record{Decision: DecisionManual, Op: "add", Addr: addr.String(), TTL: FormatDuration(ttl),
		Strikes: strikes, Backend: r.backend.Name(), Action: "blocked " + FormatDuration(ttl)})
	return Entry{Addr: addr, Expires: e.Expires}, nil
}

// ManualRemove unblocks addr.
func (r *Responder) ManualRemove(ctx context.Context, addr netip.Addr) error {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return errors.New("response: invalid address")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.backend.Name() != "none" {
		if err := r.backend.Remove(ctx, addr); err != nil {
			return err
		}
	}
	delete(r.st.entries, addr)
	r.saveLocked()
	r.record(Record{Decision: DecisionManual, Op: "remove", Addr: addr.String(), Backend: r.backend.Name()})
	return nil
}

// ListEntry is one block as `block list` shows it.
type ListEntry struct {
	Addr     netip.Addr `json:"addr"`
	Expires  time.Time  `json:"expires"`
	TTL      string     `json:"ttl,omitempty"`
	Source   string     `json:"source,omitempty"`
	Incident string     `json:"incident,omitempty"`
	// InKernel says whether the backend holds the entry (false: it will
	// be restored at the sensor's next start, or the backend is off).
	InKernel bool `json:"in_kernel"`
	// Unknown marks a kernel entry the state does not hold (it is removed
	// at the sensor's next start).
	Unknown bool `json:"unknown,omitempty"`
}

// ManualList returns the state's blocks joined with the kernel's.
func (r *Responder) ManualList(ctx context.Context) ([]ListEntry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var kernel []Entry
	if r.backend.Name() != "none" {
		var err error
		if kernel, err = r.backend.List(ctx); err != nil {
			return nil, err
		}
	}
	inK := map[netip.Addr]Entry{}
	for _, e := range kernel {
		inK[e.Addr] = e
	}
	var out []ListEntry
	for a, e := range r.st.entries {
		_, ok := inK[a]
		out = append(out, ListEntry{Addr: a, Expires: e.Expires, TTL: FormatDuration(time.Duration(e.TTL)),
			Source: e.Source, Incident: e.Incident, InKernel: ok})
		delete(inK, a)
	}
	for a, e := range inK {
		out = append(out, ListEntry{Addr: a, Expires: e.Expires, InKernel: true, Unknown: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

// ManualFlush removes the backend's kernel objects and every block from
// the state (the offenders' history stays, so the ladder still applies).
func (r *Responder) ManualFlush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.backend.Flush(ctx); err != nil {
		return err
	}
	r.ensured = false
	n := len(r.st.entries)
	clear(r.st.entries)
	r.saveLocked()
	r.record(Record{Decision: DecisionManual, Op: "flush", Backend: r.backend.Name(), Reason: fmt.Sprintf("%d entries removed", n)})
	return nil
}
