// Command relaybench measures the relay's SSE fan-out: it starts
// bin/attackmap-relay as a separate process, opens N subscribers (default
// 10,000) spread over several 127.x source addresses, publishes 1 KiB
// incidents through the ingest WebSocket and prints the subscribers held,
// the relay's memory per subscriber, the delivery ratio and the broadcast
// latency (sensor send to subscriber receive) at p50/p99.
//
// The readers are cheap on purpose (raw TCP, a hand-written request and a
// line scanner, no net/http client) so the load generator is not the
// bottleneck; it still shares the machine with the relay, so the figures
// are an upper bound of what the relay alone costs.
//
// By default it makes three pairs of runs, each against a fresh relay: a
// clean run, then a hostile one where, alongside the same subscribers, 1,000 slowloris
// connections (request heads sent a byte at a time, reopened when the relay
// drops them) and 100 clients that ask for /api/live-feed?limit=500 and
// never read (asking again every 11 s) come from other addresses. It prints
// the runs side by side and checks that every honest subscriber still got
// every incident, and that the broadcast p99 stayed within 1.2x and the
// relay's RSS within 1.5x of the clean run: the median of the pairs'
// ratios, since the load of a shared machine drifts from run to run. With -before it first makes a clean run
// against the relay before the NATS stream (built from git by make
// bench-relay) and compares memory per subscriber and p99 with today's
// (target within 1.2x). With -cluster it then starts three relays whose
// embedded NATS servers form one cluster (see cluster.go).
//
//	go run ./relay/cmd/relaybench -relay bin/attackmap-relay [-before bin/attackmap-relay-before] [-cluster]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		os.Exit(1)
	}
}

type options struct {
	relay       string
	before      string // the relay before the stream, for a side-by-side run
	cluster     bool
	clusterN    int
	ingestN     int
	n           int
	addrs       int
	incidents   int
	rate        float64
	batch       int
	size        int
	concurrency int
	wait        time.Duration
	verbose     bool
	runs        string
	repeat      int
	slowloris   int
	feeders     int
	fill        int
}

// runResult is what one run measured.
type runResult struct {
	name                   string
	held                   int
	rssIdle, rssSubs, rss  int64 // before subscribers, with them, after publishing
	perSub                 float64
	delivered, want        int64
	dups, disorder, ended  int64
	p50, p99, pmax         float64
	relayCPU               float64
	hostileConns, feedGets int64
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relaybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.relay, "relay", "bin/attackmap-relay", "relay binary to start")
	fs.IntVar(&o.n, "n", 10000, "SSE subscribers")
	fs.IntVar(&o.addrs, "addrs", 16, "source addresses 127.0.0.2... to spread subscribers over")
	fs.IntVar(&o.incidents, "incidents", 200, "incidents to publish")
	fs.Float64Var(&o.rate, "rate", 20, "incidents per second")
	fs.IntVar(&o.batch, "batch", 1, "incidents per ingest message")
	fs.IntVar(&o.size, "size", 1024, "encoded size of one incident, bytes")
	fs.IntVar(&o.concurrency, "concurrency", 128, "subscribers connecting at once")
	fs.DurationVar(&o.wait, "wait", 60*time.Second, "how long to wait for delivery after the last publish")
	fs.BoolVar(&o.verbose, "v", false, "print each incident's slowest delivery")
	fs.StringVar(&o.runs, "runs", "clean,hostile", "runs to make, comma-separated: clean, hostile")
	fs.IntVar(&o.repeat, "repeat", 3, "make the runs this many times, interleaved; ratios are taken per pair and their median judged")
	fs.IntVar(&o.slowloris, "slowloris", 1000, "hostile run: slowloris connections (from 127.0.1.x)")
	fs.IntVar(&o.feeders, "feeders", 100, "hostile run: clients asking /api/live-feed?limit=500 that never read (from 127.0.2.x)")
	fs.IntVar(&o.fill, "fill", 500, "incidents of about 8 KiB published before the subscribers connect, so feed answers are full")
	fs.StringVar(&o.before, "before", "", "the relay binary before the NATS stream (built from git); adds a clean run with it, printed beside the others (run \"before\")")
	fs.BoolVar(&o.cluster, "cluster", false, "after the runs, start three relays whose embedded NATS servers form a cluster (R3 stream) and measure delivery to -cluster-n subscribers on each and acknowledged ingest throughput")
	fs.IntVar(&o.clusterN, "cluster-n", 4000, "cluster run: SSE subscribers per relay")
	fs.IntVar(&o.ingestN, "ingest-n", 20000, "cluster run: incidents pushed as fast as the relays acknowledge them, for the throughput figure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.n < 1 || o.addrs < 1 || o.addrs > 250 || o.incidents < 1 || o.rate <= 0 || o.batch < 1 || o.batch > 100 {
		return errors.New("bad options")
	}
	if err := raiseNoFile(uint64(o.n+o.slowloris+o.feeders) + 1024); err != nil {
		return err
	}
	runs := o.runs
	if o.before != "" && !strings.Contains(runs, "before") {
		runs = "before," + runs
	}
	if o.repeat < 1 {
		return errors.New("bad options: -repeat must be at least 1")
	}
	runs = strings.Repeat(runs+",", o.repeat)
	var results []*runResult
	for _, name := range strings.Split(runs, ",") {
		bin := o.relay
		switch name {
		case "clean", "hostile":
		case "before":
			if o.before == "" {
				return errors.New("-runs before needs -before")
			}
			bin = o.before
		case "":
			continue
		default:
			return fmt.Errorf("-runs: unknown run %q", name)
		}
		fmt.Fprintf(stdout, "\n== %s run (%s) ==\n", name, bin)
		r, err := runOnce(o, bin, name, stdout, stderr)
		if err != nil {
			return fmt.Errorf("%s run: %w", name, err)
		}
		results = append(results, r)
	}
	compare(stdout, results)
	if o.cluster {
		if err := runCluster(o, stdout, stderr); err != nil {
			return fmt.Errorf("cluster run: %w", err)
		}
	}
	return nil
}

