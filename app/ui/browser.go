package ui

import (
	"errors"
	"fmt"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"
)

// EventSource ready states (HTML spec).
const (
	esConnecting = 0
	esOpen       = 1
	esClosed     = 2
)

// eventSource is a typed wrapper around the browser's EventSource. Every
// listener added with On comes with a remove func that detaches it and
// releases its js.Func; Close removes whatever is left. Callbacks run on
// the JavaScript event loop: they must not block (a blocked js.Func
// deadlocks the Go runtime), so they only hand data over (see Live.post and
// Live.postIncident in live.go, bounded by maxInbox).
type eventSource struct {
	v       app.Value
	removes map[int]func()
	next    int
}

// openEventSource connects to url (same origin or CORS-allowed).
func openEventSource(url string) *eventSource {
	return &eventSource{
		v:       app.Window().Get("EventSource").New(url),
		removes: map[int]func(){},
	}
}

// On listens for events of type typ ("open", "error", "incident", ...).
func (s *eventSource) On(typ string, fn func(ev app.Value)) (remove func()) {
	f := app.FuncOf(func(this app.Value, args []app.Value) any {
		if len(args) > 0 {
			fn(args[0])
		}
		return nil
	})
	s.v.Call("addEventListener", typ, f)
	id := s.next
	s.next++
	done := false
	remove = func() {
		if done {
			return
		}
		done = true
		s.v.Call("removeEventListener", typ, f)
		f.Release()
		delete(s.removes, id)
	}
	s.removes[id] = remove
	return remove
}

// ReadyState is esConnecting, esOpen or esClosed.
func (s *eventSource) ReadyState() int { return s.v.Get("readyState").Int() }

// Close closes the connection and removes every listener.
func (s *eventSource) Close() {
	s.v.Call("close")
	for _, remove := range s.removes {
		remove()
	}
}

// fetchText GETs url with the browser's fetch and calls done with the body
// (at most max bytes) or an error. done runs on the JavaScript event loop:
// like the EventSource callbacks it must only hand the result over.
func fetchText(url string, max int, done func(body string, err error)) {
	var ok, fail, okText app.Func
	release := func() {
		for _, f := range []app.Func{ok, fail, okText} {
			if f != nil {
				f.Release()
			}
		}
	}
	fail = app.FuncOf(func(this app.Value, args []app.Value) any {
		msg := "network error"
		if len(args) > 0 && args[0].Truthy() {
			msg = args[0].Call("toString").String()
		}
		done("", errors.New(msg))
		release()
		return nil
	})
	okText = app.FuncOf(func(this app.Value, args []app.Value) any {
		body := args[0].String()
		if len(body) > max {
			done("", fmt.Errorf("%s: answer over %d bytes", url, max))
		} else {
			done(body, nil)
		}
		release()
		return nil
	})
	ok = app.FuncOf(func(this app.Value, args []app.Value) any {
		resp := args[0]
		if !resp.Get("ok").Bool() {
			done("", fmt.Errorf("%s: HTTP %d", url, resp.Get("status").Int()))
			release()
			return nil
		}
		resp.Call("text").Call("then", okText, fail)
		return nil
	})
	opts := map[string]any{"cache": "no-store", "credentials": "omit"}
	app.Window().Call("fetch", url, opts).Call("then", ok, fail)
}

// documentHidden reports whether the page is in a background tab.
func documentHidden() bool {
	return app.Window().Get("document").Get("hidden").Bool()
}

// listen adds a listener to a browser object and returns its remover.
func listen(target app.Value, typ string, fn func(ev app.Value)) (remove func()) {
	f := app.FuncOf(func(this app.Value, args []app.Value) any {
		if len(args) > 0 {
			fn(args[0])
		}
		return nil
	})
	target.Call("addEventListener", typ, f)
	return func() {
		target.Call("removeEventListener", typ, f)
		f.Release()
	}
}

// probeResult is what a probe fetch of the relay found out about a
// failed stream.
type probeResult int

const (
	probeOK          probeResult = iota // the relay answers: the stream failed for another reason
	probeHTTP                           // the relay answered with an HTTP error (status alongside)
	probeCORS                           // the relay answers, but not to this origin
	probeUnreachable                    // nothing answers at that address
	probeOffline                        // the browser is offline
)

// probe tells a CORS refusal from a dead relay, which an EventSource
// cannot (its error event carries nothing). It fetches url in "cors" mode;
// when that fails at the network level while the browser is online, a
// second fetch in "no-cors" mode goes through for a relay that answers but
// does not allow this origin (an opaque answer), and fails as well for a
// relay that does not answer at all. sameOrigin skips the second fetch:
// CORS never applies to the page's own origin. done runs on the JavaScript
// event loop and must only hand the result over.
func probe(url string, sameOrigin bool, done func(r probeResult, status int)) {
	var funcs []app.Func
	release := func() {
		for _, f := range funcs {
			f.Release()
		}
	}
	fn := func(f func(args []app.Value)) app.Func {
		g := app.FuncOf(func(this app.Value, args []app.Value) any {
			f(args)
			return nil
		})
		funcs = append(funcs, g)
		return g
	}
	finish := func(r probeResult, status int) {
		done(r, status)
		release()
	}
	opaqueOK := fn(func(args []app.Value) { finish(probeCORS, 0) })
	opaqueFail := fn(func(args []app.Value) { finish(probeUnreachable, 0) })
	ok := fn(func(args []app.Value) {
		resp := args[0]
		if resp.Get("ok").Bool() {
			finish(probeOK, resp.Get("status").Int())
			return
		}
		finish(probeHTTP, resp.Get("status").Int())
	})
	fail := fn(func(args []app.Value) {
		switch {
		case !online():
			finish(probeOffline, 0)
		case sameOrigin:
			finish(probeUnreachable, 0)
		default:
			opts := map[string]any{"mode": "no-cors", "cache": "no-store", "credentials": "omit"}
			app.Window().Call("fetch", url, opts).Call("then", opaqueOK, opaqueFail)
		}
	})
	opts := map[string]any{"mode": "cors", "cache": "no-store", "credentials": "omit"}
	app.Window().Call("fetch", url, opts).Call("then", ok, fail)
}

// online reports navigator.onLine: false means certainly offline, true
// only that some network is up.
func online() bool { return app.Window().Get("navigator").Get("onLine").Bool() }
