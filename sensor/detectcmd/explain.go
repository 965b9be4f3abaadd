package detectcmd

import (
	"bufio"
	"strconv"

	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/event"
)

// maxExplainQuote caps how much of an attacker's string --explain quotes:
// enough to recognise a line, never a flood on the terminal.
const maxExplainQuote = 160

// explainSkipped writes why a line gave no event.
func explainSkipped(w *bufio.Writer, name, parser string, n int, line []byte) {
	w.WriteString(name + ":" + strconv.Itoa(n) + ": not recognised by the " + parser + ": ")
	w.WriteString(quote(string(line)))
	w.WriteByte('\n')
}

// explainEvent writes the fields the parser read from a line and each
// detector's note. Every string an attacker could choose is quoted (Go
// syntax), so control characters and escape sequences cannot reach the
// terminal.
func explainEvent(w *bufio.Writer, name string, n int, ev *event.Event, notes []detect.Note) {
	w.WriteString(name + ":" + strconv.Itoa(n) + ": " + ev.Kind)
	if ev.Detail != "" {
		w.WriteString(" " + ev.Detail)
	}
	if ev.SrcIP.IsValid() {
		w.WriteString(" from " + ev.SrcIP.String())
		if ev.SrcPort != 0 {
			w.WriteString(" port " + strconv.Itoa(int(ev.SrcPort)))
		}
	}
	if ev.DstPort != 0 {
		w.WriteString(" to")
		if ev.Proto != "" {
			w.WriteString(" " + ev.Proto)
		}
		w.WriteString(" port " + strconv.Itoa(int(ev.DstPort)))
	}
	field := func(k, v string) {
		if v != "" {
			w.WriteString(" " + k + "=" + quote(v))
		}
	}
	if ev.PID != 0 {
		w.WriteString(" pid=" + strconv.FormatUint(uint64(ev.PID), 10))
	}
	field("user", ev.User)
	field("method", ev.Method)
	field("path", ev.Path)
	field("query", ev.Query)
	if ev.Status != 0 {
		w.WriteString(" status=" + strconv.Itoa(ev.Status))
	}
	field("ua", ev.UA)
	field("comm", ev.Comm)
	w.WriteString(" at " + ev.TS.UTC().Format("2006-01-02T15:04:05Z07:00") + "\n")
	if len(notes) == 0 {
		w.WriteString("  no detector wants " + ev.Kind + " events\n")
	}
	for _, nt := range notes {
		w.WriteString("  " + nt.Detector + ": " + nt.Text + "\n")
	}
}

// quote writes s in Go syntax, cut to maxExplainQuote bytes.
func quote(s string) string {
	if len(s) > maxExplainQuote {
		return strconv.Quote(s[:maxExplainQuote]) + "..."
	}
	return strconv.Quote(s)
}
