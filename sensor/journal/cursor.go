package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/attackmap/attackmap/internal/atomicfile"
	"github.com/attackmap/attackmap/internal/jsonl"
)

// Position is a place in the journal: a file name (not a path), the byte
// offset just after the last consumed line, and the file's inode so that a
// replaced file (same name, new inode) is noticed across restarts.
type Position struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	Inode  uint64 `json:"inode,omitempty"`
}

// ErrBadCursor marks a cursor file whose content is not a cursor.
var ErrBadCursor = errors.New("journal: bad cursor file")

// maxCursorBytes caps a cursor file: a real one is under 100 bytes, so
// anything bigger is not ours and is refused rather than read whole.
const maxCursorBytes = 4 << 10

// ParseCursor decodes a cursor file's content. prefix is the journal prefix
// the file name must belong to.
func ParseCursor(data []byte, prefix string) (Position, error) {
	var p Position
	if len(data) > maxCursorBytes {
		return p, fmt.Errorf("journal: cursor of %d bytes, over the %d byte limit", len(data), maxCursorBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Position{}, fmt.Errorf("journal: cursor: %w", err)
	}
	if dec.More() {
		return Position{}, errors.New("journal: cursor: trailing data after the object")
	}
	if _, ok := jsonl.ParseFileName(prefix, p.File); !ok || filepath.Base(p.File) != p.File {
		return Position{}, fmt.Errorf("journal: cursor: %s is not a %s journal file name", shortQuote(p.File), prefix)
	}
	if p.Offset < 0 {
		return Position{}, fmt.Errorf("journal: cursor: negative offset %d", p.Offset)
	}
	return p, nil
}

// shortQuote quotes s for an error message, cut so that a hostile cursor
// file cannot make the message long.
func shortQuote(s string) string {
	if len(s) > 80 {
		s = s[:80]
	}
	return strconv.Quote(s)
}

// LoadCursor reads the cursor at path. A missing file gives the zero
// Position and no error: the reader starts at the oldest journal file.
func LoadCursor(path, prefix string) (Position, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("journal: opening cursor: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxCursorBytes+1)
	n, err := f.Read(buf)
	if errors.Is(err, io.EOF) && n == 0 {
		// An empty file is a damaged cursor, not a reason to stop.
		return Position{}, fmt.Errorf("%w %s: empty", ErrBadCursor, path)
	}
	if err != nil && n == 0 {
		return Position{}, fmt.Errorf("journal: reading cursor %s: %w", path, err)
	}
	p, err := ParseCursor(buf[:n], prefix)
	if err != nil {
		// One prefix: "journal: bad cursor file PATH: invalid character...".
		why := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "journal: "), "cursor: ")
		return Position{}, fmt.Errorf("%w %s: %s", ErrBadCursor, path, why)
	}
	return p, nil
}

// SaveCursor stores p at path atomically: write a temporary file next to it,
// fsync it, rename it over path and fsync the directory, so a crash at any
// moment leaves either the old or the new cursor, never a torn one.
func SaveCursor(path string, p Position) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("journal: encoding cursor: %w", err)
	}
	return atomicfile.Write(path, append(b, '\n'), 0o640)
}