// compare prints the runs side by side and the hostile run's checks.
func compare(w io.Writer, rs []*runResult) {
	if len(rs) < 2 {
		return
	}
	fmt.Fprintf(w, "\n%-44s", "")
	for _, r := range rs {
		fmt.Fprintf(w, "%16s", r.name)
	}
	fmt.Fprintln(w)
	row := func(label string, f func(r *runResult) string) {
		fmt.Fprintf(w, "%-44s", label)
		for _, r := range rs {
			fmt.Fprintf(w, "%16s", f(r))
		}
		fmt.Fprintln(w)
	}
	row("subscribers held", func(r *runResult) string { return strconv.Itoa(r.held) })
	row("events delivered", func(r *runResult) string {
		return fmt.Sprintf("%.3f%%", 100*float64(r.delivered)/float64(max(1, r.want)))
	})
	row("duplicates / out of order / ended early", func(r *runResult) string { return fmt.Sprintf("%d/%d/%d", r.dups, r.disorder, r.ended) })
	row("broadcast p50 (ms)", func(r *runResult) string { return fmt.Sprintf("%.1f", r.p50) })
	row("broadcast p99 (ms)", func(r *runResult) string { return fmt.Sprintf("%.1f", r.p99) })
	row("broadcast max (ms)", func(r *runResult) string { return fmt.Sprintf("%.1f", r.pmax) })
	row("relay RSS with subscribers (MiB)", func(r *runResult) string { return fmt.Sprintf("%.1f", mib(r.rssSubs)) })
	row("relay RSS after publishing (MiB)", func(r *runResult) string { return fmt.Sprintf("%.1f", mib(r.rss)) })
	row("relay memory per subscriber (bytes)", func(r *runResult) string { return fmt.Sprintf("%.0f", r.perSub) })
	row("relay CPU while publishing (s)", func(r *runResult) string { return fmt.Sprintf("%.2f", r.relayCPU) })
	row("hostile connections opened", func(r *runResult) string { return strconv.FormatInt(r.hostileConns, 10) })
	row("non-reading feed requests sent", func(r *runResult) string { return strconv.FormatInt(r.feedGets, 10) })
	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	// Runs of two kinds are paired in order (the first clean with the first
	// hostile, ...): on a shared machine the load drifts, so each ratio is
	// taken side by side and the verdict is on their median.
	pairs := func(a, b string) (out [][2]*runResult) {
		var as, bs []*runResult
		for _, r := range rs {
			switch r.name {
			case a:
				as = append(as, r)
			case b:
				bs = append(bs, r)
			}
		}
		for i := range min(len(as), len(bs)) {
			out = append(out, [2]*runResult{as[i], bs[i]})
		}
		return out
	}
	// median returns the median of f over the pairs, and each value.
	median := func(ps [][2]*runResult, f func(a, b *runResult) float64) (float64, string) {
		vs := make([]float64, len(ps))
		each := make([]string, len(ps))
		for i, p := range ps {
			vs[i] = f(p[0], p[1])
			each[i] = fmt.Sprintf("%.2f", vs[i])
		}
		sort.Float64s(vs)
		m := vs[len(vs)/2]
		if len(vs)%2 == 0 {
			m = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
		}
		return m, strings.Join(each, ", ")
	}
	if ps := pairs("before", "clean"); len(ps) > 0 {
		held := true
		for _, p := range ps {
			held = held && p[1].held >= p[0].held
		}
		mem, memEach := median(ps, func(b, c *runResult) float64 { return c.perSub / max(b.perSub, 1) })
		p99, p99Each := median(ps, func(b, c *runResult) float64 { return c.p99 / max(b.p99, 0.1) })
		fmt.Fprintf(w, "\nstream vs before (clean runs, median of %d pairs): subscribers held: %s; memory per subscriber %.2fx [%s] (target <= 1.2x): %s; broadcast p99 %.2fx [%s] (target <= 1.2x): %s\n",
			len(ps), verdict(held), mem, memEach, verdict(mem <= 1.2), p99, p99Each, verdict(p99 <= 1.2))
	}
	ps := pairs("clean", "hostile")
	if len(ps) == 0 {
		return
	}
	all := true
	for _, p := range ps {
		all = all && p[1].delivered == p[1].want && p[1].dups == 0 && p[1].held == p[0].held
	}
	p99, p99Each := median(ps, func(c, h *runResult) float64 { return h.p99 / max(c.p99, 0.1) })
	rss, rssEach := median(ps, func(c, h *runResult) float64 { return float64(h.rss) / float64(max(c.rss, 1)) })
	fmt.Fprintf(w, "\nhostile vs clean (median of %d pairs): every honest subscriber got every incident: %s; broadcast p99 %.2fx [%s] (target <= 1.2x): %s; relay RSS %.2fx [%s] (target <= 1.5x): %s\n",
		len(ps), verdict(all), p99, p99Each, verdict(p99 <= 1.2), rss, rssEach, verdict(rss <= 1.5))
}

