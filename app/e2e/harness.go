// Package e2e drives the real map in Debian's chromium against a real
// relay: it builds app.wasm, exports the site, serves it through
// relay.Config.Site and pushes incidents with relay.Publish. The browser
// tests (e2e_test.go) and the bench-app program share it.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/attackmap/attackmap/app/export"
	"github.com/attackmap/attackmap/app/geo"
	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/static"
)

// Chromium is Debian's browser, installed by .ci/run.
const Chromium = "/usr/bin/chromium"

// Root finds the module root (the directory holding go.mod) from the
// working directory up.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("e2e: no go.mod above the working directory")
		}
		dir = parent
	}
}

// BuildWasm compiles the app for js/wasm the way `make wasm` does, into
// out. Go's build cache makes a rebuild of unchanged code a link step.
func BuildWasm(root, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./app/cmd/wasm")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("e2e: building app.wasm: %v\n%s", err, b)
	}
	return nil
}

// Site builds app.wasm from the current source and exports the site into
// dir (brotli skipped unless withBrotli: gzip is enough for loopback and
// much faster to produce).
func Site(root, dir string, withBrotli bool) (string, error) {
	wasm := filepath.Join(dir, "build", "app.wasm")
	if err := BuildWasm(root, wasm); err != nil {
		return "", err
	}
	q := -1
	if withBrotli {
		q = 11
	}
	site := filepath.Join(dir, "site")
	_, err := export.Export(export.Options{Dir: site, Web: filepath.Join(root, "web"), Wasm: wasm, BrotliQuality: q})
	return site, err
}

// Server is a real relay serving an exported site on a loopback listener
// whose connections can be cut from the server side.
type Server struct {
	URL   string
	Relay *relay.Relay
	srv   *http.Server
	ln    *trackingListener
	once  sync.Once
}

// Serve starts a relay with the site in dir (in memory: no data dir).
func Serve(dir string) (*Server, error) { return ServeConfig(dir, relay.Config{}) }

// ServeConfig starts a relay with cfg, serving the site in dir ("": no
// site, a relay on its own, as a map elsewhere would watch it). A zero
// Heartbeat is 2 s, so tests see keep-alives quickly.
func ServeConfig(dir string, cfg relay.Config) (*Server, error) {
	if dir != "" {
		site, err := static.New(os.DirFS(dir))
		if err != nil {
			return nil, err
		}
		cfg.Site = site
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	r, err := relay.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Close()
		return nil, err
	}
	tl := &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	s := &Server{URL: "http://" + ln.Addr().String(), Relay: r, ln: tl,
		srv: &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	go s.srv.Serve(tl)
	return s, nil
}

// Close stops the server and the relay; later calls do nothing (a test
// may cut the relay off early and still close it when it ends).
func (s *Server) Close() {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.ln.closeAll()
		_ = s.srv.Shutdown(ctx)
		s.Relay.Close()
	})
}

// Publish pushes incidents through the relay's in-process ingest, as a
// sensor host named "web-1" in Frankfurt (the arcs' target).
func (s *Server) Publish(ins ...incident.Incident) error {
	raw := make([]json.RawMessage, len(ins))
	for i := range ins {
		b, err := incident.Marshal(&ins[i])
		if err != nil {
			return err
		}
		raw[i] = b
	}
	ack := s.Relay.Publish(relay.Host{Name: "web-1", Target: &Target}, raw)
	if len(ack.Rejected) > 0 {
		return fmt.Errorf("e2e: relay rejected %+v", ack.Rejected)
	}
	return nil
}

// Target is where the test sensor host is.
var Target = incident.Location{Lat: 50.11, Lon: 8.68, Country: "DE"}

type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) closeAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.conns)
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
	return n
}

// Browser starts headless chromium with a fresh profile in profileDir and
// a fixed window size; cancel stops it.
func Browser(ctx context.Context, profileDir string, w, h int) (context.Context, context.CancelFunc) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profileDir),
		chromedp.WindowSize(w, h),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Keep timers and animations running at full rate in headless mode.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	return bctx, func() {
		// Close the browser gracefully, then wait until the process (and
		// its children writing into the profile) is gone.
		_ = chromedp.Cancel(bctx)
		cancelBrowser()
		cancelAlloc()
		if c := chromedp.FromContext(bctx); c != nil && c.Allocator != nil {
			c.Allocator.Wait()
		}
	}
}

// Incident builds a valid incident at lat/lon.
func Incident(id, ip string, sev incident.Severity, lat, lon float64, country string, ts time.Time) incident.Incident {
	in := incident.Incident{ID: id, Source: "ssh_bruteforce", Severity: sev, IP: ip, Country: country,
		TS: ts, FirstSeen: ts.Add(-time.Minute), LastSeen: ts, Count: 6, Action: "logged",
		Title: "SSH brute force", Summary: "6 failed logins in 60 s"}
	in.SetLocation(lat, lon)
	return in
}

// ScreenPoint maps map units to the page coordinates of an SVG of the given
// client rectangle, with the map's viewBox and preserveAspectRatio
// "xMidYMid meet": the expectation the browser test checks circles
// against, computed independently of the browser's own transforms.
func ScreenPoint(left, top, width, height, x, y float64) (float64, float64) {
	vx, vy, vw, vh := geo.ViewBox()
	s := math.Min(width/vw, height/vh)
	ox := left + (width-vw*s)/2
	oy := top + (height-vh*s)/2
	return ox + (x-vx)*s, oy + (y-vy)*s
}
