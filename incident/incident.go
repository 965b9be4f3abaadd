// Package incident holds the one object that every part of attackmap shares:
// the incident, as written to the sensor's incidents journal, sent on the
// relay's ingest socket, served by /api/live-feed and carried in every SSE
// data line. It also holds the ingest protocol messages and the validation
// that decides whether an incident may enter the relay.
//
// The JSON names are a published contract (see docs/DESIGN.md): id, source,
// severity, ip, country, lat, lon and ts must never change.
package incident

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// MaxBytes is the largest encoded incident, in bytes. It keeps one hostile
// sensor from filling the relay's ring (10,000 x 16 KiB = 160 MiB worst case)
// and keeps an SSE event well under what browsers and proxies buffer.
const MaxBytes = 16 << 10

// Severity is the published severity scale.
type Severity string

// The severities, highest first.
const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// Rank orders severities: critical 4, high 3, medium 2, low 1, info 0 and
// -1 for anything unknown.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	case Info:
		return 0
	}
	return -1
}

// Valid reports whether s is one of the published severities.
func (s Severity) Valid() bool { return s.Rank() >= 0 }

// Escalate returns the severity steps levels above s, capped at critical.
func (s Severity) Escalate(steps int) Severity {
	r := s.Rank()
	if r < 0 {
		return s
	}
	r += steps
	if r > 4 {
		r = 4
	}
	return [...]Severity{Info, Low, Medium, High, Critical}[r]
}

// Location is a point with an optional country, used for the target host.
type Location struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	Country string  `json:"country,omitempty"`
}

// Evidence is what a detector saw. Every list is capped (MaxList items of at
// most MaxEvidenceString bytes): usernames, paths and user agents are chosen
// by the attacker and are data, never markup.
type Evidence struct {
	Users      []string `json:"users,omitempty"`
	Ports      []int    `json:"ports,omitempty"`
	Paths      []string `json:"paths,omitempty"`
	UserAgents []string `json:"user_agents,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	Statuses   []int    `json:"statuses,omitempty"`
	// Comm, Argv and Parent describe a process, for eBPF detectors.
	Comm   string   `json:"comm,omitempty"`
	Parent string   `json:"parent,omitempty"`
	Argv   []string `json:"argv,omitempty"`
	// Dst is a destination "ip:port" for outbound detectors (c2_connect).
	Dst string `json:"dst,omitempty"`
	// Lists names the threat lists an address matched.
	Lists []string `json:"lists,omitempty"`
}

// Incident is the wire object. Optional fields are omitted when unknown;
// lat/lon are pointers because 0,0 is a real place, not "unknown".
type Incident struct {
	ID       string    `json:"id"`
	Source   string    `json:"source"`
	Severity Severity  `json:"severity"`
	IP       string    `json:"ip"`
	Country  string    `json:"country,omitempty"`
	Lat      *float64  `json:"lat,omitempty"`
	Lon      *float64  `json:"lon,omitempty"`
	TS       time.Time `json:"ts"`

	City       string    `json:"city,omitempty"`
	ASN        uint32    `json:"asn,omitempty"`
	Org        string    `json:"org,omitempty"`
	AccuracyKM int       `json:"accuracy_km,omitempty"`
	Host       string    `json:"host,omitempty"`
	Target     *Location `json:"target,omitempty"`
	Title      string    `json:"title,omitempty"`
	Summary    string    `json:"summary,omitempty"`
	FirstSeen  time.Time `json:"first_seen,omitzero"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	Count      int       `json:"count,omitempty"`
	Evidence   *Evidence `json:"evidence,omitempty"`
	// AbuseScore is AbuseIPDB's confidence score; nil when not checked
	// (0 is a real answer).
	AbuseScore *int     `json:"abuse_score,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Action     string   `json:"action,omitempty"`
	// GeoSource names the database that placed the attacker ("dbip",
	// "maxmind", "ip-api", "drill"), so the map can show the attribution the
	// data's licence asks for. An addition to the published object.
	GeoSource string `json:"geo_source,omitempty"`
}

// SetLocation sets lat and lon together.
func (in *Incident) SetLocation(lat, lon float64) {
	in.Lat, in.Lon = &lat, &lon
}

// HasLocation reports whether the attacker's position is known.
func (in *Incident) HasLocation() bool { return in.Lat != nil && in.Lon != nil }

// Supersedes reports whether in is a newer copy of old (same id, later
// last_seen or higher count, or a raised severity). A copy with nothing newer
// is a redelivery and is dropped by the relay.
func (in *Incident) Supersedes(old *Incident) bool {
	if in.ID != old.ID {
		return false
	}
	return in.LastSeen.After(old.LastSeen) || in.Count > old.Count ||
		in.Severity.Rank() > old.Severity.Rank()
}

// Decode parses one incident from JSON. It refuses input larger than
// MaxBytes and trailing data, but does not validate; call Validate.
func Decode(data []byte) (Incident, error) {
	var in Incident
	if len(data) > MaxBytes {
		return in, fmt.Errorf("incident: %d bytes, over the %d byte limit", len(data), MaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&in); err != nil {
		return in, fmt.Errorf("incident: %w", jsonError(err))
	}
	if dec.More() {
		return in, errors.New("incident: trailing data after the object")
	}
	return in, nil
}

// jsonError turns encoding/json errors into short single-line messages.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON at byte %d: %w", se.Offset, err)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("%s: cannot be a JSON %s", field, te.Value)
	case errors.Is(err, io.EOF):
		return errors.New("empty input")
	}
	return err
}

// Marshal encodes in as one JSON line without a trailing newline, with HTML
// characters escaped (<, >, & become \u003c...) so that a careless consumer
// that pastes it into a page still does not run markup.
func Marshal(in *Incident) ([]byte, error) {
	return json.Marshal(in)
}
