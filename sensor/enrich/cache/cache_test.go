package cache

import (
	"testing"
	"time"
)

func TestExpiresAfterTheTTL(t *testing.T) {
	now := time.Unix(0, 0)
	c := New[string, int](10, 24*time.Hour, func() time.Time { return now })
	c.Put("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get = %v, %v", v, ok)
	}
	now = now.Add(24*time.Hour - time.Second)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("expired early")
	}
	now = now.Add(time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("still there after 24 h")
	}
}

func TestStaysWithinItsBound(t *testing.T) {
	now := time.Unix(0, 0)
	c := New[int, int](100, time.Hour, func() time.Time { return now })
	for i := range 10_000 {
		c.Put(i, i)
		if c.Len() > 100 {
			t.Fatalf("%d entries after %d puts", c.Len(), i+1)
		}
	}
	// Expired entries go first.
	now = now.Add(2 * time.Hour)
	c.Put(-1, -1)
	if _, ok := c.Get(-1); !ok {
		t.Fatal("newest entry missing")
	}
}