// runOnce starts a relay, connects the subscribers (and, when hostile, the
// attackers), publishes and measures.
func runOnce(o options, bin, name string, stdout, stderr io.Writer) (*runResult, error) {
	res0 := &runResult{name: name}
	hostile := name == "hostile"
	dir, err := os.MkdirTemp("", "relaybench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	tokFile := filepath.Join(dir, "tokens")
	out, err := exec.Command(bin, "token", "add", "--token-file", tokFile, "bench").Output()
	if err != nil {
		return nil, fmt.Errorf("token add: %w", err)
	}
	tok := strings.TrimSpace(string(out))
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	maddr, err := freePort()
	if err != nil {
		return nil, err
	}
	// The per-address and per-network caps are off: the honest
	// subscribers share 16 addresses of one /24, and the attackers must
	// reach the relay for the run to measure its timeouts and deadlines
	// rather than its refusals. The total connection cap stays at its
	// default (from the open file limit).
	cmd := exec.Command(bin, "serve", "--listen", addr, "--metrics-listen", maddr, "--data", filepath.Join(dir, "data"),
		"--token-file", tokFile, "--max-subscribers", strconv.Itoa(o.n+1000),
		"--max-subscribers-per-addr", "-1", "--max-subscribers-per-net", "-1", "--max-conns-per-addr", "-1",
		"--ingest-rate", "-1", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// The relay dies with the bench even if the bench is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	base := "http://" + addr
	mbase := "http://" + maddr
	if err := waitHealthy(base); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "relaybench: %d subscribers over %d source addresses, %d incidents of %d bytes at %g/s in batches of %d; %d CPUs (shared with the load generator)\n",
		o.n, o.addrs, o.incidents, o.size, o.rate, o.batch, runtime.NumCPU())
	if err := fill(base, tok, o.fill); err != nil {
		return nil, err
	}

	rss0, heap0 := relayMemory(pid, mbase)
	res := newResults(o.n, o.incidents)
	start := time.Now()
	conns, err := connectAll(addr, o, res)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	fmt.Fprintf(stdout, "subscribers connected: %d/%d in %.1fs\n", len(conns), o.n, time.Since(start).Seconds())
	stopAttack := func() {}
	var atk *attack
	if hostile {
		atk = startAttack(addr, o)
		stopAttack = atk.stop
		// Let the attack reach its steady state: every slowloris slot
		// open, the first feed requests stalled.
		time.Sleep(5 * time.Second)
		fmt.Fprintf(stdout, "attack running: %d slowloris connections open, %d non-reading feed clients (%d connections opened so far)\n",
			atk.open.Load(), o.feeders, atk.opened.Load())
	}
	defer stopAttack()
	// Let the relay finish handing over the connections before measuring.
	time.Sleep(2 * time.Second)
	rss1, heap1 := relayMemory(pid, mbase)
	per := func(a, b int64) float64 { return float64(b-a) / float64(max(1, len(conns))) }
	fmt.Fprintf(stdout, "relay memory: RSS %.1f -> %.1f MiB = %.0f bytes (%.2f KB) per subscriber; Go heap in use %.1f -> %.1f MiB = %.0f bytes per subscriber\n",
		mib(rss0), mib(rss1), per(rss0, rss1), per(rss0, rss1)/1000, mib(heap0), mib(heap1), per(heap0, heap1))

	fan0 := fanoutBuckets(mbase)
	cpu0, self0, sys0 := relayCPU(pid), selfCPU(), relayWrites(pid)
	pubStart := time.Now()
	if err := publish(base, tok, o, res); err != nil {
		return nil, err
	}
	pubDur := time.Since(pubStart)
	want := int64(len(conns)) * int64(o.incidents)
	deadline := time.Now().Add(o.wait)
	for res.received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cpu1, self1, sys1 := relayCPU(pid), selfCPU(), relayWrites(pid)
	rss2, _ := relayMemory(pid, mbase)
	got := res.received.Load()
	fmt.Fprintf(stdout, "delivery: %d/%d events = %.3f%%, duplicates %d, out of order %d, streams ended early %d\n",
		got, want, 100*float64(got)/float64(want), res.dups.Load(), res.disorder.Load(), res.ended.Load())
	p50, p99, pmax := res.percentiles()
	fmt.Fprintf(stdout, "broadcast latency (sensor send to subscriber receive): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", p50, p99, pmax)
	if f50, f99, ok := fanoutPercentiles(fan0, fanoutBuckets(mbase)); ok {
		fmt.Fprintf(stdout, "relay-side fan-out (publish until the last socket write, from the relay's histogram): p50 <= %g ms, p99 <= %g ms\n", f50, f99)
	}
	fmt.Fprintf(stdout, "relay write syscalls while publishing: %d (%.2f per delivered event)\n", sys1-sys0, float64(sys1-sys0)/float64(max(1, got)))
	if o.verbose {
		for k := range res.worst {
			fmt.Fprintf(stdout, "incident %d: slowest delivery %.1f ms\n", k, float64(res.worst[k].Load())/1e6)
		}
	}
	fmt.Fprintf(stdout, "CPU while publishing (%.1fs): relay %.2f s, load generator %.2f s (user+sys); relay RSS after publishing %.1f MiB\n", pubDur.Seconds(), cpu1-cpu0, self1-self0, mib(rss2))
	if atk != nil {
		fmt.Fprintf(stdout, "attack: %d slowloris connections opened in all, %d open now; %d non-reading feed requests sent\n",
			atk.opened.Load(), atk.open.Load(), atk.feeds.Load())
		res0.hostileConns, res0.feedGets = atk.opened.Load(), atk.feeds.Load()
	}
	stopAttack()

	res0.held = len(conns)
	res0.rssIdle, res0.rssSubs, res0.rss = rss0, rss1, rss2
	res0.perSub = per(rss0, rss1)
	res0.delivered, res0.want = got, want
	res0.dups, res0.disorder, res0.ended = res.dups.Load(), res.disorder.Load(), res.ended.Load()
	res0.p50, res0.p99, res0.pmax = p50, p99, pmax
	res0.relayCPU = cpu1 - cpu0

	stopStart := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("relay exit: %w", err)
	}
	fmt.Fprintf(stdout, "relay stopped on SIGTERM in %.2fs with %d streams open\n", time.Since(stopStart).Seconds(), len(conns))
	for _, c := range conns {
		c.Close()
	}
	return res0, nil
}

