package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCanonicalHTMLSortsAttributes(t *testing.T) {
	in := `<!doctype html>
<div id="a" class="b" hidden>
  <svg viewBox="0 0 1 1" aria-label="x \"y\"" role="img"></svg>
  text with a &lt;tag&gt; and x > y
</div>`
	want := `<!doctype html>
<div class="b" hidden id="a">
  <svg aria-label="x \"y\"" role="img" viewBox="0 0 1 1"></svg>
  text with a &lt;tag&gt; and x > y
</div>`
	if got := string(canonicalHTML([]byte(in))); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, odd := range []string{`<a href=unquoted>`, `<a x="unterminated`, `<`, `<a`, `a < b`} {
		if got := string(canonicalHTML([]byte(odd))); got != odd {
			t.Errorf("%q changed to %q", odd, got)
		}
	}
}

func TestExportWritesAStableSite(t *testing.T) {
	root := filepath.Join("..", "..")
	wasm := filepath.Join(t.TempDir(), "app.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm not really a module"), 0o644); err != nil {
		t.Fatal(err)
	}
	export := func(dir string) string {
		v, err := Export(Options{Dir: dir, Web: filepath.Join(root, "web"), Wasm: wasm, BrotliQuality: -1})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b := t.TempDir(), t.TempDir()
	va, vb := export(a), export(b)
	if va != vb || len(va) != 16 {
		t.Fatalf("versions %q %q", va, vb)
	}
	for _, name := range []string{"index.html", "live.html", "app.js", "app-worker.js", "manifest.webmanifest", "wasm_exec.js",
		"web/app.wasm", "web/app.wasm.gz", "web/world.svg", "web/attackmap.css", "web/" + Placeholder} {
		pa, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pb, _ := os.ReadFile(filepath.Join(b, name))
		if string(pa) != string(pb) {
			t.Errorf("%s differs between two exports of the same build", name)
		}
	}
	if _, err := os.Stat(filepath.Join(a, "web", "app.wasm.br")); err == nil {
		t.Error("brotli written although skipped")
	}
	live, _ := os.ReadFile(filepath.Join(a, "live.html"))
	js, _ := os.ReadFile(filepath.Join(a, "app.js"))
	worker, _ := os.ReadFile(filepath.Join(a, "app-worker.js"))
	for _, check := range []struct {
		what, in, want string
	}{
		{"page", string(live), `src="/web/world.svg"`},
		{"page", string(live), `href="/web/attackmap.css"`},
		{"app.js", string(js), va},
		{"worker", string(worker), `"/web/world.svg"`},
	} {
		if !strings.Contains(check.in, check.want) {
			t.Errorf("%s lacks %s", check.what, check.want)
		}
	}
	if strings.Contains(string(live), "githubusercontent") || strings.Contains(string(worker), "http") {
		t.Error("the site refers to an outside host")
	}
}

func FuzzCanonicalHTML(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.html")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		once := canonicalHTML(in)
		if twice := canonicalHTML(once); string(twice) != string(once) {
			t.Fatalf("not idempotent:\n%q\n%q", once, twice)
		}
	})
}
