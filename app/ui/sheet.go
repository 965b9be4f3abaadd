package ui

import (
	"math"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"
)

// On a phone or a portrait tablet the sidebar is a bottom sheet under the
// map: it rests at one of three heights and can be dragged between them
// with a finger or a mouse (pointer events), or stepped through with its
// handle (a button: click, Enter or Space). On a wide screen the handle is
// hidden and the sheet is an ordinary column.

// Sheet snap points.
const (
	sheetPeek = "peek" // only the handle and the list's heading
	sheetMid  = "mid"  // the space under the map (the default)
	sheetFull = "full" // over the map, up to the header
)

// sheetPeekPx is the height of the peek snap, in CSS pixels: the handle
// and the list's heading stay visible (web/attackmap.css agrees).
const sheetPeekPx = 88

// dragSlop is how far a pointer moves before a press on the handle counts
// as a drag rather than a tap (a finger wobbles a few pixels).
const dragSlop = 6

// nextSnap is where a tap on the handle takes the sheet.
func nextSnap(s string) string {
	switch s {
	case sheetPeek:
		return sheetMid
	case sheetMid:
		return sheetFull
	}
	return sheetPeek
}

// nearestSnap picks the snap point closest to height h, given the heights
// of the three (peek < mid <= full).
func nearestSnap(h, peek, mid, full float64) string {
	best, snap := math.Abs(h-mid), sheetMid
	if d := math.Abs(h - peek); d < best {
		best, snap = d, sheetPeek
	}
	if d := math.Abs(h - full); d < best {
		snap = sheetFull
	}
	return snap
}

// sheetDrag follows one drag of the handle. Its callbacks run on the
// JavaScript event loop: they move the sheet's inline height directly
// (nothing for go-app to render per pointer move) and hand only the final
// snap point to the UI goroutine.
type sheetDrag struct {
	active bool
	moved  bool
	// dragged is set when a drag ended, so the click that follows the
	// pointerup does not step the sheet as well.
	dragged bool
	startY  float64
	startH  float64
	el      app.Value
}

// listenSheet wires the pointer events of the sheet's handle (delegated on
// the document, so the handle can re-render freely).
func (c *Live) listenSheet() []func() {
	doc := app.Window().Get("document")
	d := &c.drag
	down := listen(doc, "pointerdown", func(ev app.Value) {
		handle := ev.Get("target").Call("closest", ".sheet-handle")
		if !handle.Truthy() {
			return
		}
		side := handle.Call("closest", ".side")
		if !side.Truthy() {
			return
		}
		// A new press: a drag that ended without its click (the
		// pointer left the handle) must not swallow this one's.
		d.active, d.moved, d.dragged, d.el = true, false, false, side
		d.startY = ev.Get("clientY").Float()
		d.startH = side.Call("getBoundingClientRect").Get("height").Float()
		handle.Call("setPointerCapture", ev.Get("pointerId"))
	})
	move := listen(doc, "pointermove", func(ev app.Value) {
		if !d.active {
			return
		}
		dy := d.startY - ev.Get("clientY").Float()
		if !d.moved && math.Abs(dy) < dragSlop {
			return
		}
		if !d.moved {
			d.moved = true
			d.el.Get("classList").Call("add", "dragging")
		}
		h := max(sheetPeekPx, min(d.startH+dy, app.Window().Get("innerHeight").Float()))
		d.el.Get("style").Set("height", fmtPx(h))
	})
	up := func(ev app.Value) {
		if !d.active {
			return
		}
		d.active = false
		if !d.moved {
			return // a tap: the click that follows steps the sheet
		}
		d.dragged = true
		el := d.el
		h := el.Call("getBoundingClientRect").Get("height").Float()
		peek, mid, full := sheetHeights()
		snap := nearestSnap(h, peek, mid, full)
		c.post(func(ctx app.Context) {
			c.sheet = snap
			el.Get("classList").Call("remove", "dragging")
			el.Get("style").Call("removeProperty", "height")
		})
	}
	upL := listen(doc, "pointerup", up)
	cancelL := listen(doc, "pointercancel", up)
	return []func(){down, move, upL, cancelL}
}

// sheetHeights measures the three snap heights in the page as it is laid
// out: mid is the space under the map, full everything under the header.
func sheetHeights() (peek, mid, full float64) {
	win := app.Window()
	vh := win.Get("innerHeight").Float()
	doc := win.Get("document")
	top := 0.0
	if hd := doc.Call("querySelector", ".top"); hd.Truthy() {
		top = hd.Call("getBoundingClientRect").Get("bottom").Float()
	}
	full = vh - top
	mid = full / 2
	if mw := doc.Call("querySelector", ".map-wrap"); mw.Truthy() {
		mid = vh - mw.Call("getBoundingClientRect").Get("bottom").Float()
	}
	return sheetPeekPx, max(sheetPeekPx, mid), full
}

// stepSheet is the handle's click: the next snap point, unless the click
// ends a drag.
func (c *Live) stepSheet(ctx app.Context, e app.Event) {
	if c.drag.dragged {
		c.drag.dragged = false
		return
	}
	c.sheet = nextSnap(c.sheet)
}

func fmtPx(v float64) string { return num(math.Round(v)) + "px" }