// attack is the hostile run's load: slowloris connections and clients
// that ask for the largest feed and never read it.
type attack struct {
	done   chan struct{}
	wg     sync.WaitGroup
	open   atomic.Int64 // slowloris connections open now
	opened atomic.Int64 // slowloris connections opened in all
	feeds  atomic.Int64 // feed requests sent
	once   sync.Once
}

func startAttack(addr string, o options) *attack {
	a := &attack{done: make(chan struct{})}
	for i := range o.slowloris {
		a.wg.Go(func() { a.slowloris(addr, fmt.Sprintf("127.0.1.%d", 1+i%250)) })
	}
	for i := range o.feeders {
		a.wg.Go(func() { a.feeder(addr, fmt.Sprintf("127.0.2.%d", 1+i%250)) })
	}
	return a
}

func (a *attack) stop() {
	a.once.Do(func() {
		close(a.done)
		a.wg.Wait()
	})
}

// sleep waits d or until the attack stops; false when it stopped.
func (a *attack) sleep(d time.Duration) bool {
	select {
	case <-a.done:
		return false
	case <-time.After(d):
		return true
	}
}

// slowloris keeps one connection sending a request head a byte every
// 2 s, opening a new one whenever the relay drops it, as the tool does.
func (a *attack) slowloris(addr, local string) {
	// Spread the first connections over a second, as a real flood ramps.
	if !a.sleep(time.Duration(rand.Int64N(int64(time.Second)))) {
		return
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	for {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			if !a.sleep(time.Second) {
				return
			}
			continue
		}
		a.opened.Add(1)
		a.open.Add(1)
		_, err = io.WriteString(c, "GET /api/live-feed HTTP/1.1\r\nHost: relay\r\nUser-Agent: Mozilla/5.0\r\n")
		for err == nil {
			if !a.sleep(2 * time.Second) {
				break
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, err = io.WriteString(c, "X-a: b\r\n")
		}
		c.Close()
		a.open.Add(-1)
		select {
		case <-a.done:
			return
		default:
		}
	}
}

// feeder asks for the largest feed with a tiny receive buffer and never
// reads the answer; it asks again on a new connection every 11 s (the
// relay cuts a stalled answer after 10 s).
func (a *attack) feeder(addr, local string) {
	if !a.sleep(time.Duration(rand.Int64N(int64(time.Second)))) {
		return
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second,
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
	for {
		c, err := d.Dial("tcp", addr)
		if err == nil {
			a.feeds.Add(1)
			_, _ = io.WriteString(c, "GET /api/live-feed?limit=500 HTTP/1.1\r\nHost: relay\r\n\r\n")
		}
		ok := a.sleep(11 * time.Second)
		if c != nil {
			c.Close()
		}
		if !ok {
			return
		}
	}
}

// fill publishes n incidents of about 8 KiB before anyone subscribes, so
// that feed answers are full-size (500 of them: about 4 MiB each).
func fill(base, tok string, n int) error {
	if n <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/ingest",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	pad := strings.Repeat("f", 200)
	paths := make([]string, 32)
	for i := range paths {
		paths[i] = fmt.Sprintf(`"/%d/%s"`, i, pad)
	}
	ev := `{"paths":[` + strings.Join(paths, ",") + `]}`
	for b := 0; b*20 < n; b++ {
		var msg bytes.Buffer
		fmt.Fprintf(&msg, `{"type":"incidents","batch":%d,"incidents":[`, b+1)
		for j := 0; j < 20 && b*20+j < n; j++ {
			if j > 0 {
				msg.WriteByte(',')
			}
			fmt.Fprintf(&msg, `{"id":"fill-%d","source":"web_scan","severity":"low","ip":"185.220.101.%d","country":"DE","lat":51.29,"lon":9.49,"ts":"%s","title":"fill","summary":"%s","evidence":%s}`,
				b*20+j, j+1, time.Now().UTC().Format(time.RFC3339), strings.Repeat("s", 1000), ev)
		}
		msg.WriteString("]}")
		if err := c.Write(ctx, websocket.MessageText, msg.Bytes()); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			return fmt.Errorf("fill ack: %w", err)
		}
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// raiseNoFile lifts RLIMIT_NOFILE to at least want (the hard limit too when
// running as root). The relay inherits it.
func raiseNoFile(want uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= want {
		return nil
	}
	if l.Max < want {
		l.Max = want
	}
	l.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("raising the open file limit to %d: %w (run as root or lower -n)", want, err)
	}
	return nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitHealthy(base string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("relay did not become healthy")
}

// relayMemory returns the relay's RSS (from /proc) and its Go heap in use
// (from /metrics).
func relayMemory(pid int, base string) (rss, heap int64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				rss = kb << 10
			}
		}
	}
	if resp, err := http.Get(base + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				heap = int64(f)
			}
		}
	}
	return rss, heap
}

