package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/attackmap/attackmap/incident"
)

// The relay's log is one NATS JetStream stream. By default the relay runs
// its own single-node NATS server in process (no network listener, file
// store under DataDir/nats); Config.NATSURLs joins an existing NATS cluster
// instead, and Config.NATSListen with NATSRoutes lets the embedded servers
// of several relays form a cluster of their own.
//
// Every accepted incident is one message on attackmap.incidents.<host>,
// carrying the relay's encoded incident (the bytes every subscriber gets)
// and a Nats-Msg-Id naming its version (see versionID), so a redelivery
// within the stream's de-duplication window is stored once whichever relay
// it reaches. The stream sequence number is the SSE id. Each relay reads
// the stream once with an ordered consumer into its ring (see consume.go).
const (
	// streamName is the JetStream stream every relay of a feed shares.
	streamName = "ATTACKMAP"
	// subjectPrefix is followed by the host's subject token.
	subjectPrefix = "attackmap.incidents."
	// tokenBucket is the key-value bucket of sensor tokens.
	tokenBucket = "ATTACKMAP_TOKENS"
)

// DefaultDedupWindow is how long the stream remembers the version ids it
// stored, so a copy sent again is acknowledged and dropped. A copy is sent
// again when the relay stored a batch but the sensor did not see the ack (a
// crash or a dropped socket on either side): the sensor resends it when it
// reconnects, seconds to minutes later, or, after a long outage of its
// relay, hours later. A day covers every such case and a sensor whose
// cursor was lost replaying today's journal; it costs the server about 100
// bytes per version stored in the window (some 20 MiB at 200,000 incidents
// a day). Copies still in the relay's ring are recognised at any age
// without it. The window survives restarts: the server rebuilds it from the
// stored messages.
const DefaultDedupWindow = 24 * time.Hour

// DefaultNATSStartTimeout bounds how long New waits for the stream: a
// relay of a cluster waits for a quorum of its peers to start (they are
// started at about the same time), two minutes covers a slow rolling
// start; a single relay is ready in milliseconds.
const DefaultNATSStartTimeout = 2 * time.Minute

// publishTimeout bounds the wait for JetStream's ack of one batch: a
// cluster elects a new stream leader within 4 to 9 seconds after the
// leader's node dies (its Raft election timeout), and messages sent to the
// dead leader are never acknowledged, so the relay sends them again (same
// Nats-Msg-Id: stored once) every publishAttempt until the new leader
// answers. Fifteen seconds ride out an election; past it the batch is
// refused (not acknowledged) and the sensor sends it again.
const publishTimeout = 15 * time.Second

// publishAttempt is how long one publish waits for its ack before it is
// sent again: a leader that is up acknowledges in milliseconds.
const publishAttempt = 2 * time.Second

// diskReserve is the free space the relay keeps under an embedded file
// store: a batch is refused (disk_full) when the disk has less than this
// plus twice the batch's size free. JetStream treats a write that fails
// with ENOSPC as a critical error of the stream (it stops taking writes,
// and a clustered server disables JetStream), so the relay never lets the
// store get there; 256 KiB covers the store's own index and state files.
const diskReserve = 256 << 10

// natsLog is the relay's connection to its stream.
type natsLog struct {
	ns        *server.Server // the embedded server; nil with NATSURLs
	nc        *nats.Conn
	js        jetstream.JetStream
	stream    jetstream.Stream
	kv        jetstream.KeyValue
	replicas  int
	storeDir  string // the embedded file store; "" for memory or external
	authToken string // the embedded server's client token, if it has one
	tmpDir    string // removed on close (memory-only embedded server)
	// syncOnClose: the embedded server syncs its store on an interval
	// (Config.NATSSyncInterval) and closes it without a sync, so close
	// fsyncs the store itself: what was acknowledged is on disk once
	// the relay has closed.
	syncOnClose bool
}

