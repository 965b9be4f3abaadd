package daemon

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/sensor/respond"
)

// startResponse opens the responder (package respond) and runs it in g.
// Its updates (the incident with its action) go to the incidents journal
// like any detector output, so the forwarders deliver them to every relay
// as an update under the same id.
func startResponse(ctx context.Context, g *errgroup.Group, cfg Config, incidents *jsonl.Writer, log *slog.Logger) (*respond.Responder, error) {
	relays := make([]string, 0, len(cfg.Relays))
	for _, rc := range cfg.Relays {
		relays = append(relays, rc.URL)
	}
	r, err := respond.New(respond.Options{
		Config: cfg.Response, DataDir: cfg.DataDir, Relays: relays,
		RetentionDays: cfg.Retention.Days, Logger: log,
		Update: func(in incident.Incident) {
			if err := appendIncident(incidents, &in); err != nil {
				log.Error("incidents journal", "id", in.ID, "err", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	g.Go(named("response", func() error { return r.Run(ctx) }))
	return r, nil
}
