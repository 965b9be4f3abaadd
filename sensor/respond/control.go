package respond

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ControlSocket is the name of the running sensor's control socket under
// the data directory: `attackmap-sensor block` talks to it, so its changes
// go through the one process that owns the state. Only the owner (root)
// may connect (mode 0600).
const ControlSocket = "response.sock"

// Request is one control command (one JSON line).
type Request struct {
	Op    string `json:"op"` // list, add, remove, flush, stats
	Addr  string `json:"addr,omitempty"`
	TTL   string `json:"ttl,omitempty"`
	Force bool   `json:"force,omitempty"`
}

// Reply answers a Request (one JSON line).
type Reply struct {
	Error   string      `json:"error,omitempty"`
	Entries []ListEntry `json:"entries,omitempty"`
	Entry   *Entry      `json:"entry,omitempty"`
	Stats   *Stats      `json:"stats,omitempty"`
}

// Timeouts of the control socket. A command is one short line and a
// netlink round trip; 10 s covers a flush of 100,000 entries on a loaded
// host, and a client that sends nothing is cut off instead of pinning a
// goroutine.
const (
	controlTimeout = 10 * time.Second
	// maxRequest caps a request line: a command is under 200 bytes.
	maxRequest = 4 << 10
)

func listenControl(dir string) (net.Listener, error) {
	path := filepath.Join(dir, ControlSocket)
	// A socket left by a crashed sensor: nobody answers on it (the state
	// lock, held by this process now, proves no other sensor runs here).
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The data directory is 0750 already; the socket itself is the
	// owner's only.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func serveControl(ctx context.Context, ln net.Listener, r *Responder) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(controlTimeout))
			br := bufio.NewReaderSize(c, 512)
			line, err := readLine(br)
			var rep Reply
			if err != nil {
				rep.Error = err.Error()
			} else {
				var req Request
				if err := json.Unmarshal(line, &req); err != nil {
					rep.Error = "bad request: " + err.Error()
				} else {
					cctx, cancel := context.WithTimeout(ctx, controlTimeout)
					rep = r.Do(cctx, req)
					cancel()
				}
			}
			b, _ := json.Marshal(&rep)
			_, _ = c.Write(append(b, '\n'))
		}()
	}
}

func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > maxRequest {
			return nil, errors.New("request too long")
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// Do runs one control command.
func (r *Responder) Do(ctx context.Context, req Request) Reply {
	var rep Reply
	fail := func(err error) Reply { return Reply{Error: err.Error()} }
	switch req.Op {
	case "list":
		es, err := r.ManualList(ctx)
		if err != nil {
			return fail(err)
		}
		rep.Entries = es
	case "add":
		a, err := netip.ParseAddr(req.Addr)
		if err != nil {
			return fail(fmt.Errorf("address %q: %w", req.Addr, err))
		}
		var ttl time.Duration
		if req.TTL != "" {
			if ttl, err = ParseDuration(req.TTL); err != nil {
				return fail(err)
			}
			if ttl < time.Second {
				return fail(errors.New("ttl under one second"))
			}
		}
		e, err := r.ManualAdd(ctx, a, ttl, req.Force)
		if err != nil {
			return fail(err)
		}
		rep.Entry = &e
	case "remove":
		a, err := netip.ParseAddr(req.Addr)
		if err != nil {
			return fail(fmt.Errorf("address %q: %w", req.Addr, err))
		}
		if err := r.ManualRemove(ctx, a); err != nil {
			return fail(err)
		}
	case "flush":
		if err := r.ManualFlush(ctx); err != nil {
			return fail(err)
		}
	case "stats":
		s := r.Stats()
		rep.Stats = &s
	default:
		return fail(fmt.Errorf("unknown op %q", req.Op))
	}
	return rep
}

// ErrNotRunning means no sensor answers on the control socket.
var ErrNotRunning = errors.New("response: no running sensor answers on the control socket")

// Call sends req to the sensor running on dataDir. It returns
// ErrNotRunning when none answers, so the caller can act directly.
func Call(ctx context.Context, dataDir string, req Request) (Reply, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dataDir, ControlSocket))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return Reply{}, ErrNotRunning
		}
		return Reply{}, fmt.Errorf("response: control socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout + 5*time.Second))
	b, _ := json.Marshal(&req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return Reply{}, fmt.Errorf("response: control socket: %w", err)
	}
	var rep Reply
	// A reply holds at most max_entries list rows of ~200 bytes.
	dec := json.NewDecoder(bufio.NewReader(c))
	if err := dec.Decode(&rep); err != nil {
		return Reply{}, fmt.Errorf("response: control socket: %w", err)
	}
	return rep, nil
}

// Direct runs req without a running sensor: it takes the state lock (so a
// sensor starting meanwhile waits), opens the state and the backend, runs
// the command and saves. opts.Manual is set for it.
func Direct(ctx context.Context, opts Options, req Request) (Reply, error) {
	opts.Manual = true
	r, err := New(opts)
	if err != nil {
		return Reply{}, err
	}
	defer r.Close()
	unlock, err := lockState(opts.DataDir)
	if err != nil {
		if errors.Is(err, errLocked) {
			return Reply{}, errors.New("response: the state is locked (a sensor is starting or another block command runs); try again")
		}
		return Reply{}, err
	}
	r.unlock = unlock
	r.guard.refreshOwn()
	r.guard.refreshRelays(ctx)
	r.socks.refresh()
	return r.Do(ctx, req), nil
}
