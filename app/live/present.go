package live

import (
	"slices"
	"strconv"
	"strings"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/incident"
	"github.com/paulmach/orb"
)

// Colour returns the marker colour of a severity (docs/DESIGN.md).
func Colour(s incident.Severity) string {
	switch s {
	case incident.Critical:
		return "#ef4444"
	case incident.High:
		return "#f87171"
	case incident.Medium:
		return "#f59e0b"
	case incident.Low:
		return "#06b6d4"
	}
	return "#22d3ee"
}

// AttackType is how the map names and colours one detector's incidents.
type AttackType struct {
	Source string // the detector name (incident "source")
	Label  string // words for people
	Colour string // the swatch beside the type in lists and details
}

// attackTypes lists every detector the sensor has, in the order the map
// shows them. The colours are a categorical palette kept apart from the
// severity colours (red, amber, cyan), which carry the markers.
var attackTypes = [...]AttackType{
	{"ssh_bruteforce", "SSH brute force", "#a78bfa"},
	{"credential_stuffing", "Credential stuffing", "#f472b6"},
	{"ssh_probe", "SSH scanner", "#818cf8"},
	{"ssh_timeout_storm", "SSH pre-auth timeouts (regreSSHion)", "#e879f9"},
	{"port_scan", "Port scan", "#34d399"},
	{"web_scan", "Web scan", "#facc15"},
	{"exploit_attempt", "Exploit attempt", "#fb923c"},
	{"c2_connect", "C2 connection", "#f43f5e"},
	{"suspicious_exec", "Shell spawned by a server", "#c084fc"},
}

// otherColours colour sources the map does not know (a newer sensor's
// detectors), picked by a hash of the name so one source keeps its colour.
var otherColours = [...]string{"#94a3b8", "#a3e635", "#2dd4bf", "#fda4af", "#93c5fd", "#fcd34d"}

// TypeColour returns the swatch colour of a detector name.
func TypeColour(source string) string {
	for _, t := range attackTypes {
		if t.Source == source {
			return t.Colour
		}
	}
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(source); i++ {
		h = (h ^ uint32(source[i])) * 16777619
	}
	return otherColours[h%uint32(len(otherColours))]
}

// Label turns a detector name into words: "ssh_bruteforce" -> "SSH brute
// force". Unknown names keep their words with underscores as spaces.
func Label(source string) string {
	for _, t := range attackTypes {
		if t.Source == source {
			return t.Label
		}
	}
	s := strings.ReplaceAll(source, "_", " ")
	if s == "" {
		return "Unknown"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// IsDrill reports whether an incident was staged by the drill tool.
func IsDrill(in *incident.Incident) bool {
	for _, t := range in.Tags {
		if t == "drill" {
			return true
		}
	}
	return in.GeoSource == "drill"
}

// ArcPath returns SVG path data for the great circle from a to b ([lon,
// lat]), split at the antimeridian, in map units with one decimal.
func ArcPath(a, b orb.Point) string {
	var sb strings.Builder
	for _, part := range geo.SplitAntimeridian(geo.GreatCircle(a, b, 0)) {
		for i, p := range part {
			q := geo.Project(p)
			if i == 0 {
				sb.WriteByte('M')
			} else {
				sb.WriteByte('L')
			}
			sb.WriteString(strconv.FormatFloat(q[0], 'f', 1, 64))
			sb.WriteByte(' ')
			sb.WriteString(strconv.FormatFloat(q[1], 'f', 1, 64))
		}
	}
	return sb.String()
}

// AttackTypes lists the detectors the map knows, in the order it shows
// them (for the type filter).
func AttackTypes() []AttackType { return slices.Clone(attackTypes[:]) }

// Severities lists the severity scale, highest first (for the severity
// filter and the legend).
func Severities() []incident.Severity { return slices.Clone(severities[:]) }
