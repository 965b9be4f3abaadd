package live

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// history is n incidents, one every step from t0, at a few places, every
// third one an update of the one before (same id, later last_seen, higher
// severity), as the relay's history holds them.
func history(n int, step time.Duration) []incident.Incident {
	var out []incident.Incident
	for i := range n {
		at := t0.Add(time.Duration(i) * step)
		id := fmt.Sprint(i)
		sev := incident.Low
		if i%3 == 2 {
			id, sev = fmt.Sprint(i-1), incident.Critical
		}
		in := inc(id, sev, float64(i%7*10), float64(i%11*10), t0.Add(time.Duration(i/3*3)*step))
		in.Host, in.LastSeen, in.Count = "web-1", at, i+1
		in.Target = &incident.Location{Lat: 50.11, Lon: 8.68}
		out = append(out, in)
	}
	return out
}

func encodeNDJSON(t testing.TB, hist []incident.Incident) []byte {
	var b bytes.Buffer
	for i := range hist {
		data, err := incident.Marshal(&hist[i])
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestDecodeHistoryForms(t *testing.T) {
	hist := history(5, time.Second)
	nd := encodeNDJSON(t, hist)
	arr, err := json.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	bad := `{"id":"x","severity":"hgih","ts":"2026-03-22T14:32:00Z"}`
	tests := []struct {
		name    string
		body    string
		n, skip int
		err     string
	}{
		{"array", string(arr), 5, 0, ""},
		{"ndjson", string(nd), 5, 0, ""},
		{"empty array", " [ ] ", 0, 0, ""},
		{"empty body", "", 0, 0, ""},
		{"ndjson with bad lines", bad + "\n" + string(nd) + "not json\n\n{}\n", 5, 3, ""},
		{"array with a bad element", "[" + bad + "," + strings.TrimPrefix(string(arr), "["), 5, 1, ""},
		{"crlf lines", strings.ReplaceAll(string(nd), "\n", "\r\n"), 5, 0, ""},
		{"broken array", string(arr[:len(arr)/2]), 2, 1, "history:"},
		{"too big", strings.Repeat(" ", MaxHistoryBytes+1), 0, 0, "byte limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped, err := DecodeHistory([]byte(tc.body))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if len(got) < tc.n && tc.err == "" || tc.err == "" && len(got) != tc.n || skipped != tc.skip {
				t.Fatalf("%d incidents, %d skipped; want %d and %d", len(got), skipped, tc.n, tc.skip)
			}
		})
	}
}

func TestDecodeHistoryStopsAtItsCap(t *testing.T) {
	line, _ := incident.Marshal(new(inc("a", incident.Low, 1, 1, t0)))
	body := bytes.Repeat(append(line, '\n'), MaxHistory+10)
	got, skipped, err := DecodeHistory(body)
	if err != nil || len(got) != MaxHistory || skipped != 10 {
		t.Fatalf("%d kept, %d skipped, %v; want %d and 10", len(got), skipped, err, MaxHistory)
	}
}

func ids(in []incident.Incident) []string {
	out := make([]string, len(in))
	for i := range in {
		out[i] = fmt.Sprintf("%s@%d", in[i].ID, in[i].Count)
	}
	return out
}

func TestPlayerPlaysInOrderAtItsSpeed(t *testing.T) {
	hist := history(10, time.Minute) // ten minutes of history
	shuffled := slices.Clone(hist)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	p := NewPlayer(shuffled)
	from, to := p.Span()
	if !from.Equal(t0) || !to.Equal(t0.Add(9*time.Minute)) {
		t.Fatalf("span %v..%v", from, to)
	}
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// Paused at the start, the first incident is due, and only it.
	got := p.Advance(wall)
	if len(got) != 1 || len(p.Advance(wall.Add(time.Hour))) != 0 {
		t.Fatalf("a paused player returned %v", ids(got))
	}
	p.SetSpeed(60) // a minute of history per second
	p.Play()
	if more := p.Advance(wall); len(more) != 0 { // anchors the wall clock
		t.Fatalf("playing from the start: %v", ids(more))
	}
	wall = wall.Add(2500 * time.Millisecond) // 2.5 minutes of history
	got = append(got, p.Advance(wall)...)
	if len(got) != 3 || !p.Clock().Equal(t0.Add(150*time.Second)) {
		t.Fatalf("after 2.5 s at 60x: %v, clock %v", ids(got), p.Clock().Sub(t0))
	}
	for range 20 {
		wall = wall.Add(time.Second)
		got = append(got, p.Advance(wall)...)
	}
	if !slices.Equal(ids(got), ids(hist)) {
		t.Fatalf("played %v, want %v", ids(got), ids(hist))
	}
	if p.Playing() || !p.Done() || !p.Clock().Equal(to) {
		t.Fatalf("at the end: playing %v, done %v, clock %v", p.Playing(), p.Done(), p.Clock())
	}
}

func TestPlayerSpeedIsClamped(t *testing.T) {
	p := NewPlayer(nil)
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {-5, 1}, {1, 1}, {30, 30}, {61, 60}, {1e9, 60}} {
		p.SetSpeed(tc.in)
		if p.Speed() != tc.want {
			t.Errorf("SetSpeed(%v) gave %v", tc.in, p.Speed())
		}
	}
}

