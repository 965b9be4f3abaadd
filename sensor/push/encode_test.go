package push

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/attackmap/attackmap/incident"
)

// tagEnricher adds a tag to the incidents whose index is in change, and
// reports exactly those as changed.
// tagEnricher tags the incidents whose ids it is given. It goes by id, not
// by position: the reader may hand the lines over in one batch or in two.
type tagEnricher struct{ change map[string]bool }

func (e tagEnricher) Enrich(_ context.Context, ins []*incident.Incident) []bool {
	changed := make([]bool, len(ins))
	for i, in := range ins {
		if e.change[in.ID] {
			in.Tags = append(in.Tags, "enriched")
			changed[i] = true
		}
	}
	return changed
}

// TestJournalBytesReachTheSinkUnlessEnrichmentChangedThem checks the
// sensor's one encode per boundary: the bytes the detection stage wrote
// are what the relay receives, byte for byte, and only an incident that
// enrichment changed is encoded again (once).
func TestJournalBytesReachTheSinkUnlessEnrichmentChangedThem(t *testing.T) {
	for _, tt := range []struct {
		name     string
		enricher Enricher
		changed  map[int]bool
	}{
		{"no enricher", nil, nil},
		{"enricher that adds nothing", tagEnricher{}, nil},
		{"enricher that changes the second", tagEnricher{change: map[string]bool{"a:2": true}}, map[int]bool{1: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openWriter(t, dir)
			// A key order and spacing incident.Marshal would not produce:
			// only a pass-through keeps it.
			lines := [][]byte{
				[]byte(`{"source":"ssh_bruteforce", "id":"a:1","severity":"high","ip":"203.0.113.1","ts":"2026-03-22T14:32:01Z"}`),
				[]byte(`{"source":"ssh_bruteforce", "id":"a:2","severity":"high","ip":"203.0.113.2","ts":"2026-03-22T14:32:01Z"}`),
			}
			var mu sync.Mutex
			var got []json.RawMessage
			sink := SinkFunc(func(_ context.Context, batch []json.RawMessage) (incident.Ack, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range batch {
					got = append(got, append(json.RawMessage(nil), r...))
				}
				return incident.Ack{Type: incident.TypeAck, Accepted: len(batch)}, nil
			})
			f, delivered := forwarder(t, dir, w, sink, nil)
			f.Enricher = tt.enricher
			run(t, f)
			for _, l := range lines {
				if err := w.Append(l); err != nil {
					t.Fatal(err)
				}
			}
			awaitDelivered(t, delivered, len(lines))
			mu.Lock()
			defer mu.Unlock()
			for i, l := range lines {
				same := bytes.Equal(got[i], l)
				if tt.changed[i] == same {
					t.Errorf("incident %d: passed through = %v, want %v (got %s)", i, same, !tt.changed[i], got[i])
				}
				if tt.changed[i] && !bytes.Contains(got[i], []byte(`"tags":["enriched"]`)) {
					t.Errorf("incident %d: enrichment lost: %s", i, got[i])
				}
			}
		})
	}
}

func TestALineThatIsNotAnIncidentIsSkippedAsMalformed(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir)
	var mu sync.Mutex
	var got []json.RawMessage
	sink := SinkFunc(func(_ context.Context, batch []json.RawMessage) (incident.Ack, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, batch...)
		return incident.Ack{Type: incident.TypeAck, Accepted: len(batch)}, nil
	})
	f, delivered := forwarder(t, dir, w, sink, nil)
	run(t, f)
	// A JSON object CheckLine lets through (it only scans), which does
	// not decode as an incident: skipped and counted, not sent.
	w.Append([]byte(`{"id":5}`))
	w.AppendJSON(testIncident(1))
	awaitDelivered(t, delivered, 1)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || f.Stats().Malformed != 1 {
		t.Errorf("sent %d, malformed %d; want 1 and 1", len(got), f.Stats().Malformed)
	}
}
