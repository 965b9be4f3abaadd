package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
	"github.com/attackmap/attackmap/incident"
)

// problemText says why the stream is down and what to do about it, from a
// probe's result ("" when the probe found nothing wrong). origin is the
// page's own origin, relay the relay's ("" for the page's own).
func problemText(r probeResult, status int, origin, relay string) string {
	where := "the relay"
	if relay != "" {
		where = "the relay at " + clean(relay, live.MaxRelayURL)
	}
	origin = clean(origin, live.MaxRelayURL)
	switch r {
	case probeCORS:
		return "This relay does not allow " + origin + "; start it with --allow-origin " + origin +
			" (or pick another relay in Settings)."
	case probeUnreachable:
		return "Cannot reach " + where + ": is it running, and is the address right (Settings)? Retrying."
	case probeHTTP:
		return strconv.Itoa(status) + " from " + where + " (" + httpReason(status) + "). Retrying."
	}
	return ""
}

func httpReason(status int) string {
	switch {
	case status == 429:
		return "too many connections from this network"
	case status == 503:
		return "it is at its connection limit or shutting down"
	case status == 403:
		return "refused"
	case status == 404:
		return "no attackmap relay at this address"
	case status >= 500:
		return "server error"
	}
	return "unexpected answer"
}

// emptyHint is what the list says when it has nothing to show: it must
// tell a user of a quiet machine why, and how to see the map working.
type emptyHint struct {
	Status string
	// Problem is the connection problem, already shown in the banner.
	Problem string
	// Total is the relay's 24 h count (with Seeded: the relay answered).
	Total  int
	Seeded bool
	// Filtered is set when a filter is on; BlockedOnly when it is (or
	// includes) "Blocked only".
	Filtered    bool
	BlockedOnly bool
}

// render draws the hint.
func (h emptyHint) render() app.UI {
	switch {
	case h.Filtered && h.BlockedOnly:
		return app.P().Class("empty").ID("empty").Text("No blocked incidents match the filter among the newest.")
	case h.Filtered:
		return app.P().Class("empty").ID("empty").Text("No incidents match the filter.")
	case h.Problem != "":
		return app.P().Class("empty").ID("empty").Text("No incidents to show until the relay answers (see above).")
	case h.Status == StatusOffline:
		return app.P().Class("empty").ID("empty").Text("Offline, and no incidents kept from an earlier visit. The map reconnects when the network is back.")
	case h.Status != StatusLive || !h.Seeded:
		return app.P().Class("empty").ID("empty").Text("Waiting for incidents…")
	}
	lead := "No incidents yet."
	if h.Total > 0 {
		lead = "No incidents in the last few minutes (" + strconv.Itoa(h.Total) + " in 24 h)."
	}
	return app.Div().Class("empty").ID("empty").Body(
		app.P().Text(lead),
		app.Ul().Body(
			app.Li().Text("Attacks from private and loopback addresses (your LAN, localhost) are filtered out: only public sources are mapped."),
			app.Li().Text("The sensor needs log files to follow: when it found none it says \"no log files found to follow\" in its log; give it --auth-log or --access-log."),
			app.Li().Body(app.Text("To see it working, run "), app.Code().Text("sudo make drill"), app.Text(": real attacks on loopback, placed on the map.")),
		),
	)
}

// savedStats is the last /api/stats answer, kept in localStorage with the
// incidents so the offline shell shows the numbers it had.
type savedStats struct {
	At   time.Time `json:"at"`
	Body string    `json:"body"`
}

// decodeFeed decodes /api/live-feed (a JSON array, oldest first) in one
// pass and calls apply for each incident; an element that is not an
// incident is skipped, the rest still apply. It reports whether body was
// an array at all.
func decodeFeed(body []byte, apply func(incident.Incident)) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return false
	}
	for dec.More() {
		var in incident.Incident
		if err := dec.Decode(&in); err != nil {
			var ute *json.UnmarshalTypeError
			if !errors.As(err, &ute) {
				return true // malformed JSON: the rest cannot be read
			}
			continue // a wrong type inside one element: json consumed it whole
		}
		apply(in)
	}
	return true
}
