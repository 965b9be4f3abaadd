package ui

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/live"
)

// Replay (DVR): the map pauses its live view and plays the relay's last
// 24 hours (/api/history) at 1x to 60x, with a scrubber. The replay view
// is a second Model fed by a live.Player on the player's clock; the live
// stream keeps applying to the live model meanwhile, so "Back to live"
// shows everything that arrived, once.

const (
	// replayWindow is how far back a replay reaches: the day the relay's
	// stats cover.
	replayWindow = 24 * time.Hour
	// replayEvery is the replay's frame: four steps a second keeps 60x
	// smooth (15 s of history per step) without re-rendering per frame.
	replayEvery = 250 * time.Millisecond
)

// replaySpeeds are the speeds offered.
var replaySpeeds = []float64{1, 5, 10, 30, 60}

// replayState is a replay in progress.
type replayState struct {
	m       *live.Model
	p       *live.Player
	loading bool
	err     string
	skipped int
	// ticking is set while a replay step is scheduled.
	ticking bool
}

// historyURL is the /api/history request for the window ending at now.
func historyURL(relay string, now time.Time) string {
	q := url.Values{}
	q.Set("from", now.Add(-replayWindow).UTC().Format(time.RFC3339))
	q.Set("to", now.UTC().Format(time.RFC3339))
	q.Set("limit", strconv.Itoa(live.MaxHistory))
	return live.Endpoint(relay, "/api/history") + "?" + q.Encode()
}

// shown is the model on screen: the replay's while one runs.
func (c *Live) shown() *live.Model {
	if c.replay != nil && c.replay.m != nil {
		return c.replay.m
	}
	return c.m
}

// startReplay pauses the live view and fetches the history.
func (c *Live) startReplay(ctx app.Context, e app.Event) {
	if c.replay != nil {
		return
	}
	r := &replayState{loading: true}
	c.replay = r
	relay := c.relay
	fetchText(historyURL(relay, time.Now()), live.MaxHistoryBytes, func(body string, err error) {
		c.post(func(ctx app.Context) {
			if c.replay != r || relay != c.relay {
				return // left the replay, or switched relays, meanwhile
			}
			r.loading = false
			if err != nil {
				r.err = "The relay's history is not available: " + clean(err.Error(), 200)
				return
			}
			hist, skipped, err := live.DecodeHistory([]byte(body))
			if err != nil && len(hist) == 0 {
				r.err = "The relay's history could not be read: " + clean(err.Error(), 200)
				return
			}
			if len(hist) == 0 {
				r.err = "No incidents in the relay's last 24 hours."
				return
			}
			r.skipped = skipped
			r.p = live.NewPlayer(hist)
			c.newReplayModel()
			c.showPanels()
		})
	})
}

// newReplayModel starts an empty replay model with the page's filter (a
// rewind needs a fresh one: the old one has seen later incidents).
func (c *Live) newReplayModel() {
	m := live.New(c.m.Config())
	m.SetFilter(c.filter)
	c.replay.m = m
}

// stopReplay is "Back to live".
func (c *Live) stopReplay(ctx app.Context, e app.Event) {
	c.replay = nil
	c.showPanels()
}

func (c *Live) playPause(ctx app.Context, e app.Event) {
	r := c.replay
	if r == nil || r.p == nil {
		return
	}
	if r.p.Playing() {
		r.p.Pause()
		return
	}
	if r.p.Done() {
		c.seekReplay(ctx, time.Time{}) // from the start again
	}
	r.p.Play()
	c.replayStep(ctx)
}

func (c *Live) setSpeed(ctx app.Context, e app.Event) {
	if c.replay == nil || c.replay.p == nil {
		return
	}
	if x, err := strconv.ParseFloat(ctx.JSSrc().Get("value").String(), 64); err == nil {
		c.replay.p.SetSpeed(x)
	}
}

// onScrub seeks to the scrubber's position (seconds from the start).
func (c *Live) onScrub(ctx app.Context, e app.Event) {
	r := c.replay
	if r == nil || r.p == nil {
		return
	}
	sec, err := strconv.ParseFloat(ctx.JSSrc().Get("value").String(), 64)
	if err != nil {
		return
	}
	from, _ := r.p.Span()
	c.seekReplay(ctx, from.Add(time.Duration(sec*float64(time.Second))))
}

