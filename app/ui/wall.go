package ui

import (
	"time"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/incident"
)

// Wall mode (?wall=1) is the map on a screen nobody touches: full screen
// (asked on the first key or tap: browsers allow it only then), no chrome,
// larger type, a list that scrolls by itself, an optional beep on critical
// incidents, and a slow drift of the whole page against burn-in (CSS).

const (
	// wallScrollEvery paces the list's auto-scroll: one step every 3 s
	// reads as calm and shows a 50-row list in a few minutes.
	wallScrollEvery = 3
	// wallScrollStep is one step, about one row, in CSS pixels.
	wallScrollStep = 64
	// beepGap keeps a burst of critical incidents from becoming a tone:
	// at most one beep per 2 s.
	beepGap = 2 * time.Second
)

// wallState is what wall mode keeps.
type wallState struct {
	on    bool
	sound bool
	// audio is the WebAudio context, made on the user's click that turns
	// the sound on (browsers refuse to start one otherwise).
	audio    app.Value
	beepedAt time.Time
	ticks    int
	// fsFunc swallows a refused requestFullscreen promise.
	fsFunc app.Func
}

// listenWall asks for full screen on the first key or pointer press.
func (c *Live) listenWall() []func() {
	doc := app.Window().Get("document")
	c.wall.fsFunc = app.FuncOf(func(app.Value, []app.Value) any { return nil })
	ask := func(app.Value) {
		if !c.wall.on || doc.Get("fullscreenElement").Truthy() {
			return
		}
		root := doc.Get("documentElement")
		if !root.Get("requestFullscreen").Truthy() {
			return
		}
		if p := root.Call("requestFullscreen"); p.Truthy() {
			p.Call("catch", c.wall.fsFunc)
		}
	}
	return []func(){
		listen(doc, "pointerdown", ask),
		listen(doc, "keydown", ask),
		func() { c.wall.fsFunc.Release() },
	}
}

// wallTick scrolls the list one step every wallScrollEvery ticks, back to
// the top at the end.
func (c *Live) wallTick() {
	if !c.wall.on {
		return
	}
	c.wall.ticks++
	if c.wall.ticks%wallScrollEvery != 0 {
		return
	}
	side := app.Window().Get("document").Call("querySelector", ".side")
	if !side.Truthy() {
		return
	}
	top, h, total := side.Get("scrollTop").Float(), side.Get("clientHeight").Float(), side.Get("scrollHeight").Float()
	if top+h >= total-2 {
		side.Call("scrollTo", map[string]any{"top": 0, "behavior": "smooth"})
		return
	}
	side.Call("scrollBy", map[string]any{"top": wallScrollStep, "behavior": "smooth"})
}

// toggleSound turns the beep on or off; turning it on makes the audio
// context inside the click, and beeps once so the user hears the level.
func (c *Live) toggleSound(ctx app.Context, e app.Event) {
	c.wall.sound = !c.wall.sound
	if !c.wall.sound {
		return
	}
	if !c.wall.audio.Truthy() {
		ac := app.Window().Get("AudioContext")
		if !ac.Truthy() {
			c.wall.sound = false
			return
		}
		c.wall.audio = ac.New()
	}
	c.beep(time.Now(), true)
}

// beep plays a short 880 Hz tone (WebAudio), at most once per beepGap.
func (c *Live) beep(now time.Time, force bool) {
	w := &c.wall
	if !w.sound || !w.audio.Truthy() || !force && now.Sub(w.beepedAt) < beepGap {
		return
	}
	w.beepedAt = now
	ac := w.audio
	if ac.Get("state").String() == "suspended" {
		ac.Call("resume")
	}
	t := ac.Get("currentTime").Float()
	osc := ac.Call("createOscillator")
	gain := ac.Call("createGain")
	osc.Set("type", "sine")
	osc.Get("frequency").Set("value", 880)
	gain.Get("gain").Call("setValueAtTime", 0.15, t)
	gain.Get("gain").Call("exponentialRampToValueAtTime", 0.001, t+0.25)
	osc.Call("connect", gain)
	gain.Call("connect", ac.Get("destination"))
	osc.Call("start", t)
	osc.Call("stop", t+0.3)
}

// wantsBeep reports whether an arrival calls for the critical beep.
func wantsBeep(in *incident.Incident) bool { return in.Severity == incident.Critical }
