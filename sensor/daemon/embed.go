package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/incident"
)

// Embedded is the relay that `run --serve` runs inside the sensor, seen
// from the daemon: serve the map on a listener, store this sensor's own
// incidents, close.
//
// The daemon declares this interface instead of importing package relay so
// that dependencies flow one way (the sensor's stages, then the relay,
// then the map): the daemon is the sensor's delivery stage and must not
// depend on a later stage. cmd/attackmap-sensor, which sits above both,
// passes an EmbedFunc that wraps relay.New (with the map's static site);
// tests pass their own. It is the smallest seam that works: the daemon
// keeps the whole delivery path (cursor reader, enrichment, forwarder) and
// only the store at its end is the relay's.
type Embedded interface {
	// Serve serves the map, its feeds and /api/ingest on ln until ctx
	// ends; it returns nil then.
	Serve(ctx context.Context, ln net.Listener) error
	// PublishDurable stores a batch of this sensor's enriched incidents
	// and acknowledges only what is on disk, so that the forwarder keeps
	// and resends the rest. Host and target are stamped by the relay from
	// EmbedConfig, as for any sensor.
	PublishDurable(batch []json.RawMessage) (incident.Ack, error)
	// Close releases the relay's files once Serve has returned, with
	// everything it acknowledged on disk (synced): the forwarder then
	// stores its last acknowledged position. An error means that is not
	// known, and the trailing cursor stays (see EmbedConfig.SyncInterval).
	Close() error
}

// EmbedConfig is what the daemon tells the embedded relay's constructor.
type EmbedConfig struct {
	// DataDir is the relay's own directory (<data>/relay).
	DataDir string
	// TokenFile enables /api/ingest for other sensors; "" disables it
	// (this sensor publishes in-process, without a token).
	TokenFile string
	// AllowOrigins is the CORS allow list (serve.allow_origins).
	AllowOrigins []string
	// Host is this sensor's host name and Target where the map draws it
	// (nil: not set); the relay stamps them on this sensor's incidents.
	Host   string
	Target *incident.Location
	// Registry is the sensor's metrics registry: the relay's metrics are
	// served with the sensor's on --metrics-listen, never on a second
	// listener.
	Registry prometheus.Registerer
	// Logger is the sensor's logger, tagged for the relay.
	Logger *slog.Logger
	// SyncInterval is how often the relay fsyncs its store
	// (EmbedSyncInterval), instead of before every ack: an ack means
	// written, and on disk after the next sync. The daemon keeps this
	// sensor's cursor for the relay that far behind the acks
	// (embedDurableAfter), so a power cut costs a resend from the
	// journal, not a loss.
	SyncInterval time.Duration
}

// EmbedSyncInterval is the embedded relay's store sync interval. The
// incidents journal is already this sensor's durable record, fsynced
// within a second (group commit); a store that also fsynced every
// message (sync always) paid a second, per-message fsync for the same
// incident and capped --serve at a few thousand incidents a second. One
// second matches the journal's own group commit.
const EmbedSyncInterval = time.Second

// embedDurableAfter is how long after an ack of a relay that syncs every
// interval its copy is surely on disk: the sync after the write comes
// within one interval, two cover a tick that ran late or was still busy
// with the previous sync, and one more second is margin for the fsync
// itself on a slow disk. It is also longer than the journal's group
// commit (1 s), so the stored cursor never points past what a power cut
// leaves of the journal. The price is a resend of that much after a crash,
// which the stream drops as repeats (de-duplication by message id, 24 h
// window, rebuilt from the store at start).
func embedDurableAfter(interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0 // synced before the ack
	}
	return 2*interval + time.Second
}

// EmbedFunc builds the relay for --serve. nil refuses --serve.
type EmbedFunc func(EmbedConfig) (Embedded, error)

// startRelay builds the embedded relay and opens its listener.
func startRelay(cfg Config, embed EmbedFunc, target *incident.Location, reg prometheus.Registerer,
	log *slog.Logger) (Embedded, net.Listener, error) {
	if embed == nil {
		return nil, nil, fmt.Errorf("--serve: this build has no embedded relay")
	}
	tokenFile := cfg.Serve.TokenFile
	if tokenFile != "" {
		tokenFile = cfg.dataPath(tokenFile)
	}
	r, err := embed(EmbedConfig{
		DataDir:      cfg.dataPath("relay"),
		TokenFile:    tokenFile,
		AllowOrigins: cfg.Serve.AllowOrigins,
		Host:         cfg.Host,
		Target:       target,
		Registry:     reg,
		Logger:       log.With("part", "relay"),
		SyncInterval: EmbedSyncInterval,
	})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", cfg.Serve.Listen)
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("--serve: %w", err)
	}
	return r, ln, nil
}
