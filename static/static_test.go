package static

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/andybalholm/brotli"
)

var wasm = bytes.Repeat([]byte("\x00asm fake module "), 4096)

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func br(b []byte) []byte {
	var out bytes.Buffer
	w := brotli.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func fakeSite(withWasm bool) fstest.MapFS {
	fs := fstest.MapFS{
		"index.html":           {Data: []byte("<!doctype html><title>index</title>")},
		"live.html":            {Data: []byte("<!doctype html><title>live</title>" + strings.Repeat(" ", 2000))},
		"app.js":               {Data: []byte("console.log(1)")},
		"app.css":              {Data: []byte("body{}")},
		"manifest.webmanifest": {Data: []byte(`{"name":"attackmap"}`)},
		"web/world.svg":        {Data: []byte("<svg/>")},
		"web/icon-192.png":     {Data: []byte("\x89PNG")},
		"web/app.wasm.txt":     {Data: []byte("placeholder")},
		"static.go":            {Data: []byte("package static")},
	}
	if withWasm {
		fs["web/app.wasm.gz"] = &fstest.MapFile{Data: gz(wasm)}
		fs["web/app.wasm.br"] = &fstest.MapFile{Data: br(wasm)}
	}
	return fs
}

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestServesPagesAndAssets(t *testing.T) {
	h, err := New(fakeSite(true))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, ctype, body string }{
		{"/live", "text/html; charset=utf-8", "<title>live</title>"},
		{"/", "text/html; charset=utf-8", "<title>index</title>"},
		{"/app.js", "text/javascript; charset=utf-8", "console.log"},
		{"/app.css", "text/css; charset=utf-8", "body"},
		{"/manifest.webmanifest", "application/manifest+json", "attackmap"},
		{"/web/world.svg", "image/svg+xml", "<svg/>"},
		{"/web/icon-192.png", "image/png", "PNG"},
	}
	for _, tt := range tests {
		rec := get(t, h, "GET", tt.path)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != tt.ctype || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: %d %q %.40q", tt.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
		if rec.Header().Get("Cache-Control") != "no-cache" || rec.Header().Get("ETag") == "" {
			t.Errorf("%s: cache headers %v", tt.path, rec.Header())
		}
	}
	if rec := get(t, h, "GET", "/live"); !strings.Contains(rec.Header().Get("Content-Security-Policy"), "wasm-unsafe-eval") {
		t.Error("the page has no CSP")
	}
	for _, p := range []string{"/static.go", "/nope", "/web/../static.go"} {
		if rec := get(t, h, "GET", p); rec.Code != 404 {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
	if rec := get(t, h, "POST", "/live"); rec.Code != 405 {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestWasmIsPrecompressedByAcceptEncoding(t *testing.T) {
	h, err := New(fakeSite(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/web/app.wasm", "/app.wasm"} {
		rec := get(t, h, "GET", path, "Accept-Encoding", "gzip, deflate, br, zstd")
		if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "br" || rec.Header().Get("Content-Type") != "application/wasm" {
			t.Fatalf("%s: %d %v", path, rec.Code, rec.Header())
		}
		if !strings.Contains(rec.Header().Get("Vary"), "Accept-Encoding") {
			t.Fatal("no Vary: Accept-Encoding")
		}
		got, _ := io.ReadAll(brotli.NewReader(rec.Body))
		if !bytes.Equal(got, wasm) {
			t.Fatal("brotli body does not decode to app.wasm")
		}
	}
	rec := get(t, h, "GET", "/web/app.wasm", "Accept-Encoding", "gzip")
	zr, err := gzip.NewReader(rec.Body)
	if err != nil || rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip: %v %v", err, rec.Header())
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, wasm) {
		t.Fatal("gzip body does not decode to app.wasm")
	}
	rec = get(t, h, "GET", "/web/app.wasm", "Accept-Encoding", "identity")
	if rec.Header().Get("Content-Encoding") != "" || !bytes.Equal(rec.Body.Bytes(), wasm) || rec.Header().Get("Content-Length") != strconv.Itoa(len(wasm)) {
		t.Fatalf("identity: %v, %d bytes", rec.Header(), rec.Body.Len())
	}
	etag := get(t, h, "GET", "/web/app.wasm", "Accept-Encoding", "br").Header().Get("ETag")
	if rec := get(t, h, "GET", "/web/app.wasm", "Accept-Encoding", "br", "If-None-Match", etag); rec.Code != 304 {
		t.Fatalf("revalidation: %d", rec.Code)
	}
	if gzTag := get(t, h, "GET", "/web/app.wasm", "Accept-Encoding", "gzip").Header().Get("ETag"); gzTag == etag {
		t.Fatal("the brotli and gzip copies share an ETag")
	}
	if rec := get(t, h, "HEAD", "/web/app.wasm", "Accept-Encoding", "br"); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestNotBuiltSaysSo(t *testing.T) {
	h, err := New(fakeSite(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/live", "/", "/web/app.wasm"} {
		rec := get(t, h, "GET", p)
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "map not built: run make static") {
			t.Errorf("%s: %d %.60q", p, rec.Code, rec.Body.String())
		}
	}
	if rec := get(t, h, "GET", "/web/world.svg"); rec.Code != 200 {
		t.Errorf("assets still serve: %d", rec.Code)
	}
}

func TestNewRefusesANonSite(t *testing.T) {
	if _, err := New(fstest.MapFS{"x.txt": {Data: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "live.html") {
		t.Fatalf("got %v", err)
	}
}

func TestEmbeddedSite(t *testing.T) {
	h := Handler()
	rec := get(t, h, "GET", "/web/world.svg", "Accept-Encoding", "gzip")
	if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("world.svg: %d %v", rec.Code, rec.Header())
	}
	rec = get(t, h, "GET", "/live")
	if Built() {
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "/app.js") {
			t.Fatalf("/live: %d", rec.Code)
		}
	} else if rec.Code != 503 {
		t.Fatalf("/live without app.wasm: %d", rec.Code)
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		header string
		br, gz bool
		want   string
	}{
		{"gzip, deflate, br", true, true, "br"},
		{"gzip, deflate, br", false, true, "gzip"},
		{"gzip", true, true, "gzip"},
		{"br;q=0, gzip", true, true, "gzip"},
		{"br;q=0.5, gzip;q=0.9", true, true, "gzip"},
		{"*", true, true, "br"},
		{"*;q=0", true, true, ""},
		{"identity", true, true, ""},
		{"", true, true, ""},
		{"GZIP;Q=1", false, true, "gzip"},
		{"x-gzip", false, true, "gzip"},
		{"br;q=abc", true, true, ""},
		{"br", false, true, ""},
	}
	for _, tt := range tests {
		if got := Negotiate(tt.header, tt.br, tt.gz); got != tt.want {
			t.Errorf("Negotiate(%q, br=%v, gz=%v) = %q, want %q", tt.header, tt.br, tt.gz, got, tt.want)
		}
	}
}

func FuzzNegotiate(f *testing.F) {
	files, _ := filepath.Glob("testdata/accept-*.txt")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := Negotiate(header, true, true)
		if got != "" && got != "br" && got != "gzip" {
			t.Fatalf("Negotiate(%q) = %q", header, got)
		}
		if Negotiate(header, false, false) != "" {
			t.Fatal("chose an encoding that does not exist")
		}
		if g := Negotiate(header, false, true); g == "br" {
			t.Fatal("chose brotli without a brotli copy")
		}
	})
}