// relayCPU returns the relay's user+system CPU seconds.
func relayCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// fanoutBuckets reads the cumulative attackmap_relay_fanout_seconds buckets
// (upper bound in seconds -> count) from /metrics.
func fanoutBuckets(base string) map[float64]float64 {
	out := map[float64]float64{}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return out
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, `attackmap_relay_fanout_seconds_bucket{le="`)
		if !ok {
			continue
		}
		le, v, _ := strings.Cut(rest, `"} `)
		if le == "+Inf" {
			le = "1e9"
		}
		u, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(v, 64)
		if err1 == nil && err2 == nil {
			out[u] = n
		}
	}
	return out
}

// fanoutPercentiles returns the bucket bounds (ms) holding p50 and p99 of
// the observations between two readings.
func fanoutPercentiles(a, b map[float64]float64) (p50, p99 float64, ok bool) {
	bounds := make([]float64, 0, len(b))
	for u := range b {
		bounds = append(bounds, u)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0, 0, false
	}
	total := b[bounds[len(bounds)-1]] - a[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0, 0, false
	}
	p50, p99 = -1, -1
	for _, u := range bounds {
		c := b[u] - a[u]
		if p50 < 0 && c >= total/2 {
			p50 = u * 1000
		}
		if p99 < 0 && c >= total*0.99 {
			p99 = u * 1000
		}
	}
	return p50, p99, true
}

