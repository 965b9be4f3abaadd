// Package ui is the attackmap map as go-app components: a Mercator SVG
// world with pulsing markers and great-circle arcs, a sidebar of the newest
// incidents, live statistics and a settings panel. The same code renders on
// the server (GenerateStaticWebsite pre-renders the page shell) and runs in
// the browser as app.wasm; browser APIs are used only from OnMount on, and
// only when app.IsClient.
//
// The state lives in package live; this package only draws it. Markers and
// arcs are drawn in chunks of stable slots (see live.Model): one incident
// re-renders one chunk, never the whole layer, and nothing runs in Go per
// animation frame (the pulse and the fade are CSS animations).
package ui

import (
	"bytes"

	app "github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Paths the map is served at; "/" is the static-host entry point (the relay
// redirects it to /live itself).
var Paths = []string{"/", "/live"}

// Routes registers the map's pages with go-app. Call it once, before
// app.RunWhenOnBrowser or GenerateStaticWebsite.
func Routes() {
	for _, p := range Paths {
		app.Route(p, func() app.Composer { return &Live{} })
	}
}

// Theme colours, shared with web/attackmap.css and the world asset.
const (
	themeColour      = "#0b1220"
	backgroundColour = "#0b1220"
)

// NewHandler returns the go-app handler that describes the PWA: names,
// colours, local icons (go-app's defaults point at an outside host) and the
// version, which must change only when the build does (a new version makes
// every browser reinstall the app).
func NewHandler(version string) *app.Handler {
	return &app.Handler{
		Name:        "attackmap: live attack map",
		ShortName:   "attackmap",
		Title:       "attackmap · live attack map",
		Description: "Live map of the attacks on my hosts: markers, great-circle arcs and statistics, pushed from the relay as they happen.",
		Author:      author,
		// The picture a link preview shows: the app's icon (made
		// relative by PageMeta, like og:url).
		Image:           "/web/icon-512.png",
		Lang:            "en",
		BackgroundColor: backgroundColour,
		ThemeColor:      themeColour,
		LoadingLabel:    "loading map {progress}%",
		Version:         version,
		StartURL:        "/live",
		Icon: app.Icon{
			Default:  "/web/icon-192.png",
			Large:    "/web/icon-512.png",
			SVG:      "/web/icon.svg",
			Maskable: "/web/icon-512.png",
		},
		Styles: []string{"/web/attackmap.css", "/web/map.css"},
		// app.wasm starts downloading (and Chromium compiling) while the
		// page is parsed, instead of after the deferred app.js ran; the
		// loader's fetch then takes the preloaded response (same URL,
		// cors mode, same-origin credentials).
		// first.js draws the newest incidents as plain circles while the
		// app is not running yet (see web/first.js).
		RawHeaders: []string{
			`<link rel="preload" href="/web/app.wasm" as="fetch" crossorigin="anonymous">`,
			`<script async src="/web/first.js"></script>`,
		},
		// The offline shell: the service worker keeps these so that an
		// installed app opens without the network and shows the incidents
		// it last had (kept in localStorage).
		CacheableResources:    []string{"/live", "/web/world.svg", "/web/attackmap.css", "/web/map.css", "/web/icon.svg"},
		ServiceWorkerTemplate: serviceWorker,
	}
}

// author is the page's author meta.
const author = "attackmap"

// PageMeta fixes a page go-app rendered for a host it cannot know. go-app
// makes og:url and og:image absolute as "https://" + Handler.Domain +
// path, which without a domain is "https:///live"; the map is exported
// once and served by any relay or static host under any name, so both
// become relative to the host that serves the page ("/live",
// "/web/icon-512.png"). Call it on every exported page.
func PageMeta(page []byte) []byte {
	return bytes.ReplaceAll(page, []byte(`content="https:///`), []byte(`content="/`))
}
