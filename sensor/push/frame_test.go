package push

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay"
)

// TestTheBatchFrameIsWhatTheRelayDecodes: the hand-written envelope around
// the journal bytes is read by the relay's own decoder as the same type,
// batch number and incidents, byte for byte.
func TestTheBatchFrameIsWhatTheRelayDecodes(t *testing.T) {
	one, _ := incident.Marshal(testIncident(1))
	big := testIncident(2)
	big.Summary = strings.Repeat("ü<&>\"\\ ", incident.MaxSummary/8)
	bigRaw, _ := incident.Marshal(big)
	full := make([]json.RawMessage, incident.MaxBatchIncidents)
	for i := range full {
		full[i], _ = incident.Marshal(testIncident(i))
	}
	for _, tt := range []struct {
		name  string
		n     uint64
		batch []json.RawMessage
	}{
		{"the empty probe", 1, []json.RawMessage{}},
		{"one incident", 17, []json.RawMessage{one}},
		{"a journal line as written, spacing kept", 2, []json.RawMessage{
			json.RawMessage(`{"source":"ssh_bruteforce", "id":"a:1","severity":"high","ip":"203.0.113.1","ts":"2026-03-22T14:32:01Z"}`)}},
		{"characters json.Marshal would escape", 3, []json.RawMessage{bigRaw, one}},
		{"a full batch and a large number", 1<<64 - 1, full},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := appendBatch(nil, tt.n, tt.batch)
			b, err := relay.DecodeBatch(msg)
			if err != nil {
				t.Fatalf("DecodeBatch: %v\n%s", err, msg)
			}
			if b.Type != incident.TypeIncidents || b.Batch != tt.n || len(b.Incidents) != len(tt.batch) {
				t.Fatalf("decoded type %q batch %d with %d incidents", b.Type, b.Batch, len(b.Incidents))
			}
			for i := range tt.batch {
				if !bytes.Equal(b.Incidents[i], tt.batch[i]) {
					t.Errorf("incident %d: %s, sent %s", i, b.Incidents[i], tt.batch[i])
				}
			}
		})
	}
}

// TestTheBatchBufferIsReused: a second batch is framed in the first one's
// buffer, so a steady stream allocates no frames.
func TestTheBatchBufferIsReused(t *testing.T) {
	raw, _ := incident.Marshal(testIncident(1))
	batch := []json.RawMessage{raw, raw, raw}
	buf := appendBatch(nil, 1, batch)
	if n := testing.AllocsPerRun(100, func() { buf = appendBatch(buf[:0], 2, batch) }); n != 0 {
		t.Errorf("%.0f allocations per frame with a grown buffer, want 0", n)
	}
}

// FuzzBatchFrame: any batch of JSON values (what the forwarder sends) is
// framed into a message the relay decodes back to the same values, for
// any batch number.
func FuzzBatchFrame(f *testing.F) {
	one, _ := incident.Marshal(testIncident(1))
	f.Add(uint64(1), string(one), "")
	f.Add(uint64(0), `{"a":"\u2028<>&"}`, `[1,2,{"b":null}]`)
	f.Add(uint64(1<<63), `"x"`, `{}`)
	f.Fuzz(func(t *testing.T, n uint64, a, b string) {
		var batch []json.RawMessage
		for _, s := range []string{a, b} {
			// The forwarder sends JSON values without surrounding space
			// (journal lines start with '{', encodes are compact).
			if s = strings.Trim(s, " \t\r\n"); s != "" && json.Valid([]byte(s)) {
				batch = append(batch, json.RawMessage(s))
			}
		}
		msg := appendBatch(nil, n, batch)
		if len(msg) > incident.MaxMessageBytes {
			return
		}
		got, err := relay.DecodeBatch(msg)
		if err != nil {
			t.Fatalf("DecodeBatch(%q): %v", msg, err)
		}
		if got.Batch != n || len(got.Incidents) != len(batch) {
			t.Fatalf("batch %d with %d values, want %d with %d", got.Batch, len(got.Incidents), n, len(batch))
		}
		for i := range batch {
			if !bytes.Equal(got.Incidents[i], batch[i]) {
				t.Fatalf("value %d: %s, sent %s", i, got.Incidents[i], batch[i])
			}
		}
	})
}
