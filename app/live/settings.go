package live

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxRelayURL caps the relay setting's length; a real one is short.
const MaxRelayURL = 512

// NormalizeRelay checks a relay URL typed into the settings or given as
// ?relay=. Empty means the page's own origin. Otherwise it must be an
// absolute http or https URL without credentials, query or fragment; the
// result has no trailing slash so endpoint paths can be appended.
func NormalizeRelay(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", nil
	}
	if len(s) > MaxRelayURL {
		return "", fmt.Errorf("relay URL: %d bytes, over the %d byte limit", len(s), MaxRelayURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("relay URL: not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("relay URL: must start with http:// or https://")
	case u.Host == "" || u.Hostname() == "":
		return "", errors.New("relay URL: no host")
	case u.User != nil:
		return "", errors.New("relay URL: must not contain a user name or password")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("relay URL: must not have a query or fragment")
	case u.Opaque != "":
		return "", errors.New("relay URL: not a URL")
	}
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return "", errors.New("relay URL: contains spaces or control characters")
		}
	}
	for _, r := range u.Host {
		// Host names, IPv4, [IPv6] and a port: url.Parse lets more through
		// (quotes, for one), which no relay host needs.
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]_", r)) {
			return "", fmt.Errorf("relay URL: %q is not allowed in a host name", r)
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// Endpoint joins a normalized relay base ("" for the same origin) and a
// path such as "/api/live-feed".
func Endpoint(base, path string) string { return base + path }
