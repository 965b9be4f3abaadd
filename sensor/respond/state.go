package respond

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/attackmap/attackmap/internal/atomicfile"
)

// StateFile is the name of the responder's state under the data directory.
const StateFile = "response-state.json"

// maxStateBytes caps the state file read back: 100,000 entries and twice
// as many offenders at ~150 bytes each stay under 64 MiB.
const maxStateBytes = 64 << 20

// state is what survives a restart: the blocks in place and the addresses
// blocked before (for the TTL ladder).
type state struct {
	Version   int           `json:"version"`
	Backend   string        `json:"backend"`
	Entries   []*stateEntry `json:"entries"`
	Offenders []*offender   `json:"offenders"`
	entries   map[netip.Addr]*stateEntry
	offenders map[netip.Addr]*offender
}

// stateEntry is one block in place.
type stateEntry struct {
	Addr     netip.Addr `json:"addr"`
	Added    time.Time  `json:"added"`
	Expires  time.Time  `json:"expires"`
	TTL      Duration   `json:"ttl"`
	Incident string     `json:"incident,omitempty"`
	// Source is the detector that asked for the block, or "manual".
	Source string `json:"source,omitempty"`
}

// offender remembers how often an address was blocked.
type offender struct {
	Addr    netip.Addr `json:"addr"`
	Strikes int        `json:"strikes"`
	Last    time.Time  `json:"last"`
}

func newState(backend string) *state {
	return &state{Version: 1, Backend: backend,
		entries: map[netip.Addr]*stateEntry{}, offenders: map[netip.Addr]*offender{}}
}

// loadState reads path; a missing file is an empty state.
func loadState(path, backend string) (*state, error) {
	s := newState(backend)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("response: reading state: %w", err)
	}
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("response: state %s is %d bytes, over the %d byte limit", path, len(data), maxStateBytes)
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("response: state %s: %w", path, err)
	}
	for _, e := range s.Entries {
		if e != nil && e.Addr.IsValid() {
			e.Addr = e.Addr.Unmap().WithZone("")
			s.entries[e.Addr] = e
		}
	}
	for _, o := range s.Offenders {
		if o != nil && o.Addr.IsValid() {
			o.Addr = o.Addr.Unmap().WithZone("")
			s.offenders[o.Addr] = o
		}
	}
	s.Entries, s.Offenders = nil, nil
	return s, nil
}

// save writes the state atomically, entries sorted so that two saves of
// the same state are the same bytes.
func (s *state) save(path string) error {
	out := state{Version: 1, Backend: s.Backend}
	for _, e := range s.entries {
		out.Entries = append(out.Entries, e)
	}
	for _, o := range s.offenders {
		out.Offenders = append(out.Offenders, o)
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].Addr.Less(out.Entries[j].Addr) })
	sort.Slice(out.Offenders, func(i, j int) bool { return out.Offenders[i].Addr.Less(out.Offenders[j].Addr) })
	data, err := json.MarshalIndent(&out, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

// strikes is how often addr was blocked within window before now.
func (s *state) strikes(addr netip.Addr, now time.Time, window time.Duration) int {
	o := s.offenders[addr]
	if o == nil || now.Sub(o.Last) > window {
		return 0
	}
	return o.Strikes
}

// strike records a block of addr.
func (s *state) strike(addr netip.Addr, now time.Time, window time.Duration, limit int) {
	o := s.offenders[addr]
	if o == nil || now.Sub(o.Last) > window {
		if o == nil {
			s.pruneOffenders(now, window, limit)
		}
		o = &offender{Addr: addr}
		s.offenders[addr] = o
	}
	o.Strikes++
	o.Last = now
}

// pruneOffenders forgets offenders past the window and, when there are
// still limit or more, the oldest ones: the ladder's memory is bounded like
// everything an attacker can grow.
func (s *state) pruneOffenders(now time.Time, window time.Duration, limit int) {
	if len(s.offenders) < limit {
		return
	}
	for a, o := range s.offenders {
		if now.Sub(o.Last) > window {
			delete(s.offenders, a)
		}
	}
	if len(s.offenders) < limit {
		return
	}
	all := make([]*offender, 0, len(s.offenders))
	for _, o := range s.offenders {
		all = append(all, o)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Last.Before(all[j].Last) })
	for _, o := range all[:len(all)-limit+1] {
		if _, blocked := s.entries[o.Addr]; !blocked {
			delete(s.offenders, o.Addr)
		}
	}
}
