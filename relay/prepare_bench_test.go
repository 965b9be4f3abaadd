package relay

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// BenchmarkApplyFromStream is what each relay spends per stream message
// before it enters the ring: the message is decoded, validated and encoded
// again (prepare), then framed.
func BenchmarkApplyFromStream(b *testing.B) {
	r := &Relay{cfg: Config{RetentionDays: 7}, log: slog.New(slog.DiscardHandler), now: func() time.Time { return incTime }}
	p, err := r.prepare(inc("bench", map[string]any{"summary": strings.Repeat("x", 700)}), &Host{Name: "web-1"}, false)
	if err != nil {
		b.Fatal(err)
	}
	data := p.json
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		q, err := r.prepare(data, nil, true)
		if err != nil {
			b.Fatal(err)
		}
		_ = newEntry(1, &q)
	}
}
