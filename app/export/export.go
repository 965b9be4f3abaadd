// Package export writes the map as a static website: go-app's
// GenerateStaticWebsite for the pages and scripts, plus what it leaves out
// (web/ and app.wasm, raw and precompressed). The result, static/, is
// deployable to any static host, and package static embeds it into the
// relay.
package export

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/ui"
)

// Options say what to export where.
type Options struct {
	// Dir receives the site (static/).
	Dir string
	// Web is the source of the static resources (web/); app.wasm files in
	// it are not copied: Wasm is.
	Web string
	// Wasm is the built app (web/app.wasm).
	Wasm string
	// Version names the build for go-app's service worker; empty derives
	// it from the content (app.wasm and web/), so an unchanged build keeps
	// its version and browsers do not reinstall the app for nothing.
	Version string
	// BrotliQuality is the app.wasm.br quality, 0-11 (default 11: the
	// file is compressed once per build and downloaded by every visitor).
	// Negative skips the brotli file (tests, where speed matters more).
	BrotliQuality int
}

// Placeholder is committed in static/web so that the embed pattern for the
// compressed wasm always matches a file, built or not.
const Placeholder = "app.wasm.txt"

const placeholderText = "app.wasm, app.wasm.br and app.wasm.gz are build outputs: run `make static` to build them. They are not committed.\n"

// Export writes the site and returns its version.
func Export(opt Options) (string, error) {
	if opt.Dir == "" || opt.Web == "" || opt.Wasm == "" {
		return "", errors.New("export: need Dir, Web and Wasm")
	}
	if opt.BrotliQuality == 0 {
		opt.BrotliQuality = brotli.BestCompression
	}
	wasm, err := os.ReadFile(opt.Wasm)
	if err != nil {
		return "", fmt.Errorf("export: %w (build it with make wasm)", err)
	}
	assets, err := readAssets(opt.Web)
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	version := opt.Version
	if version == "" {
		version = contentVersion(wasm, assets)
	}
	webOut := filepath.Join(opt.Dir, "web")
	if err := os.MkdirAll(webOut, 0o755); err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	for name, data := range assets {
		if err := writeFile(filepath.Join(webOut, name), data); err != nil {
			return "", err
		}
	}
	if err := writeFile(filepath.Join(webOut, Placeholder), []byte(placeholderText)); err != nil {
		return "", err
	}
	ui.Routes()
	h := ui.NewHandler(version)
	// The loader's progress counts decompressed bytes; the raw size keeps
	// it honest when app.wasm arrives compressed.
	h.WasmContentLength = strconv.Itoa(len(wasm))
	if err := app.GenerateStaticWebsite(opt.Dir, h, ui.Paths...); err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	for _, p := range ui.Paths {
		name := "index.html"
		if p != "/" {
			name = strings.TrimPrefix(p, "/") + ".html"
		}
		name = filepath.Join(opt.Dir, name)
		page, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("export: %w", err)
		}
		if err := writeFile(name, canonicalHTML(ui.PageMeta(page))); err != nil {
			return "", err
		}
	}
	if err := writeFile(filepath.Join(webOut, "app.wasm"), wasm); err != nil {
		return "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(wasm)
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("export: gzip: %w", err)
	}
	if err := writeFile(filepath.Join(webOut, "app.wasm.gz"), gz.Bytes()); err != nil {
		return "", err
	}
	br := filepath.Join(webOut, "app.wasm.br")
	if opt.BrotliQuality < 0 {
		if err := os.Remove(br); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("export: %w", err)
		}
		return version, nil
	}
	var b bytes.Buffer
	bw := brotli.NewWriterLevel(&b, opt.BrotliQuality)
	bw.Write(wasm)
	if err := bw.Close(); err != nil {
		return "", fmt.Errorf("export: brotli: %w", err)
	}
	return version, writeFile(br, b.Bytes())
}

// readAssets reads web/ (one level: the map has no asset folders) without
// the wasm build outputs.
func readAssets(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, "app.wasm") || strings.HasPrefix(name, ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out[name] = data
	}
	return out, nil
}

func contentVersion(wasm []byte, assets map[string][]byte) string {
	h := sha256.New()
	h.Write(wasm)
	names := make([]string, 0, len(assets))
	for n := range assets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", n, len(assets[n]))
		h.Write(assets[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func writeFile(name string, data []byte) error {
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
