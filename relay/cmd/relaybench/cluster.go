package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// The cluster run: three relays on this machine whose embedded NATS
// servers form one cluster (the stream has three replicas, an ack means a
// quorum stored it), -cluster-n subscribers on each, incidents pushed to
// the first: every incident must reach every subscriber on every relay.
// Then -ingest-n incidents pushed as fast as the relays acknowledge them,
// through one sensor socket per relay (100 per batch, 8 batches in flight
// per socket, as the sensor pipelines): acknowledged incidents per second.

// clusterRelay is one relay process of the cluster run.
type clusterRelay struct {
	cmd          *exec.Cmd
	addr, maddr  string
	pid          int
	route, token string
}

func runCluster(o options, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "\n== cluster run: 3 relays, R3 stream, %d subscribers each ==\n", o.clusterN)
	if err := raiseNoFile(uint64(3*o.clusterN) + 1024); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "relaybench-cluster")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// One token file for all three (as a deployment would copy it): a
	// sensor name per relay for the throughput run.
	tokFile := filepath.Join(dir, "tokens")
	rs := make([]*clusterRelay, 3)
	var routes []string
	for i := range rs {
		out, err := exec.Command(o.relay, "token", "add", "--token-file", tokFile, "bench-"+strconv.Itoa(i)).Output()
		if err != nil {
			return fmt.Errorf("token add: %w", err)
		}
		r := &clusterRelay{token: strings.TrimSpace(string(out))}
		if r.addr, err = freePort(); err != nil {
			return err
		}
		if r.maddr, err = freePort(); err != nil {
			return err
		}
		if r.route, err = freePort(); err != nil {
			return err
		}
		routes = append(routes, "nats://"+r.route)
		rs[i] = r
	}
	for i, r := range rs {
		r.cmd = exec.Command(o.relay, "serve", "--listen", r.addr, "--metrics-listen", r.maddr,
			"--data", filepath.Join(dir, "data-"+strconv.Itoa(i)), "--token-file", tokFile,
			"--max-subscribers", strconv.Itoa(o.clusterN+1000),
			"--max-subscribers-per-addr", "-1", "--max-subscribers-per-net", "-1", "--max-conns-per-addr", "-1",
			"--ingest-rate", "-1", "--log-level", "warn",
			"--nats-listen", r.route, "--nats-routes", strings.Join(routes, ","), "--nats-name", "bench-"+strconv.Itoa(i))
		r.cmd.Stdout, r.cmd.Stderr = stderr, stderr
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := r.cmd.Start(); err != nil {
			return err
		}
		r.pid = r.cmd.Process.Pid
		defer func() {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
		}()
	}
	for _, r := range rs {
		if err := waitHealthy("http://" + r.addr); err != nil {
			return err
		}
	}
	res := newResults(3*o.clusterN, o.incidents)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	per := o
	per.n = o.clusterN
	start := time.Now()
	rss0 := make([]int64, 3)
	for i, r := range rs {
		rss0[i], _ = relayMemory(r.pid, "http://"+r.maddr)
		cs, err := connectAll(r.addr, per, res)
		if err != nil {
			return err
		}
		conns = append(conns, cs...)
	}
	fmt.Fprintf(stdout, "subscribers connected: %d/%d in %.1fs\n", len(conns), 3*o.clusterN, time.Since(start).Seconds())
	time.Sleep(2 * time.Second)
	for i, r := range rs {
		rss, _ := relayMemory(r.pid, "http://"+r.maddr)
		fmt.Fprintf(stdout, "relay %d: RSS %.1f -> %.1f MiB = %.0f bytes per subscriber\n", i, mib(rss0[i]), mib(rss), float64(rss-rss0[i])/float64(o.clusterN))
	}
	tok0 := rs[0].token
	if err := publish("http://"+rs[0].addr, tok0, o, res); err != nil {
		return err
	}
	want := int64(len(conns)) * int64(o.incidents)
	deadline := time.Now().Add(o.wait)
	for res.received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := res.received.Load()
	p50, p99, pmax := res.percentiles()
	fmt.Fprintf(stdout, "delivery on all three relays: %d/%d events = %.3f%%, duplicates %d, out of order %d, streams ended early %d\n",
		got, want, 100*float64(got)/float64(max(1, want)), res.dups.Load(), res.disorder.Load(), res.ended.Load())
	fmt.Fprintf(stdout, "broadcast latency (sensor send to relay A, stream, subscriber on A, B or C receives): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", p50, p99, pmax)
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	// Let the relays finish with the closed streams before measuring
	// ingest alone.
	time.Sleep(3 * time.Second)

	n, d, err := ingestThroughput(rs, o.ingestN)
	if err != nil {
		return err
	}
	rate := float64(n) / d.Seconds()
	verdict := "ok"
	if rate < 5000 {
		verdict = "MISSED"
	}
	fmt.Fprintf(stdout, "ingest to the R3 stream: %d incidents acknowledged in %.2fs = %.0f/s (target >= 5,000/s): %s\n", n, d.Seconds(), rate, verdict)
	return nil
}

// ingestThroughput pushes n incidents through one sensor socket per relay,
// each pipelining up to 8 batches of 100, and returns how many were
// acknowledged and in what time.
func ingestThroughput(rs []*clusterRelay, n int) (int64, time.Duration, error) {
	const batch, window = 100, 8
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(rs))
	per := n / len(rs)
	start := time.Now()
	for i, r := range rs {
		wg.Go(func() {
			if err := pushPipelined(r, i, per, batch, window, &acked); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	select {
	case err := <-errs:
		return acked.Load(), d, err
	default:
	}
	return acked.Load(), d, nil
}

func pushPipelined(r *clusterRelay, who, n, batch, window int, acked *atomic.Int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := openIngest(ctx, "ws://"+r.addr, r.token)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	batches := (n + batch - 1) / batch
	slots := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		done <- readAcks(ctx, c, batches, func(accepted int) {
			acked.Add(int64(accepted))
			<-slots
		})
	}()
	k := 0
	for b := range batches {
		slots <- struct{}{}
		cnt := min(batch, n-k)
		// Ids unique per sensor: who*10,000,000 + k.
		msg := batchMessage(b+1, who*10_000_000+k, cnt, 1024)
		k += cnt
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errors.New("acks did not arrive")
	}
}
