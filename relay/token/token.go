// Package token manages the relay's sensor tokens. The token file holds one
// line per sensor host, "NAME SHA256-HEX [LAT LON]": the relay never stores
// a token itself, only its SHA-256, and checks a presented token by hashing
// it and comparing against every entry in constant time.
//
// Blank lines and lines starting with '#' are ignored. NAME becomes the
// incidents' "host" and LAT LON their "target".
package token

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/attackmap/attackmap/incident"
)

// Entry is one sensor host.
type Entry struct {
	Name   string
	Hash   [sha256.Size]byte
	Target *incident.Location // nil when the line has no LAT LON
}

// Set is a parsed token file.
type Set struct {
	entries []Entry
}

// maxLineBytes bounds a token file line; real lines are under 200 bytes.
const maxLineBytes = 4096

// Parse reads a token file. Errors name the line.
func Parse(r io.Reader) (*Set, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLineBytes)
	s := &Set{}
	seen := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("token: line %d: %w", n, err)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("token: line %d: name %q appears twice", n, e.Name)
		}
		seen[e.Name] = true
		s.entries = append(s.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token: reading: %w", err)
	}
	return s, nil
}

func parseLine(line string) (Entry, error) {
	var e Entry
	f := strings.Fields(line)
	if len(f) != 2 && len(f) != 4 {
		return e, fmt.Errorf("want NAME SHA256-HEX [LAT LON], got %d fields", len(f))
	}
	if err := CheckName(f[0]); err != nil {
		return e, err
	}
	e.Name = f[0]
	h, err := hex.DecodeString(f[1])
	if err != nil || len(h) != sha256.Size {
		return e, errors.New("hash: want 64 hex digits (a SHA-256)")
	}
	copy(e.Hash[:], h)
	if len(f) == 4 {
		lat, err1 := strconv.ParseFloat(f[2], 64)
		lon, err2 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil {
			return e, errors.New("LAT LON: not numbers")
		}
		if err := CheckLocation(lat, lon); err != nil {
			return e, err
		}
		e.Target = &incident.Location{Lat: lat, Lon: lon}
	}
	return e, nil
}

// CheckName accepts a host name for the token file: 1 to incident.MaxHost
// bytes of ASCII letters, digits, '.', '_' and '-'.
func CheckName(name string) error {
	if name == "" || len(name) > incident.MaxHost {
		return fmt.Errorf("name: want 1 to %d bytes", incident.MaxHost)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name: %q has characters other than letters, digits, '.', '_' and '-'", incident.CleanText(name, 40))
		}
	}
	return nil
}

// CheckLocation accepts lat in [-90,90] and lon in [-180,180].
func CheckLocation(lat, lon float64) error {
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		return fmt.Errorf("lat: %v is not between -90 and 90", lat)
	}
	if math.IsNaN(lon) || lon < -180 || lon > 180 {
		return fmt.Errorf("lon: %v is not between -180 and 180", lon)
	}
	return nil
}

// Len returns the number of entries.
func (s *Set) Len() int { return len(s.entries) }

