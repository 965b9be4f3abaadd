// Package enrich adds what the sensor knows about an attacker to its
// incidents before they are pushed: the position from the local GeoIP
// databases (package geoip), the ip-api fallback for addresses those do not
// know, AbuseIPDB's score and tags for medium severity and above, the names
// of the threat lists that hold the address. The sensor's host name and
// own location (the target) are stamped once, by the detection stage, not
// here.
//
// Enrichment never blocks delivery: local lookups take microseconds, and the
// remote services share one deadline per batch (Config.Deadline) and pause
// themselves after errors, 429s and spent budgets. Whatever is not known in
// time is left out and the incident goes out as it is.
package enrich

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/enrich/abuseipdb"
	"github.com/attackmap/attackmap/sensor/enrich/ipapi"
	"github.com/attackmap/attackmap/sensor/enrich/threatlist"
	"github.com/attackmap/attackmap/sensor/geoip"
)

// Config names the enrichment sources; every one is optional.
type Config struct {
	Geo   *geoip.DB
	IPAPI *ipapi.Client
	Abuse *abuseipdb.Client
	Lists *threatlist.Set
	// Deadline bounds the remote lookups (ip-api, AbuseIPDB) of one
	// batch. 0 means 2 s: a batch waits at most that long on a slow
	// service, and the services pause themselves after a failure, so the
	// next batches do not wait at all.
	Deadline time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Enricher enriches batches of incidents. It is safe for concurrent use.
type Enricher struct {
	cfg Config
	log *slog.Logger
}

// New returns an Enricher.
func New(cfg Config) *Enricher {
	if cfg.Deadline <= 0 {
		cfg.Deadline = 2 * time.Second
	}
	e := &Enricher{cfg: cfg, log: cfg.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e
}

// public reports whether an address is worth asking a remote service about:
// private, loopback and link-local addresses are not (and must not leak).
func public(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate()
}

// Enrich fills the incidents in place and reports which it changed
// (changed[i] for ins[i]), so that the caller encodes only those again. It
// returns within Config.Deadline (or when ctx ends).
func (e *Enricher) Enrich(ctx context.Context, ins []*incident.Incident) (changed []bool) {
	changed = make([]bool, len(ins))
	var needGeo, needAbuse []netip.Addr
	addrs := make([]netip.Addr, len(ins))
	for i, in := range ins {
		ip, err := netip.ParseAddr(in.IP)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		addrs[i] = ip
		if e.cfg.Geo != nil && (!in.HasLocation() || in.Country == "") {
			if r := e.cfg.Geo.Lookup(ip); r.Found() {
				r.Fill(in)
				changed[i] = true
			}
		}
		if in.GeoSource == geoip.SourceDrill {
			// Placed by the drill's overlay: label it, so nobody takes a
			// rehearsal for a real attack.
			changed[i] = addTags(in, []string{"drill"}) || changed[i]
		}
		changed[i] = addTags(in, e.lists(in, ip)) || changed[i]
		if !public(ip) {
			continue
		}
		if e.cfg.IPAPI != nil && !in.HasLocation() {
			needGeo = append(needGeo, ip)
		}
		if e.cfg.Abuse != nil && in.AbuseScore == nil && in.Severity.Rank() >= incident.Medium.Rank() {
			needAbuse = append(needAbuse, ip)
		}
	}
	if len(needGeo) == 0 && len(needAbuse) == 0 {
		return changed
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Deadline)
	defer cancel()
	var (
		wg     sync.WaitGroup
		geo    map[netip.Addr]geoip.Result
		abuses map[netip.Addr]abuseipdb.Report
	)
	if len(needGeo) > 0 {
		wg.Go(func() { geo = e.cfg.IPAPI.Lookup(ctx, needGeo) })
	}
	if len(needAbuse) > 0 {
		wg.Go(func() { abuses = e.cfg.Abuse.CheckAll(ctx, needAbuse) })
	}
	wg.Wait()
	for i, in := range ins {
		ip := addrs[i]
		if !ip.IsValid() {
			continue
		}
		if r, ok := geo[ip]; ok && !in.HasLocation() {
			r.Fill(in)
			changed[i] = true
		}
		if r, ok := abuses[ip]; ok && in.AbuseScore == nil && in.Severity.Rank() >= incident.Medium.Rank() {
			score := r.Score
			in.AbuseScore = &score
			addTags(in, r.Tags)
			changed[i] = true
		}
	}
	return changed
}

// lists names the threat lists that hold the attacker's address. The lists
// are matched once per incident: an incident whose detector already
// matched them (c2_connect puts the names in evidence.lists) keeps that
// answer and is not looked up again.
func (e *Enricher) lists(in *incident.Incident, ip netip.Addr) []string {
	if in.Evidence != nil && len(in.Evidence.Lists) > 0 {
		return in.Evidence.Lists
	}
	if e.cfg.Lists == nil {
		return nil
	}
	return e.cfg.Lists.Match(ip)
}

// addTags adds tags that are not there yet, up to incident.MaxTags, and
// reports whether it added any.
func addTags(in *incident.Incident, tags []string) (added bool) {
	for _, t := range tags {
		if len(in.Tags) >= incident.MaxTags {
			return added
		}
		if !slices.Contains(in.Tags, t) {
			in.Tags = append(in.Tags, t)
			added = true
		}
	}
	return added
}
