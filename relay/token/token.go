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
	"strconv"
	"strings"
	"sync"
	"time"

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

// File is a token file that is re-read when it changes, so `token add`
// takes effect without restarting the relay.
type File struct {
	path string

	mu      sync.Mutex
	set     *Set
	modTime time.Time
	size    int64
	err     error // last reload error, reported once
}

// Open loads the token file at path.
func Open(path string) (*File, error) {
	f := &File{path: path}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) reload() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if f.set != nil && st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return nil
	}
	r, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer r.Close()
	set, err := Parse(r)
	if err != nil {
		return fmt.Errorf("%w (in %s)", err, f.path)
	}
	f.set, f.modTime, f.size = set, st.ModTime(), st.Size()
	return nil
}

// Lookup re-reads the file if its size or modification time changed (a
// broken new version keeps the old entries and returns the error once, for
// logging) and looks token up.
func (f *File) Lookup(token string) (Entry, bool, error) {
	f.mu.Lock()
	var reported error
	if err := f.reload(); err != nil {
		if f.err == nil || f.err.Error() != err.Error() {
			reported = err
		}
		f.err = err
	} else {
		f.err = nil
	}
	set := f.set
	f.mu.Unlock()
	e, ok := set.Lookup(token)
	return e, ok, reported
}