// Lookup returns the entry whose hash matches token. It hashes token once
// and compares with every entry with crypto/subtle, without stopping at a
// match, so the time taken says nothing about which entry (if any) matched.
func (s *Set) Lookup(token string) (Entry, bool) {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range s.entries {
		if subtle.ConstantTimeCompare(h[:], s.entries[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 || token == "" {
		return Entry{}, false
	}
	return s.entries[found], true
}

// Hash returns the hex SHA-256 of token, as written in the token file.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Generate returns a new random token: 32 bytes from crypto/rand, base64url
// without padding (43 characters).
func Generate() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: generating: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Add generates a token for name, appends its line to the file at path
// (created with mode 0600 if missing) and returns the token. It refuses a
// name that is already in the file.
func Add(path, name string, target *incident.Location) (string, error) {
	if err := CheckName(name); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if target != nil {
		if err := CheckLocation(target.Lat, target.Lon); err != nil {
			return "", fmt.Errorf("token: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("token: opening %s: %w", path, err)
	}
	defer f.Close()
	old, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return "", fmt.Errorf("token: reading %s: %w", path, err)
	}
	set, err := Parse(bytes.NewReader(old))
	if err != nil {
		return "", fmt.Errorf("%w (in %s)", err, path)
	}
	for _, e := range set.entries {
		if e.Name == name {
			return "", fmt.Errorf("token: name %q is already in %s", name, path)
		}
	}
	tok, err := Generate()
	if err != nil {
		return "", err
	}
	line := name + " " + Hash(tok)
	if target != nil {
		line += " " + strconv.FormatFloat(target.Lat, 'f', -1, 64) + " " + strconv.FormatFloat(target.Lon, 'f', -1, 64)
	}
	line += "\n"
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return "", fmt.Errorf("token: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("token: syncing %s: %w", path, err)
	}
	return tok, nil
}

// List returns the entries of the token file at path, in file order.
func List(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	defer f.Close()
	set, err := Parse(io.LimitReader(f, maxFileBytes))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return set.Entries(), nil
}

// maxFileBytes bounds how much of a token file is read: 64 MiB is some
// 300,000 sensors.
const maxFileBytes = 64 << 20

// Entries returns a copy of the set's entries, in file order.
func (s *Set) Entries() []Entry { return append([]Entry(nil), s.entries...) }

// ErrNoSuchName is returned by Remove for a name the file does not hold.
var ErrNoSuchName = errors.New("no such name")

// Remove deletes the line of name from the token file at path, keeping
// every other line (comments included) as it was. The file is replaced
// atomically (a temporary file in the same directory, fsynced, renamed
// over it, with the old file's mode), so a relay watching it sees the old
// or the new version, never half of one; a relay closes the removed
// sensor's connections within a second. Run one token command at a time:
// an "add" racing a "remove" may lose its line.
func Remove(path, name string) error {
	if err := CheckName(name); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if _, err := Parse(bytes.NewReader(old)); err != nil {
		return fmt.Errorf("%w (in %s)", err, path)
	}
	var out bytes.Buffer
	found := false
	for _, line := range bytes.SplitAfter(old, []byte("\n")) {
		t := strings.TrimSpace(string(line))
		if t != "" && !strings.HasPrefix(t, "#") && strings.Fields(t)[0] == name {
			found = true
			continue
		}
		out.Write(line)
	}
	if !found {
		return fmt.Errorf("token: %w %q in %s", ErrNoSuchName, name, path)
	}
	return writeAtomic(path, out.Bytes(), st.Mode().Perm())
}

// writeAtomic replaces path with data: write a temporary file beside it,
// fsync, rename, fsync the directory.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("token: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("token: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("token: syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the rename is done either way
		d.Close()
	}
	return nil
}

// ErrUnavailable marks a token file that is missing, unreadable or
// malformed: every token is refused until it is fixed (fail closed).
var ErrUnavailable = errors.New("token file unavailable")

// File is a token file kept current while the relay runs. It is re-read
// when it changes (fsnotify on its directory, so editors that replace the
// file are seen too, and a periodic stat as a fallback where inotify is
// not available); a connection attempt also checks it. When the file is
// missing, unreadable or malformed, no token is valid (fail closed) until
// a good version appears: deleting the file revokes every token.
type File struct {
	path string

	mu       sync.Mutex
	set      *Set        // nil while the file is unusable
	info     os.FileInfo // of the version in set
	err      error       // why the file is unusable; nil when set is current
	gen      uint64      // changes whenever set or err changes
	onChange func()
}

// Open loads the token file at path. Unlike a later change, a missing or
// malformed file at start is an error: the operator sees it at once.
func Open(path string) (*File, error) {
	f := &File{path: path}
	if _, err := f.refresh(true); err != nil {
		return nil, err
	}
	return f, nil
}

// refresh re-reads the file if forced or if its identity, size or
// modification time changed. It reports whether the state changed, and
// the current error.
func (f *File) refresh(force bool) (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err == nil && !force && f.set != nil && os.SameFile(st, f.info) &&
		st.ModTime().Equal(f.info.ModTime()) && st.Size() == f.info.Size() {
		return false, nil
	}
	var set *Set
	if err == nil {
		set, err = f.read()
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		if f.err == nil || f.err.Error() != err.Error() {
			f.set, f.info, f.err = nil, nil, err
			f.gen++
			return true, err
		}
		return false, err
	}
	if f.err == nil && f.set != nil && set.equal(f.set) {
		f.info = st
		return false, nil
	}
	f.set, f.info, f.err = set, st, nil
	f.gen++
	return true, nil
}

func (f *File) read() (*Set, error) {
	r, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	defer r.Close()
	set, err := Parse(io.LimitReader(r, maxFileBytes))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, f.path)
	}
	return set, nil
}