// natsSetup starts (or connects to) NATS and creates or updates the stream
// and the token bucket. firstSeq, when not 0, is the first sequence number
// of a stream created now (the migration continues the old numbers).
func (r *Relay) natsSetup(firstSeq uint64) (*natsLog, error) {
	cfg := &r.cfg
	l := &natsLog{}
	var opts []nats.Option
	opts = append(opts, nats.Name("attackmap-relay"),
		// Reconnect for ever: a relay outlives restarts of its NATS
		// servers, and refuses ingest while it is cut off.
		nats.MaxReconnects(-1),
		// One second between attempts to the same server: quick enough to
		// resume ingest within seconds after a node comes back.
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				r.log.Warn("relay: lost the NATS connection; ingest is refused until it is back", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			r.log.Info("relay: NATS connection back", "server", nc.ConnectedUrlRedacted())
		}),
	)
	if len(cfg.NATSURLs) > 0 {
		if cfg.NATSCreds != "" {
			opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
		}
		if cfg.NATSTLSCA != "" {
			opts = append(opts, nats.RootCAs(cfg.NATSTLSCA))
		}
		if cfg.NATSTLSCert != "" || cfg.NATSTLSKey != "" {
			opts = append(opts, nats.ClientCert(cfg.NATSTLSCert, cfg.NATSTLSKey))
		}
		nc, err := nats.Connect(strings.Join(cfg.NATSURLs, ","), opts...)
		if err != nil {
			return nil, fmt.Errorf("relay: connecting to NATS %s: %w", strings.Join(cfg.NATSURLs, ","), err)
		}
		l.nc = nc
	} else {
		sopts, err := r.serverOptions(l)
		if err != nil {
			return nil, err
		}
		ns, err := startServer(sopts, r.log)
		if err != nil {
			l.close()
			return nil, err
		}
		l.ns = ns
		if l.authToken != "" {
			opts = append(opts, nats.Token(l.authToken))
		}
		nc, err := nats.Connect("", append(opts, nats.InProcessServer(ns))...)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("relay: connecting to the embedded NATS server: %w", err)
		}
		l.nc = nc
	}
	js, err := jetstream.New(l.nc,
		// The async publish window: ingest sends at most a batch (100)
		// per sensor before waiting, so 4,096 in flight is many sensors'
		// worth; beyond it publishing waits rather than grows memory.
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(publishAttempt))
	if err != nil {
		l.close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	l.js = js
	l.replicas = r.replicas(l)
	timeout := cfg.NATSStartTimeout
	if timeout <= 0 {
		timeout = DefaultNATSStartTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := retry(ctx, r, "creating the stream", func(ctx context.Context) error {
		var err error
		l.stream, err = r.ensureStream(ctx, l, firstSeq)
		return err
	}); err != nil {
		l.close()
		return nil, err
	}
	if err := retry(ctx, r, "creating the token bucket", func(ctx context.Context) error {
		var err error
		// An existing bucket is used as it is (no write at start).
		if l.kv, err = js.KeyValue(ctx, tokenBucket); err == nil || !errors.Is(err, jetstream.ErrBucketNotFound) {
			return err
		}
		l.kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      tokenBucket,
			Description: "attackmap sensor tokens: NAME -> token file line",
			// One value per name: the current line.
			History:  1,
			Replicas: l.replicas,
			Storage:  l.storage(),
		})
		return err
	}); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// startServer starts a NATS server with o and waits until it takes
// connections.
func startServer(o *server.Options, log *slog.Logger) (*server.Server, error) {
	ns, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("relay: embedded NATS server: %w", err)
	}
	if log != nil {
		ns.SetLoggerV2(natsLogger{log}, false, false, false)
	}
	ns.Start()
	// Ten seconds: a file store replays its blocks at start, which is
	// fast (indexes are kept), and a clustered server only waits for its
	// listeners here, not for its peers.
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("relay: the embedded NATS server did not start within 10 s")
	}
	return ns, nil
}

