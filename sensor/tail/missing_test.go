package tail

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSaysPlainlyThatAFileDoesNotExist: a configured log that is not there
// is named as missing (a typo in --auth-log), once: not only, nor also,
// "polling only".
func TestSaysPlainlyThatAFileDoesNotExist(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, path, want string }{
		{"file", filepath.Join(dir, "auth.lgo"), "tail: the file does not exist: check the path"},
		{"directory", filepath.Join(dir, "nope", "auth.log"), "tail: the file does not exist, nor its directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			_, stop := follow(t, Config{Path: tc.path, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			stop()
			out := logs.String()
			if !strings.Contains(out, tc.want) || !strings.Contains(out, tc.path) {
				t.Errorf("log lacks %q and the path:\n%s", tc.want, out)
			}
			if strings.Contains(out, "polling only") {
				t.Errorf("the missing file is reported twice:\n%s", out)
			}
		})
	}
}
