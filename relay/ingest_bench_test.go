package relay

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIngestEmbeddedStream is the cost of the single relay's
// durability: batches of 100 incidents through PublishDurable (stored in
// the embedded file store and read back into the ring before it returns),
// with every write fsynced before the ack (the default) and with the
// server's fsync every second instead. It reports acknowledged incidents
// per second.
func BenchmarkIngestEmbeddedStream(b *testing.B) {
	for _, bc := range []struct {
		name string
		sync time.Duration
	}{{"fsync_every_write", 0}, {"fsync_every_second", time.Second}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			r, err := New(Config{DataDir: filepath.Join(dir, "relay"), NATSSyncInterval: bc.sync,
				Logger: slog.New(slog.DiscardHandler), HistoryCapPerToken: -1, HistoryCapTotal: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			batch := make([]json.RawMessage, 100)
			k := 0
			b.ResetTimer()
			for b.Loop() {
				for i := range batch {
					batch[i] = inc(fmt.Sprintf("bench-%d", k), nil)
					k++
				}
				if _, err := r.PublishDurable(Host{Name: "web-1"}, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(k)/b.Elapsed().Seconds(), "incidents/s")
		})
	}
}