// retry calls f until it succeeds or ctx ends: a cluster answers "no
// leader" or times out until its peers are up.
func retry(ctx context.Context, r *Relay, what string, f func(context.Context) error) error {
	var err error
	logged := time.Time{}
	for {
		// Each attempt gets five seconds: a JetStream API request in a
		// cluster that has a leader answers in milliseconds.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Since(logged) > 10*time.Second {
			logged = time.Now()
			r.log.Info("relay: waiting for NATS JetStream", "step", what, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("relay: %s: %w", what, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (l *natsLog) storage() jetstream.StorageType {
	if l.ns != nil && l.storeDir == "" {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// serverOptions configures the embedded server.
func (r *Relay) serverOptions(l *natsLog) (*server.Options, error) {
	cfg := &r.cfg
	o := &server.Options{
		ServerName: cfg.NATSName,
		JetStream:  true,
		// No signal handlers, no client port: the relay talks to its
		// server in process (nats.InProcessServer).
		NoSigs:     true,
		DontListen: cfg.NATSClientListen == "",
		// The server's own limit on what it stores: the stream's byte
		// budget is the real one (MaxBytes); the server's default, 75% of
		// the disk free at start, would refuse to create the stream on a
		// disk that is full at start.
		JetStreamMaxStore: 1 << 50,
	}
	if cfg.DataDir != "" {
		l.storeDir = filepath.Join(cfg.DataDir, "nats")
		o.StoreDir = l.storeDir
	} else {
		d, err := os.MkdirTemp("", "attackmap-relay-nats-")
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		l.tmpDir, o.StoreDir = d, d
	}
	if cfg.NATSClientListen != "" {
		h, p, err := splitHostPort(cfg.NATSClientListen)
		if err != nil {
			return nil, fmt.Errorf("relay: --nats-client-listen: %w", err)
		}
		// Whoever reaches the client port can write the stream and the
		// token bucket: off loopback it needs a token.
		if ip, err := netip.ParseAddr(h); cfg.NATSClientToken == "" && (err != nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("relay: --nats-client-listen %s is not a loopback address: set --nats-client-token (clients then connect as nats://TOKEN@host:port)", cfg.NATSClientListen)
		}
		o.Host, o.Port = h, p
		if cfg.NATSClientToken != "" {
			l.authToken = cfg.NATSClientToken
			o.Authorization = l.authToken
		}
	}
	if cfg.NATSListen == "" {
		// A single node: an ack means the message is on disk. Every
		// write is fsynced before the server acknowledges it (the
		// default syncs every two minutes and would lose what a power
		// cut catches in between); see the bench-relay figures for its
		// cost. Config.NATSSyncInterval trades that for throughput.
		if r.cfg.NATSSyncInterval > 0 {
			o.SyncInterval = r.cfg.NATSSyncInterval
			l.syncOnClose = l.storeDir != ""
		} else {
			o.SyncAlways = true
		}
		if o.ServerName == "" {
			o.ServerName = "attackmap-relay"
		}
		return o, nil
	}
	h, p, err := splitHostPort(cfg.NATSListen)
	if err != nil {
		return nil, fmt.Errorf("relay: --nats-listen: %w", err)
	}
	if o.DontListen {
		// The server starts routing only once its client port is open:
		// a clustered relay opens one on loopback, on a random port,
		// guarded by a random token that only the relay knows.
		o.DontListen = false
		o.Host, o.Port = "127.0.0.1", server.RANDOM_PORT
		l.authToken = rand.Text()
		o.Authorization = l.authToken
	}
	o.Cluster.Host, o.Cluster.Port = h, p
	o.Cluster.Name = cfg.NATSClusterName
	if o.Cluster.Name == "" {
		o.Cluster.Name = "attackmap"
	}
	if o.ServerName == "" {
		// Stable across restarts (JetStream's Raft groups know their
		// peers by name): the host name and the route port.
		hn, _ := os.Hostname()
		o.ServerName = hn + "-" + strconv.Itoa(p)
	}
	for _, u := range cfg.NATSRoutes {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			return nil, fmt.Errorf("relay: --nats-routes: %q: want nats://host:port", u)
		}
		o.Routes = append(o.Routes, pu)
	}
	// A cluster: an ack means a quorum of the replicas stored the
	// message (Raft), so the default two-minute fsync interval stands.
	return o, nil
}

func splitHostPort(s string) (string, int, error) {
	h, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("port %q", ps)
	}
	return h, p, nil
}

// replicas is the stream's replica count: Config.Replicas, else three in a
// cluster (a quorum of two survives the loss of any one node), fewer when
// the cluster is smaller.
func (r *Relay) replicas(l *natsLog) int {
	if r.cfg.Replicas > 0 {
		return r.cfg.Replicas
	}
	n := 1
	switch {
	case l.ns != nil && r.cfg.NATSListen != "":
		n = 1 + len(r.cfg.NATSRoutes)
	case l.ns == nil:
		n = len(l.nc.Servers())
	}
	return max(1, min(3, n))
}

// streamConfig is the stream's configuration from the relay's.
func (r *Relay) streamConfig(l *natsLog) jetstream.StreamConfig {
	cfg := &r.cfg
	var maxAge time.Duration
	if cfg.RetentionDays > 0 {
		maxAge = time.Duration(cfg.RetentionDays) * 24 * time.Hour
	}
	// The byte budget: a day's history budget for every day kept and
	// today (12 GiB with the defaults).
	maxBytes := int64(-1)
	if cfg.HistoryCapTotal > 0 && cfg.RetentionDays > 0 {
		maxBytes = cfg.HistoryCapTotal * int64(cfg.RetentionDays+1)
	}
	dw := cfg.DedupWindow
	if dw <= 0 {
		dw = DefaultDedupWindow
	}
	if maxAge > 0 && dw > maxAge {
		dw = maxAge
	}
	return jetstream.StreamConfig{
		Name:        streamName,
		Description: "attackmap incidents, one message per incident version",
		Subjects:    []string{subjectPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		// The oldest go first when the byte budget is reached.
		Discard:    jetstream.DiscardOld,
		MaxAge:     maxAge,
		MaxBytes:   maxBytes,
		MaxMsgSize: int32(incident.MaxBytes + 1024),
		Storage:    l.storage(),
		Replicas:   l.replicas,
		Duplicates: dw,
		// Direct gets let any replica answer reads by sequence (resume
		// older than the ring, /api/history).
		AllowDirect: true,
	}
}

// ensureStream creates the stream, or updates a stream that exists to the
// relay's limits (keeping its sequence numbers).
func (r *Relay) ensureStream(ctx context.Context, l *natsLog, firstSeq uint64) (jetstream.Stream, error) {
	sc := r.streamConfig(l)
	st, err := l.js.Stream(ctx, streamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		sc.FirstSeq = firstSeq
		return l.js.CreateStream(ctx, sc)
	}
	if err != nil {
		return nil, err
	}
	old := st.CachedInfo().Config
	// Storage cannot change; replicas only grow (a relay that sees
	// fewer peers does not shrink the cluster's stream).
	sc.Storage = old.Storage
	sc.Replicas = max(sc.Replicas, old.Replicas)
	l.replicas = sc.Replicas
	if sc.MaxAge == old.MaxAge && sc.MaxBytes == old.MaxBytes && sc.Duplicates == old.Duplicates &&
		sc.Replicas == old.Replicas && sc.MaxMsgSize == old.MaxMsgSize && sc.Discard == old.Discard &&
		sc.AllowDirect == old.AllowDirect && slices.Equal(sc.Subjects, old.Subjects) {
		// Unchanged: no write (a relay starts on a full disk).
		return st, nil
	}
	return l.js.UpdateStream(ctx, sc)
}

// close drains the connection and stops the embedded server. Its error is
// a failure to sync the store (syncOnClose); the rest is best effort.
func (l *natsLog) close() error {
	if l.nc != nil {
		// Drain waits for what was published to be acknowledged;
		// the connection is closed after at most a second either way.
		done := make(chan struct{})
		l.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := l.nc.Drain(); err != nil {
			l.nc.Close()
		} else {
			select {
			case <-done:
			case <-time.After(time.Second):
				l.nc.Close()
			}
		}
	}
	if l.ns != nil {
		l.ns.Shutdown()
		l.ns.WaitForShutdown()
	}
	if l.tmpDir != "" {
		_ = os.RemoveAll(l.tmpDir)
	}
	if l.syncOnClose && l.ns != nil {
		return syncTree(l.storeDir)
	}
	return nil
}

// syncTree fsyncs every regular file and directory under dir, files first
// so that a directory is synced after what it holds. It costs one fsync
// per store file (a few per stream) at shutdown.
func syncTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return syncPath(path)
	})
	for i := len(dirs) - 1; i >= 0 && err == nil; i-- {
		err = syncPath(dirs[i])
	}
	if err != nil {
		return fmt.Errorf("relay: syncing the store: %w", err)
	}
	return nil
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hostSubject is the subject of host's incidents. Host names come from the
// token file, but a subject token must not hold '.', '*', '>' or white
// space: a name that is not all letters, digits, '-' and '_' is hex-encoded
// behind a '~' (which no plain name holds, so two hosts never share one).
func hostSubject(host string) string {
	plain := host != ""
	for i := 0; i < len(host) && plain; i++ {
		c := host[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if plain {
		return subjectPrefix + host
	}
	return subjectPrefix + "~" + hex.EncodeToString([]byte(host))
}

// versionID is the Nats-Msg-Id of an incident version: a hash of the host,
// the id and last_seen, and also of count, severity and action, so an
// update that changes only those (a block applied after the incident was
// sent) is a new version, not a duplicate. 128 bits of SHA-256: a sensor
// cannot make another host's version collide with one of its own.
func versionID(in *incident.Incident) string {
	h := sha256.New()
	var b [8]byte
	str := func(s string) {
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	str(in.Host)
	str(in.ID)
	binary.LittleEndian.PutUint64(b[:], uint64(in.LastSeen.UnixNano()))
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], uint64(in.Count))
	h.Write(b[:])
	str(string(in.Severity))
	str(in.Action)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// natsLogger sends the embedded server's log to the relay's: notices and
// debug lines at debug level, warnings at info (the server warns about
// routine cluster work: snapshots, peers still starting), errors at warn
// (a route to a peer that is not up yet is an error to it; the relay says
// itself when ingest is affected).
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Warnf(format string, v ...any) { l.log.Info("nats: " + fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Errorf(format string, v ...any) {
	l.log.Warn("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Debugf(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Tracef(string, ...any) {}
