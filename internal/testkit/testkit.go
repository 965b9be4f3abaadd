// Package testkit holds the small helpers many packages' tests share: a log
// sink goroutines can write to while the test reads it, and appending to a
// file the code under test is following. It is imported only by tests.
package testkit

import (
	"bytes"
	"os"
	"sync"
	"testing"
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