func (s *Set) equal(o *Set) bool {
	if len(s.entries) != len(o.entries) {
		return false
	}
	for i := range s.entries {
		if !s.entries[i].Same(o.entries[i]) {
			return false
		}
	}
	return true
}

// Same reports whether e and o are the same sensor with the same token and
// location.
func (e Entry) Same(o Entry) bool {
	if e.Name != o.Name || e.Hash != o.Hash || (e.Target == nil) != (o.Target == nil) {
		return false
	}
	return e.Target == nil || *e.Target == *o.Target
}

// Lookup checks the file (a cheap stat; re-read when it changed) and
// looks token up. A non-nil error (ErrUnavailable) means the file is
// unusable and every token is refused.
func (f *File) Lookup(token string) (Entry, bool, error) {
	f.check(false)
	f.mu.Lock()
	set, err := f.set, f.err
	f.mu.Unlock()
	if err != nil {
		return Entry{}, false, err
	}
	e, ok := set.Lookup(token)
	return e, ok, nil
}

// Current reports whether e is still in the file, unchanged: false once
// its line was removed or changed, or while the file is unusable.
func (f *File) Current(e Entry) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.set == nil {
		return false
	}
	for _, c := range f.set.entries {
		if c.Name == e.Name {
			return c.Same(e)
		}
	}
	return false
}

// Err returns why the file is unusable, or nil.
func (f *File) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// check refreshes and calls the change callback when the state changed.
func (f *File) check(force bool) {
	changed, _ := f.refresh(force)
	if !changed {
		return
	}
	f.mu.Lock()
	fn := f.onChange
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// Watch keeps the file current until ctx ends, calling onChange (from
// Watch's goroutine or a Lookup's) after every change of the entries or
// of the file's usability; onChange must not block. Changes are seen at
// once through fsnotify, and at the latest after poll through a stat (the
// fallback where inotify is unavailable or its limit is reached, and for
// a directory that is itself replaced). It returns nil when ctx ends.
func (f *File) Watch(ctx context.Context, poll time.Duration, onChange func()) error {
	f.mu.Lock()
	f.onChange = onChange
	f.mu.Unlock()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := fsnotify.NewWatcher(); err == nil {
		defer w.Close()
		// The directory, not the file: an editor or "token remove"
		// replaces the file, and a watch on the old inode would go quiet.
		if err := w.Add(filepath.Dir(f.path)); err == nil {
			events, errs = w.Events, w.Errors
		}
	}
	// A change made before the watch was in place is seen now.
	f.check(false)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	name := filepath.Clean(f.path)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Clean(ev.Name) == name {
				f.check(true)
			}
		case _, ok := <-errs:
			if !ok {
				errs = nil
			}
			// An overflow or a lost watch: the poll still runs; look now.
			f.check(true)
		case <-tick.C:
			f.check(false)
		}
	}
}

// Line formats e as a token file line, "NAME SHA256-HEX [LAT LON]",
// without the newline: what Parse reads back as e.
func (e Entry) Line() string {
	line := e.Name + " " + hex.EncodeToString(e.Hash[:])
	if e.Target != nil {
		line += " " + strconv.FormatFloat(e.Target.Lat, 'f', -1, 64) + " " + strconv.FormatFloat(e.Target.Lon, 'f', -1, 64)
	}
	return line
}

// Has reports whether s holds e unchanged (same name, token and location).
func (s *Set) Has(e Entry) bool {
	if s == nil {
		return false
	}
	for _, c := range s.entries {
		if c.Name == e.Name {
			return c.Same(e)
		}
	}
	return false
}

// Snapshot returns the file's current entries, or the error that makes it
// unusable.
func (f *File) Snapshot() (*Set, error) {
	f.check(false)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set, f.err
}
