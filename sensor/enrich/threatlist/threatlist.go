// Package threatlist loads IP and CIDR block lists (abuse.ch Feodo Tracker,
// Emerging Threats compromised IPs, Spamhaus DROP, an operator's own list)
// from files or URLs, refreshes them on a schedule, and answers "which lists
// hold this address?" in a few map lookups. Matching incidents get the
// list names as tags, and the c2_connect detector calls Match on outbound
// destinations.
//
// Accepted formats, one entry per line: a bare address or CIDR, or a CSV /
// whitespace-separated line where the first field that parses as an address
// or CIDR is taken (quotes and an ":port" suffix are stripped). Networks
// wider than /8 (IPv4) or /16 (IPv6) are refused. Lines
// starting with '#', ';' or "//" and anything after " #" or " ;" are
// comments. Lines that hold no address are counted and skipped.
package threatlist

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Source is one list.
type Source struct {
	// Name is the list's name and the tag it puts on incidents
	// ("feodo", "et-compromised"): a-z, 0-9, '-', '_', '.', at most 32 bytes.
	Name string `json:"name"`
	// Path is a local file; URL an http(s) address. Exactly one is set.
	Path string `json:"path,omitempty"`
	URL  string `json:"url,omitempty"`
	// Refresh is how often the list is re-read: default 1 h for URLs (the
	// public feeds update a few times a day and ask not to be polled
	// harder; less than 5 min is raised to 5 min) and 1 min for files
	// (only a stat unless the file changed).
	Refresh Duration `json:"refresh,omitzero"`
}

