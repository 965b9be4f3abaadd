// Package testkit holds the small helpers many packages' tests share: a log
// sink goroutines can write to while the test reads it, appending to a
// file the code under test is following, a clock the test moves, a small
// tmpfs for full-disk cases, free loopback addresses, and the check that
// every metric a collector describes is documented. It is imported only by
// tests.
package testkit

import (
	"bytes"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a goroutine-safe log sink: a logger (or a child process's
// output) writes to it while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// AppendFile appends data to path, creating it (mode 0640, as log files and
// journals are), and fails the test on any error.
func AppendFile(t testing.TB, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Clock is a clock the test sets and moves; its Now method stands in for
// time.Now. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// FreeAddrs returns n loopback addresses ("127.0.0.1:port") that were free
// a moment ago. They are all held open while picked, so they differ.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}