func TestPlayerPauseStopsTheClock(t *testing.T) {
	p := NewPlayer(history(10, time.Minute))
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p.SetSpeed(60)
	p.Play()
	p.Advance(wall)
	p.Advance(wall.Add(time.Second))
	p.Pause()
	clock := p.Clock()
	if got := p.Advance(wall.Add(time.Hour)); len(got) != 0 || !p.Clock().Equal(clock) {
		t.Fatalf("paused: %v, clock moved by %v", ids(got), p.Clock().Sub(clock))
	}
	// Resuming does not count the pause.
	p.Play()
	p.Advance(wall.Add(2 * time.Hour))
	p.Advance(wall.Add(2*time.Hour + time.Second))
	if d := p.Clock().Sub(clock); d != time.Minute {
		t.Fatalf("after resuming for a second at 60x the clock moved %v", d)
	}
}

func TestPlayerSeeks(t *testing.T) {
	hist := history(30, time.Minute)
	p := NewPlayer(hist)
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Play()
	first := p.Advance(wall)
	if rewound := p.Seek(t0.Add(10*time.Minute + 30*time.Second)); rewound {
		t.Fatal("a seek forward rewound")
	}
	got := append(first, p.Advance(wall)...)
	if !slices.Equal(ids(got), ids(hist[:11])) {
		t.Fatalf("a seek forward skipped: %v", ids(got))
	}
	if rewound := p.Seek(t0.Add(5 * time.Minute)); !rewound {
		t.Fatal("a seek back did not say so")
	}
	if got := p.Advance(wall); !slices.Equal(ids(got), ids(hist[:6])) {
		t.Fatalf("after rewinding: %v", ids(got))
	}
	// Clamped to the span.
	p.Seek(t0.Add(time.Hour))
	if got := p.Advance(wall); len(got) != 24 || !p.Done() {
		t.Fatalf("seek past the end: %d more, done %v", len(got), p.Done())
	}
	if !p.Seek(t0.Add(-time.Hour)) || len(p.Advance(wall)) != 1 || !p.Clock().Equal(t0) {
		t.Fatal("a seek before the start did not go to the first incident")
	}
}

// TestAdvanceNeverRepeatsOrSkips plays with random wall steps, speeds,
// pauses and forward seeks: every incident comes exactly once, in order.
func TestAdvanceNeverRepeatsOrSkips(t *testing.T) {
	hist := history(500, 7*time.Second)
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			p := NewPlayer(hist)
			wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			p.Play()
			var got []incident.Incident
			for i := 0; !p.Done() && i < 100_000; i++ {
				switch r.IntN(20) {
				case 0:
					p.Seek(p.Clock().Add(time.Duration(r.IntN(600)) * time.Second))
				case 1:
					p.SetSpeed(float64(1 + r.IntN(60)))
				case 2:
					p.Pause()
				case 3:
					p.Play()
				}
				if !p.Playing() && !p.Done() && r.IntN(3) == 0 {
					p.Play()
				}
				wall = wall.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
				got = append(got, p.Advance(wall)...)
			}
			if !slices.Equal(ids(got), ids(hist)) {
				t.Fatalf("played %d of %d, or out of order", len(got), len(hist))
			}
		})
	}
}

// markerSet is what a map shows: each used marker's place, count and
// severity, in no particular slot order.
func markerSet(m *Model) []string {
	var out []string
	for _, mk := range m.Markers {
		if mk.Used {
			out = append(out, fmt.Sprintf("%.1f,%.1f x%d %s", mk.X, mk.Y, mk.Count, mk.Severity))
		}
	}
	slices.Sort(out)
	return out
}

func TestReplayShowsWhatTheLiveMapShowed(t *testing.T) {
	hist := history(120, 10*time.Second) // 20 minutes
	liveModel := New(Config{})
	next := 0 // the first incident the live model has not seen
	p := NewPlayer(hist)
	replay := New(Config{})
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	p.SetSpeed(30)
	p.Play()
	for i := 0; !p.Done(); i++ {
		wall = wall.Add(time.Duration(100+i%7*50) * time.Millisecond) // uneven frames
		p.Feed(replay, wall, false)
		// The live map at the replay's time: every incident up to it,
		// applied as it arrived.
		now := p.Clock()
		for ; next < len(hist) && !eventTime(&hist[next]).After(now); next++ {
			at := eventTime(&hist[next])
			liveModel.Apply(hist[next], at, live)
			liveModel.Expire(at)
		}
		liveModel.Expire(now)
		if a, b := markerSet(liveModel), markerSet(replay); !slices.Equal(a, b) {
			t.Fatalf("at %v: live %v, replay %v", now.Sub(t0), a, b)
		}
		if a, b := sidebarIDs(liveModel), sidebarIDs(replay); a != b {
			t.Fatalf("at %v: sidebars differ:\n%s\n%s", now.Sub(t0), a, b)
		}
	}
	if next != len(hist) || replay.Len() != liveModel.Len() {
		t.Fatalf("live saw %d of %d; replay holds %d, live %d", next, len(hist), replay.Len(), liveModel.Len())
	}
}

func FuzzDecodeHistory(f *testing.F) {
	// More seeds in testdata/fuzz/FuzzDecodeHistory.
	f.Add(encodeNDJSON(f, history(3, time.Second)))
	f.Fuzz(func(t *testing.T, body []byte) {
		hist, skipped, err := DecodeHistory(body)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
		if len(hist) > MaxHistory || skipped < 0 {
			t.Fatalf("%d incidents, %d skipped", len(hist), skipped)
		}
		p := NewPlayer(hist)
		p.Seek(time.Time{}.Add(time.Duration(len(body)) * time.Hour))
		m := New(Config{})
		for _, in := range p.Advance(time.Now()) {
			if m.Apply(in, p.Clock(), live) == Invalid {
				t.Fatalf("DecodeHistory let through an incident the model refuses: %+v", in)
			}
		}
	})
}
