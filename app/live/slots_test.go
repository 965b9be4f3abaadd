package live

import (
	"testing"
	"time"
)

func TestSlotAllocation(t *testing.T) {
	type item struct{ at time.Time }
	t0 := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
	var (
		s       slots
		items   []item
		evicted []int
	)
	next := func() int {
		return alloc(&s, &items, 3, 2, func(it *item) time.Time { return it.at }, func(slot int) {
			evicted = append(evicted, slot)
			items[slot] = item{}
			s.release(slot)
			s.release(0) // an eviction may free other slots too
		})
	}
	for i := range 3 {
		if got := next(); got != i {
			t.Fatalf("slot %d while growing, want %d", got, i)
		}
		items[i].at = t0.Add(time.Duration(3-i) * time.Minute) // slot 2 is the oldest
	}
	if len(s.gen) != 2 {
		t.Errorf("%d chunk generations for 3 slots of chunk 2, want 2", len(s.gen))
	}
	t.Run("evicts the slot updated longest ago when full", func(t *testing.T) {
		if got := next(); got != 2 || len(evicted) != 1 || evicted[0] != 2 {
			t.Fatalf("slot %d, evicted %v; want 2 evicted and reused", got, evicted)
		}
		if len(s.free) != 1 || s.free[0] != 0 {
			t.Fatalf("free %v, want only the other slot the eviction freed", s.free)
		}
	})
	t.Run("reuses a freed slot before anything else", func(t *testing.T) {
		if got := next(); got != 0 || len(evicted) != 1 || len(items) != 3 {
			t.Fatalf("slot %d, evicted %v, %d items", got, evicted, len(items))
		}
	})
}
