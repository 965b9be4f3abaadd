package relay

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/attackmap/attackmap/incident"
)

// FuzzDecodeBatch feeds arbitrary ingest messages through the whole ingest
// path (decode, per-incident decode and validation, stamping, masking,
// encoding, SSE framing). It must never panic, and whatever it accepts must
// be a valid incident whose SSE frame has exactly the id, event and data
// lines: no input can inject SSE fields.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"type":"incidents","batch":17,"incidents":[{"id":"a","source":"ssh_bruteforce","severity":"high","ip":"185.220.101.34","ts":"2026-03-22T14:32:01Z"}]}`))
	f.Add([]byte(`{"type":"incidents","batch":1,"incidents":[{"id":"x\r\ndata: y","source":"a","severity":"low","ip":"::1","ts":"2026-03-22T14:32:01Z","summary":"\u2028"}]}`))
	f.Add([]byte(`{"type":"incidents","batch":1e99,"incidents":[[[[]]]]}`))
	plain, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer plain.Close()
	masked, err := New(Config{MaskIP: true, CoarseTarget: true})
	if err != nil {
		f.Fatal(err)
	}
	defer masked.Close()
	host := &Host{Name: "web-1", Target: &incident.Location{Lat: 50.11, Lon: 8.68}}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			if bytes.ContainsAny([]byte(oneLine(err.Error())), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if len(b.Incidents) > incident.MaxBatchIncidents {
			t.Fatalf("%d incidents accepted", len(b.Incidents))
		}
		for _, r := range []*Relay{plain, masked} {
			for _, raw := range b.Incidents {
				p, err := r.prepare(raw, host, false)
				if err != nil {
					continue
				}
				e := newEntry(12345, &p)
				if n := bytes.Count(e.frame, []byte("\n")); n != 4 || bytes.ContainsAny(e.json, "\r\n\x00") {
					t.Fatalf("frame has %d newlines: %q", n, e.frame)
				}
				if len(e.json) > incident.MaxBytes || !json.Valid(e.json) {
					t.Fatalf("bad JSON out: %q", e.json)
				}
				in, err := incident.Decode(e.json)
				if err != nil {
					t.Fatalf("re-decode: %v", err)
				}
				if err := in.Validate(); err != nil {
					t.Fatalf("re-validate: %v", err)
				}
				if in.Host != "web-1" {
					t.Fatalf("host %q not stamped", in.Host)
				}
				// The ingesting relay applies what it prepared without
				// preparing it again (see ownPrepared): that is only
				// right if reading the stored form back gives the same.
				q, err := r.prepare(p.json, nil, true)
				if err != nil {
					t.Fatalf("stored form does not prepare again: %v\n%s", err, p.json)
				}
				if !bytes.Equal(q.json, p.json) || !reflect.DeepEqual(q.in, p.in) {
					t.Fatalf("prepare is not idempotent:\n%s\n%s\n%#v\n%#v", p.json, q.json, p.in, q.in)
				}
			}
		}
	})
}
