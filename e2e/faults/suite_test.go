package faults

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// sums is the suite-wide count behind the summary line. Cases may run in
// parallel, so it is guarded by a mutex.
var sums struct {
	sync.Mutex
	cases, written, delivered, lost, duplicated int
}

// record adds one case's counts to the suite summary and logs them:
// written is how many distinct incidents the case produced (or should
// have), delivered how many of those the relay holds exactly once, lost how
// many it does not hold at all, and duplicated how many extra copies it
// holds (an incident held three times counts 1 delivered, 2 duplicated).
// Call it once per case, before asserting, so a failing case still shows
// its counts. The signature is shared by every file in the package: keep it.
func record(t testing.TB, caseName string, written, delivered, lost, duplicated int) {
	t.Helper()
	t.Logf("fault case %s: %d written, %d delivered exactly once, %d lost, %d duplicated",
		caseName, written, delivered, lost, duplicated)
	sums.Lock()
	defer sums.Unlock()
	sums.cases++
	sums.written += written
	sums.delivered += delivered
	sums.lost += lost
	sums.duplicated += duplicated
}

// summary is the one line TestMain prints at the end of the suite.
func summary() string {
	sums.Lock()
	defer sums.Unlock()
	return fmt.Sprintf("faults: %d cases, %d incidents written, %d delivered exactly once, %d lost, %d duplicated",
		sums.cases, sums.written, sums.delivered, sums.lost, sums.duplicated)
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupBinaries()
	fmt.Println(summary())
	os.Exit(code)
}
