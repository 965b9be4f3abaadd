package webrule

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attackmap/attackmap/sensor/logparse"
)

// readAccessLog parses an access log in testdata into requests, failing
// on a line the parser cannot read.
func readAccessLog(t testing.TB, name string) ([]string, []Request) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := logparse.NewAccess(logparse.Options{})
	var lines []string
	var reqs []Request
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		ev, ok := p.Line(l)
		if !ok {
			t.Fatalf("%s: cannot parse %q", name, l)
		}
		lines = append(lines, l)
		reqs = append(reqs, Request{Method: ev.Method, Path: ev.Path, Query: ev.Query, UA: ev.UA,
			Version: ev.HTTPVersion, Status: ev.Status, User: ev.User})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines, reqs
}

// TestBenignTrafficRaisesNothing replays ordinary browsing, API clients,
// crawlers and a WordPress admin at work: no rule may fire.
func TestBenignTrafficRaisesNothing(t *testing.T) {
	lines, reqs := readAccessLog(t, "benign.log")
	s := Default()
	for i := range reqs {
		if hits := s.Match(&reqs[i], nil); len(hits) > 0 {
			t.Errorf("%s\n\thits %v", lines[i], ids(hits))
		}
	}
}

// TestAttackTrafficIsRecognised replays requests of real tools (gobuster,
// ffuf, wfuzz, WhatWeb, sqlmap, dirb, wapiti, recorded against a local
// nginx) and of exploits seen in the wild: every line hits a rule. It
// also reports how many hit on their payload alone, with the user agent
// replaced by a browser's.
func TestAttackTrafficIsRecognised(t *testing.T) {
	lines, reqs := readAccessLog(t, "attacks.log")
	s := Default()
	byCategory := map[string]int{}
	payload := 0
	for i := range reqs {
		hits := s.Match(&reqs[i], nil)
		if len(hits) == 0 {
			t.Errorf("no rule for %s", lines[i])
			continue
		}
		for _, h := range hits {
			byCategory[h.Rule.Category]++
		}
		r := reqs[i]
		r.UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
		if slices.ContainsFunc(s.Match(&r, nil), func(h Hit) bool { return h.Rule.Category != CategoryScannerUA }) {
			payload++
		}
	}
	t.Logf("%d attack lines; %d recognised by their payload alone; hits by category %v", len(reqs), payload, byCategory)
}