// relayWrites returns the relay's count of write system calls (syscw in
// /proc/PID/io; writev included).
func relayWrites(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// selfCPU returns this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// results collects what the readers saw.
type results struct {
	received atomic.Int64
	dups     atomic.Int64
	disorder atomic.Int64
	ended    atomic.Int64
	hist     []atomic.Int64 // latency in 100 µs steps, last bucket is overflow
	worst    []atomic.Int64 // per incident: slowest delivery, ns
}

const histStep = 100 * time.Microsecond

func newResults(n, incidents int) *results {
	return &results{hist: make([]atomic.Int64, 100000), worst: make([]atomic.Int64, incidents)} // up to 10 s
}

func (r *results) observe(d time.Duration) {
	i := int(d / histStep)
	if i < 0 {
		i = 0
	}
	if i >= len(r.hist) {
		i = len(r.hist) - 1
	}
	r.hist[i].Add(1)
}

func (r *results) percentiles() (p50, p99, pmax float64) {
	var total int64
	for i := range r.hist {
		total += r.hist[i].Load()
	}
	if total == 0 {
		return 0, 0, 0
	}
	var acc int64
	ms := func(i int) float64 { return float64(time.Duration(i+1)*histStep) / float64(time.Millisecond) }
	for i := range r.hist {
		n := r.hist[i].Load()
		if n == 0 {
			continue
		}
		if acc < total/2 && acc+n >= total/2 {
			p50 = ms(i)
		}
		if acc < total*99/100 && acc+n >= total*99/100 {
			p99 = ms(i)
		}
		acc += n
		pmax = ms(i)
	}
	return p50, p99, pmax
}

func connectAll(addr string, o options, res *results) ([]net.Conn, error) {
	conns := make([]net.Conn, o.n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.n {
					return
				}
				c, br, err := subscribe(addr, fmt.Sprintf("127.0.0.%d", 2+i%o.addrs))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				conns[i] = c
				go read(c, br, res)
			}
		})
	}
	wg.Wait()
	out := slices.DeleteFunc(conns, func(c net.Conn) bool { return c == nil })
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "relaybench: %d subscribers failed, first: %v\n", f, firstErr.Load())
	}
	if len(out) == 0 {
		return nil, errors.New("no subscriber connected")
	}
	return out, nil
}

// subscribe opens one stream like a browser's EventSource would, with a
// hand-written request, and reads the response head.
func subscribe(addr, local string) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	req := "GET /api/live-feed/stream HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		c.Close()
		return nil, nil, fmt.Errorf("status %q: %v", strings.TrimSpace(status), err)
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		if len(line) <= 2 {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, br, nil
}

var idMark = []byte(`"id":"b:`)

