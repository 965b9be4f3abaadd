package incident

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const example = `{"id":"ssh_bruteforce:185.220.101.34:2026-03-22T14:32Z","source":"ssh_bruteforce",
 "severity":"high","ip":"185.220.101.34","country":"DE","lat":51.29,"lon":9.49,
 "ts":"2026-03-22T14:32:01Z",
 "city":"Frankfurt am Main","asn":205100,"org":"F3 Netze e.V.","accuracy_km":20,
 "host":"web-1","target":{"lat":50.11,"lon":8.68,"country":"DE"},
 "title":"SSH brute force","summary":"23 failed logins for 9 users in 60 s",
 "first_seen":"2026-03-22T14:31:02Z","last_seen":"2026-03-22T14:32:01Z","count":23,
 "evidence":{"users":["root","admin"],"ports":[22]},
 "abuse_score":100,"tags":["tor-exit"],"action":"blocked"}`

func TestDesignExampleRoundTrips(t *testing.T) {
	in, err := Decode([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	if err := json.Unmarshal([]byte(example), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if string(wb) != string(gb) {
		t.Fatalf("round trip changed the object:\nwant %s\ngot  %s", wb, gb)
	}
}

func TestUnknownLocationIsAbsentNotZero(t *testing.T) {
	in := Incident{ID: "a", Source: "port_scan", Severity: Low, IP: "2001:db8::1",
		TS: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, err := Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"lat"`, `"lon"`, `"country"`, `"first_seen"`, `"abuse_score"`} {
		if strings.Contains(string(b), k) {
			t.Errorf("%s present in %s", k, b)
		}
	}
	in.SetLocation(0, 0)
	b, _ = Marshal(&in)
	if !strings.Contains(string(b), `"lat":0,"lon":0`) {
		t.Errorf("a real 0,0 location was dropped: %s", b)
	}
}

func TestValidate(t *testing.T) {
	base := func() Incident {
		in, err := Decode([]byte(example))
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	f := func(v float64) *float64 { return &v }
	n := func(v int) *int { return &v }
	tests := []struct {
		name   string
		change func(*Incident)
		want   string // substring of the error; "" means valid
	}{
		{"the design example is valid", func(*Incident) {}, ""},
		{"accepts IPv6", func(in *Incident) { in.IP = "2a01:4f8::1" }, ""},
		{"accepts no location", func(in *Incident) { in.Lat, in.Lon = nil, nil }, ""},
		{"rejects a misspelt severity", func(in *Incident) { in.Severity = "hgih" }, `severity: unknown value "hgih"`},
		{"rejects a missing id", func(in *Incident) { in.ID = "" }, "id: missing"},
		{"rejects LF in the id", func(in *Incident) { in.ID = "a\nid: 5" }, "id: control character"},
		{"rejects CR in the id", func(in *Incident) { in.ID = "a\rb" }, "id: control character"},
		{"rejects NUL in the id", func(in *Incident) { in.ID = "a\x00b" }, "id: control character"},
		{"rejects a long id", func(in *Incident) { in.ID = strings.Repeat("x", MaxID+1) }, "id: 257 bytes"},
		{"rejects a hostname as ip", func(in *Incident) { in.IP = "evil.example" }, "ip: not an IPv4"},
		{"rejects a zoned ip", func(in *Incident) { in.IP = "fe80::1%eth0" }, "ip: not an IPv4"},
		{"rejects a missing ip", func(in *Incident) { in.IP = "" }, "ip: missing"},
		{"rejects lat without lon", func(in *Incident) { in.Lon = nil }, "give both"},
		{"rejects lat 91", func(in *Incident) { in.Lat = f(91) }, "lat: 91 is not between"},
		{"rejects lon -181", func(in *Incident) { in.Lon = f(-181) }, "lon: -181 is not between"},
		{"rejects a bad target", func(in *Incident) { in.Target.Lat = 100 }, "target.lat"},
		{"rejects a lowercase country", func(in *Incident) { in.Country = "de" }, "country"},
		{"rejects a missing ts", func(in *Incident) { in.TS = time.Time{} }, "ts: missing"},
		{"rejects an unknown source name", func(in *Incident) { in.Source = "SSH Brute" }, "source:"},
		{"rejects a long summary", func(in *Incident) { in.Summary = strings.Repeat("a", MaxSummary+1) }, "summary:"},
		{"rejects invalid UTF-8", func(in *Incident) { in.City = "\xff\xfe" }, "city: not valid UTF-8"},
		{"rejects too many users", func(in *Incident) { in.Evidence.Users = make([]string, MaxList+1) }, "evidence.users: 33 items"},
		{"rejects a control char in a user", func(in *Incident) { in.Evidence.Users = []string{"root\r\ndata: x"} }, "evidence.users[0]: control"},
		{"rejects a port out of range", func(in *Incident) { in.Evidence.Ports = []int{70000} }, "evidence.ports[0]"},
		{"rejects an abuse score of 101", func(in *Incident) { in.AbuseScore = n(101) }, "abuse_score"},
		{"rejects too many tags", func(in *Incident) { in.Tags = make([]string, MaxTags+1) }, "tags:"},
		{"rejects an uppercase tag", func(in *Incident) { in.Tags = []string{"TOR"} }, "tags[0]"},
		{"rejects last_seen before first_seen", func(in *Incident) { in.LastSeen = in.FirstSeen.Add(-time.Second) }, "last_seen"},
		{"rejects a negative count", func(in *Incident) { in.Count = -1 }, "count"},
		{"rejects a bad action", func(in *Incident) { in.Action = "<b>" }, "action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base()
			tt.change(&in)
			err := in.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"garbage", "not json", "malformed JSON"},
		{"empty", "", "empty input"},
		{"wrong type", `{"id":5}`, "id: cannot be a JSON number"},
		{"trailing data", `{"id":"a"} {"id":"b"}`, "trailing data"},
		{"too big", `{"id":"` + strings.Repeat("a", MaxBytes) + `"}`, "over the 16384 byte limit"},
		{"deep nesting", `{"evidence":` + strings.Repeat("[", 12000), "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSupersedes(t *testing.T) {
	t0 := time.Date(2026, 3, 22, 14, 0, 0, 0, time.UTC)
	old := Incident{ID: "x", Severity: High, Count: 6, LastSeen: t0}
	tests := []struct {
		name string
		new  Incident
		want bool
	}{
		{"an exact repeat is not newer", old, false},
		{"a later last_seen is newer", Incident{ID: "x", Severity: High, Count: 6, LastSeen: t0.Add(time.Second)}, true},
		{"a higher count is newer", Incident{ID: "x", Severity: High, Count: 7, LastSeen: t0}, true},
		{"a raised severity is newer", Incident{ID: "x", Severity: Critical, Count: 6, LastSeen: t0}, true},
		{"another id never supersedes", Incident{ID: "y", Severity: High, Count: 99, LastSeen: t0}, false},
		{"an older copy is not newer", Incident{ID: "x", Severity: High, Count: 5, LastSeen: t0.Add(-time.Second)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.new.Supersedes(&old); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSeverityEscalate(t *testing.T) {
	if got := Medium.Escalate(1); got != High {
		t.Errorf("medium+1 = %s", got)
	}
	if got := High.Escalate(2); got != Critical {
		t.Errorf("high+2 = %s", got)
	}
	if got := Severity("bogus").Escalate(1); got != "bogus" {
		t.Errorf("unknown escalated to %s", got)
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"root", 32, "root"},
		{"ro\not", 32, `ro\x0aot`},
		{"a\xffb", 32, "a\uFFFDb"},
		{"abcdefghij", 8, "abcde…"},
		{"ééééé", 6, "é…"},
		{"x\u2028y", 32, `x\u2028y`},
	}
	for _, tt := range tests {
		got := CleanText(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("CleanText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if err := checkText("x", got, tt.max, false); err != nil {
			t.Errorf("CleanText(%q) result fails validation: %v", tt.in, err)
		}
	}
}

func FuzzDecodeValidate(f *testing.F) {
	f.Add([]byte(example))
	seeds, _ := filepath.Glob("testdata/seed/*.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Decode(data)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if err := in.Validate(); err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// A valid incident re-encodes within the limit, as valid UTF-8, with
		// no raw line breaks that could split an SSE data line.
		b, err := Marshal(&in)
		if err != nil {
			t.Fatal(err)
		}
		if CheckSize(b) != nil {
			return // HTML escaping can grow a valid incident past the limit
		}
		if !utf8.Valid(b) || strings.ContainsAny(string(b), "\r\n") {
			t.Fatalf("valid incident encodes badly: %q", b)
		}
		again, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("re-decoded incident invalid: %v", err)
		}
	})
}

func FuzzCleanText(f *testing.F) {
	f.Add("root", 16)
	f.Add("a\x00\r\n\xff\u2028", 3)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 4096 {
			return
		}
		got := CleanText(s, max)
		if len(got) > max {
			t.Fatalf("CleanText(%q, %d) = %q is %d bytes", s, max, got, len(got))
		}
		if err := checkText("x", got, max, false); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCleanTextEscapesBidiAndZeroWidth(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"right-to-left override", "invoice\u202egpj.exe", `invoice\u202egpj.exe`},
		{"left-to-right embedding", "a\u202ab", `a\u202ab`},
		{"isolates", "\u2066x\u2069", `\u2066x\u2069`},
		{"directional marks", "\u200e\u200f", `\u200e\u200f`},
		{"arabic letter mark", "\u061c", `\u061c`},
		{"zero-width space", "ro\u200bot", `ro\u200bot`},
		{"zero-width joiners", "a\u200c\u200db", `a\u200c\u200db`},
		{"word joiner", "a\u2060b", `a\u2060b`},
		{"byte order mark", "\ufeffadmin", `\ufeffadmin`},
		{"other non-ASCII text stays", "Zürich 東京 مرحبا", "Zürich 東京 مرحبا"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CleanText(tt.in, 64); got != tt.want {
				t.Fatalf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCleanFormatCleansEveryTextField(t *testing.T) {
	in, err := Decode([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	const rlo = "\u202e"
	in.ID, in.City, in.Org, in.Title = "id"+rlo, "Berlin"+rlo, "Org\u200b", "T\ufeff"
	in.Summary = strings.Repeat(rlo, MaxSummary/len(rlo))
	in.Evidence.Users = []string{"root" + rlo}
	in.Evidence.Paths = []string{"/a\u2066"}
	in.Evidence.UserAgents = []string{"ua\u200d"}
	in.Evidence.Argv = []string{"sh\u061c"}
	in.Evidence.Comm, in.Evidence.Parent, in.Evidence.Dst = "c"+rlo, "p"+rlo, "d"+rlo
	if err := in.Validate(); err != nil {
		t.Fatalf("bidi text is valid input (it is cleaned, not refused): %v", err)
	}
	in.CleanFormat()
	if err := in.Validate(); err != nil {
		t.Fatalf("cleaned incident invalid: %v", err)
	}
	b, _ := Marshal(&in)
	for _, r := range string(b) {
		if isFormat(r) {
			t.Fatalf("format character %U left in %s", r, b)
		}
	}
	if !strings.Contains(string(b), `root\\u202e`) {
		t.Errorf("override not shown as an escape: %s", b)
	}
}

func TestValidateRefusesAbsurdCounts(t *testing.T) {
	in, err := Decode([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []int{MaxCount + 1, math.MaxInt64} {
		in.Count = c
		if err := in.Validate(); err == nil || !strings.Contains(err.Error(), "count:") {
			t.Errorf("count %d: error %v, want a count error", c, err)
		}
	}
	in.Count = MaxCount
	if err := in.Validate(); err != nil {
		t.Errorf("count %d refused: %v", MaxCount, err)
	}
}

func TestCheckTimes(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	tests := []struct {
		name    string
		ts      time.Time
		first   time.Time
		last    time.Time
		want    error
		wantMsg string
	}{
		{"now is fine", now, time.Time{}, time.Time{}, nil, ""},
		{"a minute ahead is fine", now.Add(time.Minute), time.Time{}, time.Time{}, nil, ""},
		{"five minutes ahead is fine", now.Add(MaxClockAhead), time.Time{}, time.Time{}, nil, ""},
		{"an hour ahead is refused", now.Add(time.Hour), time.Time{}, time.Time{}, ErrClockAhead, "ts: 2026-12-01T13:00:00Z is 1h0m0s ahead"},
		{"year 9999 is refused", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, time.Time{}, ErrClockAhead, "over 100 years ahead"},
		{"a last_seen ahead is refused", now, now, now.Add(time.Hour), ErrClockAhead, "last_seen:"},
		{"a first_seen ahead is refused", now, now.Add(time.Hour), time.Time{}, ErrClockAhead, "first_seen:"},
		{"six days old is fine", now.Add(-6 * 24 * time.Hour), time.Time{}, time.Time{}, nil, ""},
		{"eight days old is refused", now.Add(-8 * 24 * time.Hour), time.Time{}, time.Time{}, ErrTooOld, "ts: 2026-11-23T12:00:00Z is 8 days old"},
		{"year 0001 is refused", time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), time.Time{}, time.Time{}, ErrTooOld, "over 100 years old"},
		{"an old first_seen within a year is fine", now, now.Add(-30 * 24 * time.Hour), now, nil, ""},
		{"a first_seen years ago is refused", now, now.Add(-400 * 24 * time.Hour), now, ErrTooOld, "first_seen:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Incident{TS: tt.ts, FirstSeen: tt.first, LastSeen: tt.last}
			err := in.CheckTimes(now, week)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func TestKnownListsAreSorted(t *testing.T) {
	for _, l := range [][]string{knownSources, knownGeoSources} {
		if !slices.IsSorted(l) {
			t.Errorf("%v is not sorted: the lookups binary-search it", l)
		}
		for _, s := range l {
			if err := checkName("x", s, MaxSource, true); err != nil || s == Other {
				t.Errorf("%q cannot be a source: %v", s, err)
			}
		}
	}
	if !KnownSource("ssh_bruteforce") || KnownSource("made_up") || !KnownGeoSource("dbip") || KnownGeoSource("x") {
		t.Error("lookups wrong")
	}
}

func TestValidateNeitherEncodesNorAllocates(t *testing.T) {
	in, err := Decode([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	in.Tags = append(in.Tags, "a", "b", "c")
	in.Evidence.Paths = []string{"/wp-login.php", "/.env"}
	// Marshal allocates its output: a Validate that encodes to measure
	// the size cannot pass this.
	if n := testing.AllocsPerRun(100, func() {
		if err := in.Validate(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Validate allocated %v times per call, want 0", n)
	}
}

func TestCheckSizeIsSeparateFromValidate(t *testing.T) {
	in, err := Decode([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	// Every field within its cap, the whole over MaxBytes once encoded:
	// '<' is one byte in memory and six (\u003c) on the wire.
	in.Evidence.Paths = nil
	for range MaxList {
		in.Evidence.Paths = append(in.Evidence.Paths, strings.Repeat("<", MaxEvidenceString))
	}
	if err := in.Validate(); err != nil {
		t.Fatalf("fields within their caps: %v", err)
	}
	b, err := Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSize(b); err == nil || !strings.Contains(err.Error(), "over the 16384 byte limit") {
		t.Errorf("CheckSize(%d bytes) = %v, want over the limit", len(b), err)
	}
	if err := CheckSize([]byte(example)); err != nil {
		t.Errorf("CheckSize(example) = %v", err)
	}
}

func TestListErrorsNameTheItem(t *testing.T) {
	in, err := Decode([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	in.Tags = []string{"ok", "Bad"}
	if err := in.Validate(); err == nil || !strings.HasPrefix(err.Error(), `tags[1]: "Bad" has characters`) {
		t.Errorf("tags: %v", err)
	}
	in.Tags = nil
	in.Evidence.Users = []string{"root", "a\x01"}
	if err := in.Validate(); err == nil || !strings.HasPrefix(err.Error(), "evidence.users[1]: control character") {
		t.Errorf("users: %v", err)
	}
}
