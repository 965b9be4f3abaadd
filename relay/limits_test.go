package relay

import (
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestClientAddrGroupsByHostAndNetwork(t *testing.T) {
	for _, tc := range []struct {
		name, remote, header string
		addr, net            string
	}{
		{"IPv4 as is", "203.0.113.9:443", "", "203.0.113.9", "203.0.113.0"},
		{"IPv6 by /64 and /48", "[2001:db8:1:2:3:4:5:6]:80", "", "2001:db8:1:2::", "2001:db8:1::"},
		{"mapped IPv4 is IPv4", "[::ffff:192.0.2.1]:80", "", "192.0.2.1", "192.0.2.0"},
		{"zone dropped", "[fe80::1%eth0]:80", "", "fe80::", "fe80::"},
		{"forwarded: last address of the last header", "10.0.0.1:1", "198.51.100.7, 2001:db8:9:8:7::1", "2001:db8:9:8::", "2001:db8:9::"},
		{"forwarded garbage: the peer", "10.0.0.1:1", "nope", "10.0.0.1", "10.0.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			hdr := ""
			if tc.header != "" {
				hdr = "X-Forwarded-For"
				req.Header.Set(hdr, tc.header)
			}
			a := clientAddr(req, hdr)
			if a.String() != tc.addr || netKey(a).String() != tc.net {
				t.Fatalf("addr %s net %s, want %s %s", a, netKey(a), tc.addr, tc.net)
			}
		})
	}
}

// FuzzClientAddr: whatever the peer address and the proxy header hold,
// the key is a valid address or the invalid one, IPv6 keys have no host
// bits below /64, and the network key contains the address key.
func FuzzClientAddr(f *testing.F) {
	f.Add("203.0.113.9:443", "")
	f.Add("10.0.0.1:1", "198.51.100.7, 2001:db8::1")
	f.Fuzz(func(t *testing.T, remote, header string) {
		req := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {header}}}
		a := clientAddr(req, "X-Forwarded-For")
		if !a.IsValid() {
			return
		}
		if a.Zone() != "" || a.Is4In6() {
			t.Fatalf("key %s keeps a zone or a mapping", a)
		}
		if a.Is6() {
			if p, _ := a.Prefix(64); p.Addr() != a {
				t.Fatalf("IPv6 key %s has host bits", a)
			}
		}
		n := netKey(a)
		bits := 48
		if a.Is4() {
			bits = 24
		}
		if !netip.PrefixFrom(n, bits).Contains(a) {
			t.Fatalf("network %s/%d does not contain %s", n, bits, a)
		}
	})
}

// Behind a proxy every connection comes from the proxy: the per-address
// cap counts requests in progress by the forwarded address instead.
func TestProxyModeCapsRequestsPerForwardedAddress(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	tr, _, _ := serveRelay(t, Config{ClientIPHeader: "X-Real-IP", MaxConnsPerAddr: 1,
		Site: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			_, _ = io.WriteString(w, "done")
		})})
	get := func(from string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, tr.url+"/slow", nil)
		req.Header.Set("X-Real-IP", from)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	first := make(chan int, 1)
	go func() { c, _ := get("198.51.100.7"); first <- c }()
	<-entered
	if code, err := get("198.51.100.7"); err != nil || code != http.StatusTooManyRequests {
		t.Fatalf("second request from one forwarded address: %d %v, want 429", code, err)
	}
	other := make(chan int, 1)
	go func() { c, _ := get("198.51.100.8"); other <- c }()
	<-entered // another forwarded address is let in
	close(release)
	if c1, c2 := <-first, <-other; c1 != 200 || c2 != 200 {
		t.Fatalf("statuses %d %d", c1, c2)
	}
	// The slot is free again once the request is done.
	if code, err := get("198.51.100.7"); err != nil || code != 200 {
		t.Fatalf("after the first finished: %d %v", code, err)
	}
}
