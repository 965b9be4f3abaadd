package respond

import (
	"time"

	"github.com/attackmap/attackmap/internal/jsonl"
)

// AuditPrefix names the audit files: decisions-YYYY-MM-DD.jsonl (UTC).
const AuditPrefix = "decisions"

// Decision kinds in the audit trail.
const (
	DecisionBlock   = "block"   // blocked (or, with dry_run, would have blocked)
	DecisionSkip    = "skip"    // not blocked; reason says why
	DecisionExpire  = "expire"  // a block reached its end
	DecisionManual  = "manual"  // an operator's block add/remove/flush
	DecisionRestore = "restore" // restored into the kernel from the state at start
	DecisionStale   = "stale"   // removed from the kernel: the state does not hold it
)

// Record is one line of the audit trail.
type Record struct {
	TS       time.Time `json:"ts"`
	Decision string    `json:"decision"`
	// Op is the manual operation: add, remove, flush.
	Op       string `json:"op,omitempty"`
	Addr     string `json:"addr,omitempty"`
	Incident string `json:"incident,omitempty"`
	Source   string `json:"source,omitempty"`
	Severity string `json:"severity,omitempty"`
	Reason   string `json:"reason,omitempty"`
	TTL      string `json:"ttl,omitempty"`
	// Strikes is how often the address was blocked before this block.
	Strikes int    `json:"strikes,omitempty"`
	Backend string `json:"backend,omitempty"`
	DryRun  bool   `json:"dry_run,omitempty"`
	// Action is what the incident now says on the map.
	Action string `json:"action,omitempty"`
	Error  string `json:"error,omitempty"`
}

// openAudit opens the audit journal. Each record is one line written with
// one append (jsonl.Writer), so the sensor and the CLI never interleave.
// Decisions are rare (bounded by max_per_minute for blocks, by the
// detectors' cooldowns for skips), so every line is fsynced within a second
// like the incidents journal.
func openAudit(dir string, retentionDays int) (*jsonl.Writer, error) {
	return jsonl.Open(dir, jsonl.Options{Prefix: AuditPrefix, RetentionDays: retentionDays, SyncInterval: time.Second})
}
