package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/attackmap/attackmap/incident"
)

// ownConfigs are the relay settings that change what prepare writes.
var ownConfigs = []struct {
	name string
	cfg  Config
}{
	{"plain", Config{}},
	{"masked", Config{MaskIP: true}},
	{"coarse target", Config{CoarseTarget: true}},
	{"masked and coarse", Config{MaskIP: true, CoarseTarget: true}},
}

// ownIncidents are incidents that exercise every field prepare changes:
// addresses in every spelling in the text fields, format characters,
// evidence, a target stamped from the token.
func ownIncidents() []json.RawMessage {
	return []json.RawMessage{
		inc("plain", nil),
		inc("v6", map[string]any{"ip": "2001:DB8:0:0:1::7", "summary": "from 2001:0db8:0000:0000:0001::7 and ::ffff:010.000.000.001, port :22.",
			"title": "scan from 203.000.113.078", "evidence": map[string]any{"users": []string{"root@192.0.2.7"}, "dst": "[2001:db8::1]:443",
				"argv": []string{"curl", "http://198.51.100.9/x"}, "paths": []string{"/a\u202eb"}}}),
		inc("mapped", map[string]any{"ip": "::ffff:185.220.101.34", "city": "Kassel\u200b", "org": "AS 185.220.101.1 net", "tags": []string{"tor"}}),
		inc("updated", map[string]any{"count": 99, "action": "blocked", "first_seen": incTS(-2 * time.Hour),
			"ts": incTime.Add(-time.Hour).In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000Z07:00")}),
	}
}

func TestOwnPreparedIsWhatTheStreamGives(t *testing.T) {
	for _, c := range ownConfigs {
		t.Run(c.name, func(t *testing.T) {
			r := &Relay{cfg: c.cfg, now: func() time.Time { return incTime }, maskK: bytes.Repeat([]byte{7}, 32)}
			host := &Host{Name: "web-1", Target: &incident.Location{Lat: 50.11, Lon: 8.68, Country: "DE"}}
			for i, raw := range ownIncidents() {
				p, err := r.prepare(raw, host, false)
				if err != nil {
					t.Fatalf("incident %d: %v", i, err)
				}
				q, err := r.prepare(p.json, nil, true)
				if err != nil {
					t.Fatalf("incident %d: the stored form does not prepare again: %v", i, err)
				}
				if !bytes.Equal(p.json, q.json) {
					t.Errorf("incident %d: stored\n%s\nread back\n%s", i, p.json, q.json)
				}
				if !reflect.DeepEqual(p.in, q.in) {
					t.Errorf("incident %d: decoded forms differ:\n%#v\n%#v", i, p.in, q.in)
				}
				if a, b := newEntry(9, &p), newEntry(9, &q); !bytes.Equal(a.frame, b.frame) || !reflect.DeepEqual(a, b) {
					t.Errorf("incident %d: ring entries differ", i)
				}
			}
		})
	}
}

// TestIngestPreparesEachIncidentOnce ingests on a single relay, over the
// socket, and checks that each incident was prepared once (not again when
// the relay's consumer read it back), and that the ring holds exactly
// what preparing the stored message would give.
func TestIngestPreparesEachIncidentOnce(t *testing.T) {
	for _, c := range ownConfigs {
		t.Run(c.name, func(t *testing.T) {
			tr := startRelay(t, c.cfg)
			ingest0, stream0 := tr.preparedIngest.Load(), tr.preparedStream.Load()
			s := dialSensor(t, tr.url, tr.tok)
			raws := ownIncidents()
			for i := range 20 {
				raws = append(raws, inc(fmt.Sprintf("n%d", i), nil))
			}
			if ack := s.send(raws...); ack.Accepted != len(raws) || len(ack.Rejected) != 0 {
				t.Fatalf("ack %+v", ack)
			}
			n := uint64(len(raws))
			if got := tr.preparedIngest.Load() - ingest0; got != n {
				t.Errorf("%d prepares on ingest, want %d", got, n)
			}
			if got := tr.preparedStream.Load() - stream0; got != 0 {
				t.Errorf("%d prepares of the relay's own messages read back, want 0", got)
			}
			if got := metricValue(t, tr, `attackmap_relay_incidents_prepared_total{path="ingest"}`); got != float64(tr.preparedIngest.Load()) {
				t.Errorf("metric %v, counter %d", got, tr.preparedIngest.Load())
			}
			if k := tr.own.count(); k != 0 {
				t.Errorf("%d entries left in the cache after the read-back", k)
			}
			// What the ring holds is what every other relay would make of
			// the stored messages.
			for seq := uint64(1); seq <= n; seq++ {
				m, err := tr.nats.stream.GetMsg(context.Background(), seq)
				if err != nil {
					t.Fatal(err)
				}
				q, err := tr.prepare(m.Data, nil, true)
				if err != nil {
					t.Fatalf("seq %d: %v", seq, err)
				}
				tr.store.mu.Lock()
				e := tr.store.byID[dedupKey(&q.in)]
				tr.store.mu.Unlock()
				if e == nil || e.seq != seq || !bytes.Equal(e.frame, newEntry(seq, &q).frame) {
					t.Fatalf("seq %d: the ring's entry %+v differs from the stored message prepared again", seq, e)
				}
			}
			// A repeat is acknowledged, stored nowhere and leaves nothing.
			if ack := s.send(raws[0]); ack.Accepted != 1 {
				t.Fatalf("ack %+v", ack)
			}
			if k := tr.own.count(); k != 0 {
				t.Errorf("%d entries left after a repeat", k)
			}
		})
	}
}

// TestOwnPreparedFallsBackToPrepare checks the cases the cache must not
// answer: another writer's message under an id this relay prepared,
// messages read again after the consumer is replaced, and a publish the
// stream dropped as a repeat.
func TestOwnPreparedFallsBackToPrepare(t *testing.T) {
	t.Run("another writer's bytes under the same id are prepared from the stream", func(t *testing.T) {
		tr := newTestRelay(t, Config{})
		defer tr.Close()
		host := Host{Name: "web-1"}
		mine, err := tr.prepare(inc("w", map[string]any{"summary": "mine"}), &host, false)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := tr.prepare(inc("w", map[string]any{"summary": "theirs"}), &host, false)
		if err != nil {
			t.Fatal(err)
		}
		id := versionID(&mine.in)
		if id != versionID(&theirs.in) {
			t.Fatal("the two copies should share a version id")
		}
		tr.own.put(id, mine)
		stream0 := tr.preparedStream.Load()
		// The other writer's copy reaches the stream first.
		if _, err := tr.nats.js.PublishMsg(context.Background(), &nats.Msg{Subject: hostSubject("web-1"), Data: theirs.json}, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the message applied", func() bool {
			tr.store.mu.Lock()
			defer tr.store.mu.Unlock()
			return tr.store.seq == 1
		})
		tr.store.mu.Lock()
		e := tr.store.byID[dedupKey(&theirs.in)]
		tr.store.mu.Unlock()
		if e == nil || !bytes.Equal(e.json, theirs.json) {
			t.Fatalf("ring holds %q, want the stored copy %q", e.json, theirs.json)
		}
		if tr.preparedStream.Load() != stream0+1 {
			t.Errorf("the stored copy was not prepared")
		}
		if tr.own.count() != 0 {
			t.Errorf("the useless entry was kept")
		}
	})
	t.Run("messages read again after a consumer reset are prepared and skipped, new ones applied", func(t *testing.T) {
		tr := newTestRelay(t, Config{})
		defer tr.Close()
		publishN(t, tr.Relay, "a", 5, nil)
		stream0 := tr.preparedStream.Load()
		// A replaced consumer starting from the beginning, as after a
		// reset that re-reads what is already applied.
		if err := tr.consume(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		publishN(t, tr.Relay, "b", 3, nil)
		tr.store.mu.Lock()
		seq, n := tr.store.seq, tr.store.n
		tr.store.mu.Unlock()
		if seq != 8 || n != 8 {
			t.Fatalf("seq %d, %d incidents; want 8 and 8", seq, n)
		}
		// The five read again are prepared (their entries are gone);
		// the three new ones come from the cache.
		if got := tr.preparedStream.Load() - stream0; got != 5 {
			t.Errorf("%d prepares after the reset, want 5", got)
		}
	})
	t.Run("a repeat the stream drops leaves no entry", func(t *testing.T) {
		// RingSize 1: the relay's own index no longer knows r0, so it is
		// published again and the stream's de-duplication drops it.
		tr := newTestRelay(t, Config{RingSize: 1})
		defer tr.Close()
		publishN(t, tr.Relay, "r", 2, nil)
		publishN(t, tr.Relay, "r", 1, nil)
		if v := metricValue(t, tr, "attackmap_relay_incidents_duplicate_indexed_total"); v != 1 {
			t.Fatalf("%v repeats dropped by the stream, want 1", v)
		}
		if k := tr.own.count(); k != 0 {
			t.Errorf("%d entries left after a duplicate ack", k)
		}
	})
}

func TestOwnPreparedBounds(t *testing.T) {
	entry := func(i, size int) (string, prepared) {
		return fmt.Sprintf("id-%d", i), prepared{json: fmt.Appendf(nil, "%0*d", size, i)}
	}
	has := func(o *ownPrepared, i, size int) bool {
		id, p := entry(i, size)
		_, ok := o.take(id, p.json)
		return ok
	}
	t.Run("the oldest entries go first past the entry cap", func(t *testing.T) {
		o := newOwnPrepared()
		for i := range ownMaxEntries + 10 {
			o.put(entry(i, 8))
		}
		if o.count() != ownMaxEntries {
			t.Fatalf("%d entries, want %d", o.count(), ownMaxEntries)
		}
		if has(o, 9, 8) {
			t.Error("entry 9 kept past the cap")
		}
		if !has(o, 10, 8) {
			t.Error("entry 10 evicted too early")
		}
	})
	t.Run("and past the byte cap", func(t *testing.T) {
		o := newOwnPrepared()
		const size = 64 << 10
		for i := range ownMaxBytes/size + 3 {
			o.put(entry(i, size))
		}
		if o.bytes > ownMaxBytes || o.count() != ownMaxBytes/size {
			t.Fatalf("%d entries of %d bytes", o.count(), o.bytes)
		}
		if has(o, 2, size) {
			t.Error("entry 2 kept past the cap")
		}
	})
	t.Run("take answers only the same bytes and forgets the entry either way", func(t *testing.T) {
		o := newOwnPrepared()
		id, p := entry(1, 8)
		o.put(id, p)
		if _, ok := o.take(id, []byte("other")); ok {
			t.Fatal("other bytes answered")
		}
		if _, ok := o.take(id, p.json); ok {
			t.Fatal("the entry was kept after a mismatch")
		}
		o.put(id, p)
		if got, ok := o.take(id, bytes.Clone(p.json)); !ok || !bytes.Equal(got.json, p.json) {
			t.Fatal("the same bytes were not answered")
		}
		if _, ok := o.take("", nil); ok || o.count() != 0 || o.bytes != 0 {
			t.Fatalf("%d entries, %d bytes left", o.count(), o.bytes)
		}
	})
	t.Run("drop forgets only its own bytes; a second put replaces the first", func(t *testing.T) {
		o := newOwnPrepared()
		o.put("x", prepared{json: []byte("first")})
		o.put("x", prepared{json: []byte("second")})
		o.drop("x", []byte("first"))
		if o.count() != 1 || o.bytes != len("second") {
			t.Fatalf("%d entries, %d bytes", o.count(), o.bytes)
		}
		o.drop("x", []byte("second"))
		if o.count() != 0 || o.bytes != 0 {
			t.Fatalf("%d entries, %d bytes", o.count(), o.bytes)
		}
	})
}

// count returns the number of entries held.
func (o *ownPrepared) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.order.Len()
}