// seekReplay moves the replay to t (the zero time: the start) and shows
// what the map showed then, settled.
func (c *Live) seekReplay(ctx app.Context, t time.Time) {
	r := c.replay
	if t.IsZero() {
		from, _ := r.p.Span()
		t = from.Add(-time.Nanosecond)
	}
	if r.p.Seek(t) {
		c.newReplayModel()
	}
	c.feedReplay(true)
	c.showPanels()
}

// replayStep advances a playing replay and schedules the next step.
func (c *Live) replayStep(ctx app.Context) {
	r := c.replay
	if r == nil || r.p == nil || r.ticking || c.stopped {
		return
	}
	c.feedReplay(false)
	c.showPanels()
	if !r.p.Playing() {
		return
	}
	r.ticking = true
	ctx.After(replayEvery, func(ctx app.Context) {
		r.ticking = false
		if c.replay == r {
			c.replayStep(ctx)
		}
	})
}

// feedReplay applies what the player has due to the replay model, on the
// player's clock. settled: a seek, whose catch-up must not pulse.
func (c *Live) feedReplay(settled bool) {
	r := c.replay
	due := r.p.Advance(time.Now())
	now := r.p.Clock()
	opt := live.Options{Live: true, Hidden: settled || c.hidden}
	for i := range due {
		r.m.Apply(due[i], now, opt)
	}
	r.m.Expire(now)
}

// renderReplay draws the replay controls (or the button that starts one).
func (c *Live) renderReplay() app.UI {
	r := c.replay
	if r == nil {
		return app.Div().Class("replay").Body(
			app.Button().Type("button").ID("replay-start").Title("Pause the live view and replay the last 24 hours").
				OnClick(c.startReplay).Text("Replay 24 h"),
		)
	}
	back := app.Button().Type("button").ID("replay-live").Class("back-live").OnClick(c.stopReplay).Text("Back to live")
	switch {
	case r.loading:
		return app.Div().Class("replay", "on").Body(app.Span().Class("r-msg").Role("status").Text("Loading the last 24 hours…"), back)
	case r.err != "":
		return app.Div().Class("replay", "on").Body(app.Span().Class("r-msg").Role("status").Text(r.err), back)
	}
	from, to := r.p.Span()
	span := to.Sub(from).Seconds()
	pos := max(0, r.p.Clock().Sub(from).Seconds())
	speeds := make([]app.UI, len(replaySpeeds))
	for i, x := range replaySpeeds {
		v := strconv.FormatFloat(x, 'f', -1, 64)
		speeds[i] = app.Option().Value(v).Selected(x == r.p.Speed()).Text(v + "×")
	}
	play := "Play"
	if r.p.Playing() {
		play = "Pause"
	}
	return app.Div().Class("replay", "on").ID("replay").Role("group").Aria("label", "Replay").Body(
		app.Span().Class("r-badge").Text("Replay"),
		app.Button().Type("button").ID("replay-play").OnClick(c.playPause).Text(play),
		app.Input().Type("range").ID("replay-scrub").Class("scrub").Aria("label", "Replay time").
			Min(0).Max(strconv.FormatFloat(span, 'f', 0, 64)).Step(1).
			Value(strconv.FormatFloat(pos, 'f', 0, 64)).
			Aria("valuetext", replayStamp(r.p.Clock())).OnInput(c.onScrub),
		app.Span().Class("r-clock").ID("replay-clock").Text(replayStamp(r.p.Clock())),
		app.Select().ID("replay-speed").Aria("label", "Replay speed").OnChange(c.setSpeed).Body(speeds...),
		app.Span().Class("r-count").Text(strconv.Itoa(r.p.Len())+" incidents"+skippedNote(r.skipped)),
		back,
	)
}

func replayStamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("Mon 15:04:05")
}

func skippedNote(n int) string {
	if n == 0 {
		return ""
	}
	return " (" + strconv.Itoa(n) + " unreadable skipped)"
}

// parseQuery reads location.search ("?a=b"); a malformed one is empty.
func parseQuery(search string) url.Values {
	q, err := url.ParseQuery(strings.TrimPrefix(search, "?"))
	if err != nil {
		return url.Values{}
	}
	return q
}
