// Package static serves the map's exported website (`make static` writes
// it into this folder; see package app/export) for the relay: /live, the
// go-app scripts, the manifest, web/ and app.wasm, with correct content
// types, ETags, revalidating cache headers and app.wasm precompressed
// (brotli or gzip by Accept-Encoding).
//
// The pages and assets are committed and embedded; app.wasm is a build
// output, embedded only when built (compressed copies only: the raw file
// would add 8 MB to the relay for the rare client that takes neither br
// nor gzip, which gets the gzip copy decompressed on the fly instead).
// Without it the handler answers the map pages with a clear "map not
// built: run make static" page, so `go build ./...` works on a clean clone.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// The embed patterns list file types, not names, so a new icon or style
// sheet only needs the right extension. web/app.wasm.* always matches the
// committed placeholder app.wasm.txt.
//
//go:embed *.html *.js *.css *.webmanifest web/*.svg web/*.png web/*.css web/app.wasm.*
var site embed.FS

// Handler serves the embedded site.
func Handler() http.Handler {
	h, err := New(site)
	if err != nil {
		panic("static: embedded site: " + err.Error()) // the embed patterns guarantee the files
	}
	return h
}

// Built reports whether the embedded site contains app.wasm.
func Built() bool {
	_, err := fs.Stat(site, "web/app.wasm.gz")
	return err == nil
}

type file struct {
	body        []byte
	gz          []byte // gzip copy, nil when not worth it
	br          []byte // brotli copy (app.wasm only)
	contentType string
	etag        string // quoted, for the identity body
	size        int    // identity size
}

// site serves one exported site.
type server struct {
	files    map[string]*file
	hasWasm  bool
	notBuilt []byte
}

