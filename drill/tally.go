package drill

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// tally counts the log lines written per attacker address and remembers when
// the last one was written, so an attack can wait until its last line is on
// disk and report that moment (the end-to-end test measures latency from it).
type tally struct {
	mu      sync.Mutex
	by      map[netip.Addr]*addrTally
	changed chan struct{} // closed and replaced on every record: wakes waiters
}

// addrTally is what was written for one address.
type addrTally struct {
	Lines int
	Last  time.Time
	Marks map[string]int // classified lines: "failed", "closed", "request"
}

func newTally() *tally {
	return &tally{by: make(map[netip.Addr]*addrTally), changed: make(chan struct{})}
}

// record notes a line for addr written at at, classified as mark ("" for
// none).
func (t *tally) record(addr netip.Addr, mark string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.by[addr]
	if a == nil {
		a = &addrTally{Marks: make(map[string]int)}
		t.by[addr] = a
	}
	a.Lines++
	a.Last = at
	if mark != "" {
		a.Marks[mark]++
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// get returns a copy of what was recorded for addr.
func (t *tally) get(addr netip.Addr) addrTally {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.copyLocked(addr)
}

func (t *tally) copyLocked(addr netip.Addr) addrTally {
	a := t.by[addr]
	if a == nil {
		return addrTally{Marks: map[string]int{}}
	}
	c := *a
	c.Marks = make(map[string]int, len(a.Marks))
	for k, v := range a.Marks {
		c.Marks[k] = v
	}
	return c
}

// wait blocks until done reports true for addr's tally or ctx ends; it
// returns the last tally seen and ctx's error in the second case.
func (t *tally) wait(ctx context.Context, addr netip.Addr, done func(addrTally) bool) (addrTally, error) {
	for {
		t.mu.Lock()
		a, ch := t.copyLocked(addr), t.changed
		t.mu.Unlock()
		if done(a) {
			return a, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return a, ctx.Err()
		}
	}
}
