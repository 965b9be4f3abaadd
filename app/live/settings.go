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

// RelayChoice is what the page does with a ?relay= link and the saved
// setting.
type RelayChoice struct {
	// Use is the relay to watch now: the saved one ("" is the page's own
	// origin). A link never replaces it by itself.
	Use string
	// Ask is a ?relay= that differs from Use: the page asks "Watch
	// incidents from Ask?" and switches (and saves it) only on a yes.
	// Without the question, one visit to a link would point the plain
	// page at someone else's relay for good, showing its incidents under
	// this origin and telling it of every later visit.
	Ask string
	// Err says why ?relay= was refused ("" when absent or valid).
	Err string
}

// ChooseRelay decides between a ?relay= value (query, "" when absent) and
// the saved setting (saved; an invalid saved value counts as "").
func ChooseRelay(query, saved string) RelayChoice {
	use, err := NormalizeRelay(saved)
	if err != nil {
		use = ""
	}
	c := RelayChoice{Use: use}
	if strings.TrimSpace(query) == "" {
		return c
	}
	q, err := NormalizeRelay(query)
	switch {
	case err != nil:
		c.Err = err.Error()
	case q != use:
		c.Ask = q
	}
	return c
}

// RelayLabel names the relay being watched for the header, or "" when it
// is the page's own origin (origin as in location.origin,
// "https://map.example.org"), where nothing needs saying.
func RelayLabel(relay, origin string) string {
	if relay == "" || strings.EqualFold(relay, strings.TrimRight(origin, "/")) {
		return ""
	}
	return relay
}