// read scans one stream: for every data line it takes the incident number
// and send time out of the id ("b:<k>:<unix nanos>").
func read(c net.Conn, br *bufio.Reader, res *results) {
	last := int64(-1)
	defer func() {
		if err := recover(); err != nil {
			res.ended.Add(1)
		}
	}()
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if !errors.Is(err, bufio.ErrBufferFull) {
				if !errors.Is(err, net.ErrClosed) {
					res.ended.Add(1)
				}
				return
			}
			continue
		}
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		now := time.Now()
		i := bytes.Index(line, idMark)
		if i < 0 {
			continue
		}
		rest := line[i+len(idMark):]
		j := bytes.IndexByte(rest, ':')
		k, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
		rest = rest[j+1:]
		e := bytes.IndexByte(rest, '"')
		ns, _ := strconv.ParseInt(string(rest[:e]), 10, 64)
		switch {
		case k <= last:
			res.dups.Add(1)
			continue
		case k != last+1:
			res.disorder.Add(1)
		}
		last = k
		res.received.Add(1)
		d := now.Sub(time.Unix(0, ns))
		res.observe(d)
		if k >= 0 && int(k) < len(res.worst) {
			w := &res.worst[k]
			for old := w.Load(); int64(d) > old && !w.CompareAndSwap(old, int64(d)); old = w.Load() {
			}
		}
	}
}

// publish sends o.incidents incidents through the ingest socket at o.rate.
func publish(base, tok string, o options, res *results) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := openIngest(ctx, "ws"+strings.TrimPrefix(base, "http"), tok)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	acks := make(chan error, 1)
	batches := (o.incidents + o.batch - 1) / o.batch
	go func() { acks <- readAcks(ctx, c, batches, nil) }()
	interval := time.Duration(float64(time.Second) * float64(o.batch) / o.rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	k := 0
	for b := 0; b < batches; b++ {
		if b > 0 {
			<-tick.C
		}
		cnt := min(o.batch, o.incidents-k)
		msg := batchMessage(b+1, k, cnt, o.size)
		k += cnt
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	select {
	case err := <-acks:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("acks did not arrive")
	}
}

// openIngest opens an ingest socket to the relay at wsBase (ws://host:port)
// with the sensor token tok.
func openIngest(ctx context.Context, wsBase, tok string) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, wsBase+"/api/ingest",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}

// readAcks reads the acks of n batches from c and calls onAck, when not
// nil, with each one's accepted count. An ack that rejects an incident is
// an error: the bench sends only valid ones.
func readAcks(ctx context.Context, c *websocket.Conn, n int, onAck func(accepted int)) error {
	for range n {
		_, data, err := c.Read(ctx)
		if err != nil {
			return err
		}
		var ack struct {
			Type     string            `json:"type"`
			Accepted int               `json:"accepted"`
			Rejected []json.RawMessage `json:"rejected"`
		}
		if err := json.Unmarshal(data, &ack); err != nil || ack.Type != "ack" || len(ack.Rejected) > 0 {
			return fmt.Errorf("ack %s", data)
		}
		if onAck != nil {
			onAck(ack.Accepted)
		}
	}
	return nil
}

// batchMessage is ingest batch number b of n incidents (see incidentJSON)
// numbered from first, of about size bytes each.
func batchMessage(b, first, n, size int) []byte {
	var msg bytes.Buffer
	fmt.Fprintf(&msg, `{"type":"incidents","batch":%d,"incidents":[`, b)
	for j := range n {
		if j > 0 {
			msg.WriteByte(',')
		}
		msg.Write(incidentJSON(first+j, time.Now(), size))
	}
	msg.WriteString("]}")
	return msg.Bytes()
}

// incidentJSON builds an incident of about size bytes once the relay has
// stamped host and re-encoded it.
func incidentJSON(k int, sent time.Time, size int) []byte {
	head := fmt.Sprintf(`{"id":"b:%d:%d","source":"ssh_bruteforce","severity":"high","ip":"185.220.101.%d","country":"DE","lat":51.29,"lon":9.49,"ts":"%s","title":"SSH brute force","count":%d,"host":"bench","summary":"`,
		k, sent.UnixNano(), k%250+1, sent.UTC().Format(time.RFC3339), k+1)
	tail := `"}`
	pad := max(0, size-len(head)-len(tail))
	return []byte(head + strings.Repeat("x", pad) + tail)
}
