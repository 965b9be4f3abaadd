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
// deadlocks the Go runtime), so they only hand data over (see inbox).
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