// Duration is a time.Duration that reads "1h30m" from JSON.
type Duration time.Duration

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("threatlist: refresh: %w", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// Options configure a Set.
type Options struct {
	Sources []Source
	// HTTPClient fetches URLs; nil means a client with a 60 s timeout (a
	// few MB from a busy public server).
	HTTPClient *http.Client
	// MaxBytes caps one list; 0 means 64 MiB (the largest public lists
	// are a few MB). A bigger list is refused, keeping the previous copy.
	MaxBytes int64
	// Logger; nil discards.
	Logger *slog.Logger
}

// list is one loaded list.
type list struct {
	name  string
	addrs map[netip.Addr]struct{}
	nets  map[int]map[netip.Prefix]struct{} // by prefix length
	bits  []int                             // lengths present, for Match
	size  int
}

func (l *list) has(ip netip.Addr) bool {
	if _, ok := l.addrs[ip]; ok {
		return true
	}
	for _, b := range l.bits {
		if b > ip.BitLen() {
			continue
		}
		p, err := ip.Prefix(b)
		if err != nil {
			continue
		}
		if _, ok := l.nets[b][p]; ok {
			return true
		}
	}
	return false
}

// Set is the loaded lists. It is safe for concurrent use; Match never
// blocks on a refresh (the lists are swapped whole).
type Set struct {
	opts  Options
	log   *slog.Logger
	http  *http.Client
	lists []atomic.Pointer[list] // one slot per source; nil until loaded

	mu    sync.Mutex
	stamp []fileStamp // per source, for files
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// New checks the sources and loads the files (URLs are fetched by Run). A
// file that cannot be read is an error here, because it is a typo more
// often than not; later failures keep the previous copy.
func New(opts Options) (*Set, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 20
	}
	s := &Set{opts: opts, log: opts.Logger, http: opts.HTTPClient,
		lists: make([]atomic.Pointer[list], len(opts.Sources)), stamp: make([]fileStamp, len(opts.Sources))}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.http == nil {
		s.http = &http.Client{Timeout: 60 * time.Second}
	}
	seen := map[string]bool{}
	for i, src := range opts.Sources {
		if err := checkName(src.Name); err != nil {
			return nil, err
		}
		if seen[src.Name] {
			return nil, fmt.Errorf("threatlist: list %q named twice", src.Name)
		}
		seen[src.Name] = true
		if (src.Path == "") == (src.URL == "") {
			return nil, fmt.Errorf("threatlist: list %q needs exactly one of path and url", src.Name)
		}
		if src.URL != "" && !strings.HasPrefix(src.URL, "http://") && !strings.HasPrefix(src.URL, "https://") {
			return nil, fmt.Errorf("threatlist: list %q: url must be http(s)", src.Name)
		}
		if src.Path != "" {
			if err := s.loadFile(i, true); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func checkName(n string) error {
	if n == "" || len(n) > 32 {
		return fmt.Errorf("threatlist: list name %q must be 1 to 32 bytes", n)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("threatlist: list name %q: only a-z, 0-9, '-', '_' and '.'", n)
		}
	}
	return nil
}

// Match returns the names of the lists that hold ip, in source order, or
// nil. IPv4-mapped IPv6 addresses match IPv4 entries.
func (s *Set) Match(ip netip.Addr) []string {
	if s == nil || !ip.IsValid() {
		return nil
	}
	ip = ip.Unmap().WithZone("")
	var out []string
	for i := range s.lists {
		if l := s.lists[i].Load(); l != nil && l.has(ip) {
			out = append(out, l.name)
		}
	}
	return out
}

// Sizes returns each loaded list's entry count by name.
func (s *Set) Sizes() map[string]int {
	m := map[string]int{}
	for i := range s.lists {
		if l := s.lists[i].Load(); l != nil {
			m[l.name] = l.size
		}
	}
	return m
}

// Run fetches URL lists now and refreshes every list on its schedule until
// ctx ends.
func (s *Set) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, src := range s.opts.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every := time.Duration(src.Refresh)
			if src.URL != "" {
				if every <= 0 {
					every = time.Hour
				}
				every = max(every, 5*time.Minute)
				s.fetch(ctx, i)
			} else if every <= 0 {
				every = time.Minute
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if src.URL != "" {
					s.fetch(ctx, i)
				} else if err := s.loadFile(i, false); err != nil {
					s.log.Warn("threatlist: reload failed, keeping the previous copy", "list", src.Name, "err", err)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// Refresh reloads every list now (files unconditionally); tests and a
// SIGHUP-style reload use it.
func (s *Set) Refresh(ctx context.Context) {
	for i, src := range s.opts.Sources {
		if src.URL != "" {
			s.fetch(ctx, i)
		} else if err := s.loadFile(i, true); err != nil {
			s.log.Warn("threatlist: reload failed, keeping the previous copy", "list", src.Name, "err", err)
		}
	}
}

func (s *Set) loadFile(i int, force bool) error {
	src := s.opts.Sources[i]
	st, err := os.Stat(src.Path)
	if err != nil {
		return fmt.Errorf("threatlist: list %q: %w", src.Name, err)
	}
	stamp := fileStamp{mod: st.ModTime(), size: st.Size()}
	s.mu.Lock()
	same := s.stamp[i] == stamp
	s.mu.Unlock()
	if same && !force {
		return nil
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return fmt.Errorf("threatlist: list %q: %w", src.Name, err)
	}
	defer f.Close()
	if err := s.load(i, f); err != nil {
		return err
	}
	s.mu.Lock()
	s.stamp[i] = stamp
	s.mu.Unlock()
	return nil
}

func (s *Set) fetch(ctx context.Context, i int) {
	src := s.opts.Sources[i]
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
		if err != nil {
			return err
		}
		resp, err := s.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return s.load(i, resp.Body)
	}()
	if err != nil && ctx.Err() == nil {
		s.log.Warn("threatlist: fetch failed, keeping the previous copy", "list", src.Name, "err", err)
	}
}

// load parses r into list i and swaps it in.
func (s *Set) load(i int, r io.Reader) error {
	src := s.opts.Sources[i]
	lr := &io.LimitedReader{R: r, N: s.opts.MaxBytes + 1}
	prefixes, bad, err := Parse(lr)
	if err != nil {
		return fmt.Errorf("threatlist: list %q: %w", src.Name, err)
	}
	if lr.N <= 0 {
		return fmt.Errorf("threatlist: list %q is over %d bytes", src.Name, s.opts.MaxBytes)
	}
	l := &list{name: src.Name, addrs: map[netip.Addr]struct{}{}, nets: map[int]map[netip.Prefix]struct{}{}}
	for _, p := range prefixes {
		if p.IsSingleIP() {
			l.addrs[p.Addr()] = struct{}{}
			continue
		}
		b := p.Bits()
		if l.nets[b] == nil {
			l.nets[b] = map[netip.Prefix]struct{}{}
			l.bits = append(l.bits, b)
		}
		l.nets[b][p] = struct{}{}
	}
	l.size = len(l.addrs)
	for _, m := range l.nets {
		l.size += len(m)
	}
	s.lists[i].Store(l)
	s.log.Info("threatlist: loaded", "list", src.Name, "entries", l.size, "skipped_lines", bad)
	return nil
}

// maxLine caps a list line; real ones are under 200 bytes.
const maxLine = 4096

// Parse reads a list: it returns the prefixes (single addresses as /32 or
// /128, IPv4-mapped addresses unmapped, host bits masked) and the number of
// non-comment lines that held no address.
func Parse(r io.Reader) (prefixes []netip.Prefix, bad int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxLine), maxLine)
	for sc.Scan() {
		line := sc.Bytes()
		if p, ok, comment := parseLine(line); ok {
			prefixes = append(prefixes, p)
		} else if !comment {
			bad++
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, bad, fmt.Errorf("a line over %d bytes: not a list", maxLine)
		}
		return nil, bad, err
	}
	return prefixes, bad, nil
}

// parseLine returns the line's prefix, or comment=true for a blank or
// comment line.
func parseLine(line []byte) (p netip.Prefix, ok, comment bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' || line[0] == ';' || bytes.HasPrefix(line, []byte("//")) {
		return p, false, true
	}
	for _, sep := range []string{" #", "\t#", " ;", "\t;"} {
		if i := bytes.Index(line, []byte(sep)); i >= 0 {
			line = line[:i]
		}
	}
	fields := strings.FieldsFunc(string(line), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '|'
	})
	for _, f := range fields {
		f = strings.Trim(f, `"'`)
		if p, ok := parseEntry(f); ok {
			return p, true, false
		}
	}
	return p, false, false
}

func parseEntry(f string) (netip.Prefix, bool) {
	if strings.Contains(f, "/") {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return netip.Prefix{}, false
		}
		a := p.Addr()
		if a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		// A broken feed must not tag the whole Internet: anything wider
		// than a /8 (IPv4) or /16 (IPv6) is refused as a bad line.
		if p.Addr().Is4() && p.Bits() < 8 || p.Addr().Is6() && p.Bits() < 16 {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(f)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(f)
		if err2 != nil {
			return netip.Prefix{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}
