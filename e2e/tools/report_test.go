package tools

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// writeReport writes one row per attack: its address, how the tool run
// went, the log lines and sensor events from its address, the incidents
// raised for it and the verdict.
func writeReport(w io.Writer, results []outcome, ebpf bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "attack\taddress\ttool run\tlog lines\tsensor events\tincidents (source severity \"title\" xcount)\tverdict")
	for i := range attacks {
		a, o := &attacks[i], &results[i]
		if o.skip != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\tSKIP: %s\n", a.name, a.addr, o.skip)
			continue
		}
		verdict := "ok"
		switch {
		case len(a.want) == 0 && len(o.incidents) > 0:
			verdict = "FAIL: false positive"
		case len(a.want) == 0 && o.run.Err != nil:
			verdict = "FAIL: the client did not work"
		case len(a.want) > 0 && !slices.ContainsFunc(o.incidents, func(in incident.Incident) bool { return wanted(a, in) }):
			verdict = "FAIL: want " + strings.Join(a.want, "|")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.name, a.addr, runText(o.run),
			kinds(o.lines), kinds(o.events), listIncidents(o.incidents), verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "eBPF collectors: %v\n", ebpf)
	for i := range attacks {
		a, o := &attacks[i], &results[i]
		if o.skip == "" && (o.run.Err != nil && !o.run.TimedOut || o.lines["lines"] == 0 && !a.ebpf) {
			fmt.Fprintf(w, "--- %s output (last lines):\n%s\n", a.name, o.run.Output)
		}
	}
}

// runText is "12.3s exit 0", "40s timeout" or "1.2s exit status 255".
func runText(r toolRun) string {
	d := r.End.Sub(r.Start).Round(100 * time.Millisecond)
	switch {
	case r.TimedOut:
		return fmt.Sprintf("%s timeout", d)
	case r.Err != nil:
		return fmt.Sprintf("%s %v", d, r.Err)
	}
	return fmt.Sprintf("%s exit 0", d)
}

// kinds is "lines=40 Failed password=38", in a stable order ("lines"
// first).
func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Sorted(maps.Keys(m))
	if i := slices.Index(keys, "lines"); i > 0 {
		keys = append([]string{"lines"}, slices.Delete(keys, i, i+1)...)
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", strings.Trim(k, `" `), m[k])
	}
	return strings.Join(parts, " ")
}

// listIncidents is `ssh_bruteforce high "SSH brute force" x23; ...`.
func listIncidents(incs []incident.Incident) string {
	if len(incs) == 0 {
		return "none"
	}
	parts := make([]string, len(incs))
	for i, in := range incs {
		parts[i] = fmt.Sprintf("%s %s %q x%d", in.Source, in.Severity, in.Title, in.Count)
		if len(in.Tags) > 0 {
			parts[i] += " [" + strings.Join(in.Tags, ",") + "]"
		}
	}
	return strings.Join(parts, "; ")
}
