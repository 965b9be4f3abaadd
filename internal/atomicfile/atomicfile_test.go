package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReplacesTheFileAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cursor.json")
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := Write(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Fatalf("content %q, %v; want %q", b, err, content)
		}
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(ents))
	}
}

func TestWriteFailsWithoutTouchingTheOldContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	if err := Write(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	// A missing directory: the temporary file cannot be created.
	if err := Write(filepath.Join(dir, "missing", "x"), []byte("new"), 0o640); err == nil ||
		!strings.HasPrefix(err.Error(), "atomicfile: writing ") {
		t.Fatalf("err = %v, want a prefixed error", err)
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o750)
	os.WriteFile(filepath.Join(sub, "keep"), nil, 0o640)
	if err := Write(sub, []byte("new"), 0o640); err == nil {
		t.Fatal("replacing a non-empty directory succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("old content changed: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
}
