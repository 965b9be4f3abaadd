package live

import (
	"strconv"
	"strings"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/incident"
	"github.com/paulmach/orb"
)

// Colour returns the marker colour of a severity (DESIGN.md).
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

// Label turns a detector name into words: "ssh_bruteforce" -> "SSH brute
// force". Unknown names keep their words with underscores as spaces.
func Label(source string) string {
	switch source {
	case "ssh_bruteforce":
		return "SSH brute force"
	case "credential_stuffing":
		return "Credential stuffing"
	case "port_scan":
		return "Port scan"
	case "web_scan":
		return "Web scan"
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
