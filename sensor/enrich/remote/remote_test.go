package remote

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestUncached(t *testing.T) {
	a, b, c := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("2001:db8::3")
	mapped := netip.AddrFrom16(a.As16())
	tests := []struct {
		name     string
		ips      []netip.Addr
		cached   []netip.Addr
		wantTodo []netip.Addr
		wantHits []netip.Addr
	}{
		{"yields each uncached address once, in order", []netip.Addr{b, a, b, c, a}, nil, []netip.Addr{b, a, c}, nil},
		{"unmaps IPv4-mapped addresses before deduplicating", []netip.Addr{mapped, a}, nil, []netip.Addr{a}, nil},
		{"skips invalid addresses", []netip.Addr{{}, a}, nil, []netip.Addr{a}, nil},
		{"answers cached addresses through hit", []netip.Addr{a, b, a, c}, []netip.Addr{a}, []netip.Addr{b, c}, []netip.Addr{a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := New[int](Options{Name: "test"})
			for _, ip := range tt.cached {
				base.Cache.Put(ip, 7)
			}
			var hits []netip.Addr
			todo := slices.Collect(base.Uncached(tt.ips, func(ip netip.Addr, v int) {
				if v != 7 {
					t.Errorf("hit %v with %d, want the cached 7", ip, v)
				}
				hits = append(hits, ip)
			}))
			if !slices.Equal(todo, tt.wantTodo) {
				t.Errorf("uncached = %v, want %v", todo, tt.wantTodo)
			}
			if !slices.Equal(hits, tt.wantHits) {
				t.Errorf("hits = %v, want %v", hits, tt.wantHits)
			}
		})
	}
}

func TestUncachedStopsWhenTheLoopBreaks(t *testing.T) {
	base := New[int](Options{})
	a, b := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	base.Cache.Put(b, 1)
	hits := 0
	for range base.Uncached([]netip.Addr{a, b}, func(netip.Addr, int) { hits++ }) {
		break
	}
	if hits != 0 {
		t.Errorf("the cache answered %d addresses after the loop stopped", hits)
	}
}

func TestNewFillsDefaults(t *testing.T) {
	base := New[int](Options{})
	if base.Timeout != 3*time.Second || base.HTTP == nil || base.HTTP.Timeout != 3*time.Second || base.Log == nil || base.Now == nil {
		t.Errorf("defaults not filled in: %+v", base)
	}
	if err := base.Fail(errTest, 0); err != errTest || !base.Quiet.Active() {
		t.Errorf("Fail = %v, quiet %v; want the error back and a pause", err, base.Quiet.Active())
	}
}

var errTest = testError("boom")

type testError string

func (e testError) Error() string { return string(e) }