// New serves the exported site in fsys (the embedded one, or os.DirFS of
// an export directory in tests). It reads everything once.
func New(fsys fs.FS) (http.Handler, error) {
	s := &server{files: map[string]*file{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(name, ".go") || strings.HasPrefix(path.Base(name), ".") {
			return nil
		}
		if name == "web/app.wasm" || name == "web/app.wasm.br" || name == "web/app.wasm.gz" {
			return nil // assembled below
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		s.add("/"+name, data, contentType(name))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := s.files["/live.html"]; !ok {
		return nil, errors.New("static: no live.html: not an exported site")
	}
	if err := s.addWasm(fsys); err != nil {
		return nil, err
	}
	s.notBuilt = []byte(notBuiltPage)
	return s, nil
}

func (s *server) add(name string, data []byte, ctype string) *file {
	f := &file{body: data, contentType: ctype, etag: etag(data), size: len(data)}
	if compressible(ctype) && len(data) > 1024 {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(data)
		zw.Close()
		if b.Len() < len(data)*9/10 {
			f.gz = b.Bytes()
		}
	}
	s.files[name] = f
	return f
}

// addWasm loads app.wasm from its compressed copies (and the raw file when
// present, as in an export directory).
func (s *server) addWasm(fsys fs.FS) error {
	gz, gzErr := fs.ReadFile(fsys, "web/app.wasm.gz")
	raw, rawErr := fs.ReadFile(fsys, "web/app.wasm")
	if gzErr != nil && rawErr != nil {
		return nil // not built
	}
	f := &file{contentType: "application/wasm"}
	switch {
	case rawErr == nil:
		f.body, f.size = raw, len(raw)
		f.etag = etag(raw)
	default:
		if len(gz) < 4 {
			return errors.New("static: web/app.wasm.gz is truncated")
		}
		// gzip's trailer holds the uncompressed size (mod 4 GiB).
		f.size = int(binary.LittleEndian.Uint32(gz[len(gz)-4:]))
		f.etag = etag(gz)
	}
	if gzErr == nil {
		f.gz = gz
	}
	if br, err := fs.ReadFile(fsys, "web/app.wasm.br"); err == nil {
		f.br = br
	}
	s.files["/web/app.wasm"] = f
	s.hasWasm = true
	return nil
}

func etag(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".webmanifest":
		return "application/manifest+json"
	case ".wasm":
		return "application/wasm"
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "json") ||
		strings.Contains(ctype, "javascript") || ctype == "image/svg+xml" || ctype == "application/wasm"
}

// csp keeps the page to its own origin for scripts, styles and images;
// connect-src stays open because the relay URL is a setting (it may be any
// http(s) origin), and wasm needs 'wasm-unsafe-eval' to compile.
const csp = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self' http: https:; worker-src 'self'; manifest-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>attackmap: map not built</title></head>
<body style="background:#0b1220;color:#d8e1ee;font:16px system-ui,sans-serif;padding:2em">
<h1>map not built: run make static</h1>
<p>This relay was built without the map's app.wasm. Run <code>make static</code> (or <code>make build</code>, which runs it) and rebuild the relay.</p>
</body></html>
`

// ServeHTTP answers GET and HEAD for the site's paths.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch p {
	case "/", "/index.html":
		p = "/index.html"
	case "/live", "/live/", "/live.html":
		p = "/live.html"
	case "/app.wasm", "/web/app.wasm":
		p = "/web/app.wasm"
	}
	page := p == "/index.html" || p == "/live.html"
	if !s.hasWasm && (page || p == "/web/app.wasm") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method == http.MethodGet {
			w.Write(s.notBuilt)
		}
		return
	}
	f, ok := s.files[p]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	// no-cache: revalidate every time (a cheap 304 with the ETag), so a new
	// build is picked up at once; the service worker keeps the offline copy.
	h.Set("Cache-Control", "no-cache")
	if page {
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
	}
	body, tag := f.body, f.etag
	if f.gz != nil || f.br != nil {
		h.Add("Vary", "Accept-Encoding")
		switch enc := Negotiate(r.Header.Get("Accept-Encoding"), f.br != nil, f.gz != nil); enc {
		case "br":
			body, tag = f.br, f.etag[:len(f.etag)-1]+`-br"`
			h.Set("Content-Encoding", "br")
		case "gzip":
			body, tag = f.gz, f.etag[:len(f.etag)-1]+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	if body == nil { // only the gzip copy of app.wasm, for an identity client
		serveGunzip(w, r, f)
		return
	}
	h.Set("ETag", tag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// serveGunzip answers a client that accepts neither br nor gzip from the
// gzip copy.
func serveGunzip(w http.ResponseWriter, r *http.Request, f *file) {
	w.Header().Set("ETag", f.etag)
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(f.size))
	if r.Method == http.MethodHead {
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(f.gz))
	if err != nil {
		http.Error(w, "corrupt app.wasm.gz", http.StatusInternalServerError)
		return
	}
	io.Copy(w, zr)
}

// Negotiate picks "br", "gzip" or "" (identity) from an Accept-Encoding
// header, given which copies exist. It honours q-values (q=0 refuses) and
// "*"; on equal preference brotli wins, being the smaller.
func Negotiate(header string, haveBr, haveGzip bool) string {
	q := map[string]float64{}
	star := -1.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		v := 1.0
		for _, p := range strings.Split(params, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0 // a malformed weight is not an acceptance
				}
				v = f
			}
		}
		if name == "*" {
			star = v
			continue
		}
		if old, seen := q[name]; !seen || v < old {
			q[name] = v
		}
	}
	weight := func(enc string) float64 {
		if v, ok := q[enc]; ok {
			return v
		}
		if enc == "x-gzip" {
			return -1
		}
		return star
	}
	br, gz := weight("br"), weight("gzip")
	if g2 := weight("x-gzip"); g2 > gz {
		gz = g2
	}
	switch {
	case haveBr && br > 0 && (br >= gz || !haveGzip):
		return "br"
	case haveGzip && gz > 0:
		return "gzip"
	}
	return ""
}
