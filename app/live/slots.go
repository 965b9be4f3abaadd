package live

import (
	"slices"
	"time"
)

// slots is the bookkeeping of one layer of stable slots (markers or arcs):
// the slots freed for reuse and a generation per chunk of slots, which the
// UI compares to re-render only the chunks that changed.
type slots struct {
	free []int
	gen  []uint64
}

// release makes slot free for reuse; the caller has emptied it.
func (s *slots) release(slot int) { s.free = append(s.free, slot) }

// alloc returns a free slot of items: a freed one first (lowest reuse
// cost: its element already exists in the page), else a new one at the end
// while there are fewer than max, else the slot updated longest ago, which
// evict empties (detaching its incidents) before it is handed out. chunk
// is how many slots share one generation.
func alloc[T any](s *slots, items *[]T, max, chunk int, updated func(*T) time.Time, evict func(slot int)) int {
	if n := len(s.free); n > 0 {
		slot := s.free[n-1]
		s.free = s.free[:n-1]
		return slot
	}
	if len(*items) < max {
		var empty T
		*items = append(*items, empty)
		if len(*items) > len(s.gen)*chunk {
			s.gen = append(s.gen, 0)
		}
		return len(*items) - 1
	}
	oldest := 0
	for i := range *items {
		if updated(&(*items)[i]).Before(updated(&(*items)[oldest])) {
			oldest = i
		}
	}
	evict(oldest)
	// Eviction released the slot (and maybe others, such as the arcs of
	// an evicted marker): take this one back out of the free list.
	if i := slices.Index(s.free, oldest); i >= 0 {
		s.free = slices.Delete(s.free, i, i+1)
	}
	return oldest
}
