package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
	"github.com/attackmap/attackmap/relay"
)

// BenchmarkDelivery measures incidents per second from journal append to
// relay ack, through the real relay (history fsync included) over the
// ingest WebSocket, and through the in-process relay (Publish), and as
// `run --serve` delivers: PublishDurable to an in-process relay whose store
// syncs every second, with the cursor trailing the acks ("serve"), and the
// same with the store syncing every message ("serve-syncalways", what
// --serve did before).
// It uses b.N directly, not b.Loop, because the timed span must include
// waiting for the last ack after the last append.
func BenchmarkDelivery(b *testing.B) {
	for _, mode := range []string{"websocket", "inprocess", "serve", "serve-syncalways"} {
		b.Run(mode, func(b *testing.B) {
			tr := newTestRelay(b)
			dir := b.TempDir()
			w := openWriter(b, dir)
			var sink Sink
			var durableAfter time.Duration
			switch mode {
			case "websocket":
				tr.start()
				ws := NewWS([]string{tr.url()}, tr.tok, WSOptions{})
				b.Cleanup(func() { ws.Close() })
				sink = ws
			case "inprocess":
				// RetentionDays -1: the test incidents are dated in March.
				r, err := relay.New(relay.Config{DataDir: filepath.Join(tr.dir, "relay"), RetentionDays: -1, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { r.Close() })
				sink = SinkFunc(func(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
					return r.Publish(relay.Host{Name: "web-1"}, batch), nil
				})
			case "serve", "serve-syncalways":
				// As the daemon sets them for --serve:
				// daemon.EmbedSyncInterval and embedDurableAfter.
				cfg := relay.Config{DataDir: filepath.Join(tr.dir, "relay"), RetentionDays: -1, Logger: slog.New(slog.DiscardHandler)}
				if mode == "serve" {
					cfg.NATSSyncInterval, durableAfter = time.Second, 3*time.Second
				}
				r, err := relay.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { r.Close() })
				sink = SinkFunc(func(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
					return r.PublishDurable(relay.Host{Name: "web-1"}, batch)
				})
			}
			f, got := forwarder(b, dir, w, sink, nil)
			f.AckDurableAfter = durableAfter
			run(b, f)
			lines := make([][]byte, b.N)
			for i := range lines {
				lines[i], _ = incident.Marshal(testIncident(i))
			}
			b.ResetTimer()
			start := time.Now()
			for _, l := range lines {
				if err := w.Append(l); err != nil {
					b.Fatal(err)
				}
			}
			awaitDelivered(b, got, b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "incidents/s")
		})
	}
}

// BenchmarkWakeUp measures the latency from one append to the moment the
// pusher hands it to the relay connection, with the journal writer in the
// same process (Writer.Subscribe) and in another one (inotify only). Each
// iteration appends one incident and waits for its ack; p50 and p99 of the
// append-to-push latency are reported.
func BenchmarkWakeUp(b *testing.B) {
	for _, mode := range []string{"inprocess", "inotify"} {
		b.Run(mode, func(b *testing.B) {
			tr := newTestRelay(b)
			tr.start()
			dir := b.TempDir()
			w := openWriter(b, dir)
			ws := NewWS([]string{tr.url()}, tr.tok, WSOptions{})
			b.Cleanup(func() { ws.Close() })
			pushed := make(chan time.Time, 1)
			sink := SinkFunc(func(ctx context.Context, batch []json.RawMessage) (incident.Ack, error) {
				select {
				case pushed <- time.Now():
				default:
				}
				return ws.Deliver(ctx, batch)
			})
			var wake *jsonl.Writer
			if mode == "inprocess" {
				wake = w
			}
			f, got := forwarder(b, dir, wake, sink, nil)
			run(b, f)
			// Warm up: connect and deliver one.
			w.AppendJSON(testIncident(-1))
			<-pushed
			awaitDelivered(b, got, 1)
			var lat []time.Duration
			i := 0
			for b.Loop() {
				line, _ := incident.Marshal(testIncident(i))
				i++
				start := time.Now()
				if err := w.Append(line); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, (<-pushed).Sub(start))
				awaitDelivered(b, got, 1)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkBatchFrame frames a full batch (100 incidents of a typical
// size) the way the sensor did before (json.Marshal of incident.Batch,
// which re-scans, compacts and escapes every incident) and the way it does
// now (appendBatch into a reused buffer).
func BenchmarkBatchFrame(b *testing.B) {
	batch := make([]json.RawMessage, incident.MaxBatchIncidents)
	size := 0
	for i := range batch {
		in := testIncident(i)
		in.Summary = "5 failed SSH logins for root, admin, ubuntu in 60 s"
		in.Evidence = &incident.Evidence{Users: []string{"root", "admin", "ubuntu"}}
		batch[i], _ = incident.Marshal(in)
		size += len(batch[i])
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.SetBytes(int64(size))
		for b.Loop() {
			if _, err := json.Marshal(incident.Batch{Type: incident.TypeIncidents, Batch: 7, Incidents: batch}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendBatch", func(b *testing.B) {
		b.SetBytes(int64(size))
		var buf []byte
		for b.Loop() {
			buf = appendBatch(buf[:0], 7, batch)
		}
	})
}
