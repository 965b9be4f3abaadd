package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// /api/history reads the stream by time: the incidents stored from one
// instant to another, oldest first, as the same objects as /api/live-feed
// (every stored version: an incident updated later appears again).
const (
	// historyDefault is the default limit: a few hours of a busy relay,
	// a few MiB.
	historyDefault = 5000
	// historyMax is the most one answer holds: a day of a busy relay in
	// one request, some 65 MiB at a typical 1.3 KiB per incident. The
	// answer is streamed (never built in memory) under the answer budget
	// of every plain request (2 minutes, so about 4.5 Mbit/s to get the
	// whole of it), and historyPerAddr caps how many one client reads at
	// once.
	historyMax = 50000
	// historyWindow is the default span, back from "to".
	historyWindow = 24 * time.Hour
	// historyReads caps history reads in progress on one relay: each
	// holds a consumer on the stream and reads the store, which the
	// live feed does not; eight keep the disk for ingest.
	historyReads = 8
	// historyPerAddr caps history reads in progress per client address
	// (IPv6 per /64): one page at a time is all a map needs.
	historyPerAddr = 2
	// historyWait bounds the wait for the next message of an answer. The
	// read stops by itself at the last message the stream held when the
	// request came, so this wait only runs out while messages are still
	// due: a stream leader's election (4 to 9 s) or a server that is
	// gone. Ten seconds ride out the election on a loaded machine (one
	// second cut answers short right after a node died); past that the
	// answer ends where it got to, within the answer budget.
	historyWait = 10 * time.Second
	// historyRetry bounds reading on after a failed read: two elections'
	// worth, well within the answer budget.
	historyRetry = 20 * time.Second
)

// historyQuery is a parsed /api/history request.
type historyQuery struct {
	from, to time.Time
	limit    int
	ndjson   bool
}

// parseHistoryQuery reads from, to (RFC 3339), limit and format from q, and
// the Accept header: defaults to = now, from = to - 24 h, limit 5,000. Any
// other parameter value is an error, as one line.
func parseHistoryQuery(q url.Values, accept string, now time.Time) (historyQuery, error) {
	hq := historyQuery{to: now, limit: historyDefault}
	parseTime := func(name string) (time.Time, bool, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, false, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s: want an RFC 3339 time such as 2026-03-22T10:00:00Z, got %q", name, incidentText(v))
		}
		return t, true, nil
	}
	to, ok, err := parseTime("to")
	if err != nil {
		return hq, err
	}
	if ok {
		hq.to = to
	}
	hq.from = hq.to.Add(-historyWindow)
	from, ok, err := parseTime("from")
	if err != nil {
		return hq, err
	}
	if ok {
		hq.from = from
	}
	if hq.from.After(hq.to) {
		return hq, errors.New("from: after to")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > historyMax {
			return hq, fmt.Errorf("limit: want a number from 1 to %d", historyMax)
		}
		hq.limit = n
	}
	switch f := q.Get("format"); f {
	case "":
		hq.ndjson = acceptsNDJSON(accept)
	case "json":
	case "ndjson":
		hq.ndjson = true
	default:
		return hq, fmt.Errorf("format: want json or ndjson, got %q", incidentText(f))
	}
	return hq, nil
}

// acceptsNDJSON reports whether an Accept header asks for NDJSON.
func acceptsNDJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "application/x-ndjson") {
			return true
		}
	}
	return false
}

// historyLimits counts history reads in progress, in all and per address.
type historyLimits struct {
	mu     sync.Mutex
	total  int
	byAddr map[netip.Addr]int
}

func (l *historyLimits) acquire(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr == nil {
		l.byAddr = map[netip.Addr]int{}
	}
	if l.total >= historyReads || l.byAddr[a] >= historyPerAddr {
		return false
	}
	l.total++
	l.byAddr[a]++
	return true
}

func (l *historyLimits) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[a]--; l.byAddr[a] <= 0 {
		delete(l.byAddr, a)
	}
}

// serveHistory answers /api/history.
func (r *Relay) serveHistory(w http.ResponseWriter, req *http.Request) {
	hq, err := parseHistoryQuery(req.URL.Query(), req.Header.Get("Accept"), r.now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	addr := clientAddr(req, r.cfg.ClientIPHeader)
	if !r.histLimits.acquire(addr) {
		w.Header().Set("Retry-After", retryPerAddr)
		http.Error(w, "too many history reads in progress, retry later", http.StatusTooManyRequests)
		return
	}
	defer r.histLimits.release(addr)
	// The read ends with the answer's budget, or when the client goes.
	ctx, cancel := context.WithTimeout(req.Context(), answerBudget)
	defer cancel()
	ictx, icancel := context.WithTimeout(ctx, 5*time.Second)
	info, err := r.nats.stream.Info(ictx)
	icancel()
	if err != nil {
		http.Error(w, "history unavailable: the relay cannot reach its stream, retry later", http.StatusServiceUnavailable)
		return
	}
	// The read is set up before the answer starts, so a stream that
	// does not answer is a 503, never an empty 200.
	var it jetstream.MessagesContext
	last := info.State.LastSeq
	if info.State.Msgs > 0 && !info.State.LastTime.Before(hq.from) {
		if it, err = r.historyReader(ctx, hq, 0); err != nil {
			http.Error(w, "history unavailable: the relay cannot read its stream, retry later", http.StatusServiceUnavailable)
			return
		}
	}
	ct := "application/json; charset=utf-8"
	if hq.ndjson {
		ct = "application/x-ndjson"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	b := answerWriter(w)
	defer putAnswerWriter(b)
	if !hq.ndjson {
		b.WriteByte('[')
	}
	n := 0
	emit := func(js []byte) bool {
		if !hq.ndjson && n > 0 {
			b.WriteByte(',')
		}
		n++
		if _, err := b.Write(js); err != nil {
			return false // cut off (chunkTimeout) or gone
		}
		if hq.ndjson {
			b.WriteByte('\n')
		}
		return true
	}
	if it != nil {
		r.readByTime(ctx, it, hq, last, emit)
	}
	if !hq.ndjson {
		b.WriteString("]\n")
	}
	_ = b.Flush()
}

// historyReader opens an ordered read of the stream from hq.from, or,
// when after is not 0, from the message after sequence after (to read on
// where a failed read stopped).
func (r *Relay) historyReader(ctx context.Context, hq historyQuery, after uint64) (jetstream.MessagesContext, error) {
	from := hq.from
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from}
	if after > 0 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1}
	}
	// Creating the consumer takes milliseconds with a stream leader;
	// five seconds ride out a short election.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := r.nats.js.OrderedConsumer(cctx, streamName, cfg)
	if err != nil {
		return nil, err
	}
	// The server sends at most this many ahead of what was read: a
	// small page keeps what a slow client leaves buffered small.
	return cons.Messages(jetstream.PullMaxMessages(min(hq.limit, 256)))
}

// readByTime calls emit for each incident of it stored up to hq.to,
// oldest first, at most hq.limit, up to sequence last (what the stream
// held when the request came: an answer does not grow with live ingest).
// A read that fails before it is done (an ordered consumer can fail
// around a stream leader's election) is opened again after the last
// sequence read, for up to historyRetry, so an answer is not cut short by
// a node's death.
func (r *Relay) readByTime(ctx context.Context, it jetstream.MessagesContext, hq historyQuery, last uint64, emit func([]byte) bool) {
	defer func() {
		if it != nil {
			it.Stop()
		}
	}()
	var read uint64 // the last stream sequence read
	retryUntil := time.Now().Add(historyRetry)
	for n := 0; n < hq.limit && ctx.Err() == nil; {
		m, err := it.Next(jetstream.NextMaxWait(historyWait))
		if err != nil {
			if time.Now().After(retryUntil) {
				return
			}
			it.Stop()
			for {
				select {
				case <-ctx.Done():
					it = nil
					return
				case <-time.After(200 * time.Millisecond): // a moment for a new leader
				}
				if it, err = r.historyReader(ctx, hq, read); err == nil {
					break
				}
				if time.Now().After(retryUntil) {
					it = nil
					return
				}
			}
			continue
		}
		md, err := m.Metadata()
		if err != nil || md.Sequence.Stream > last || md.Timestamp.After(hq.to) {
			return
		}
		// Validated and encoded again, as the consumer does: a stream
		// in an external cluster may have other writers.
		if p, err := r.prepare(m.Data(), nil, true); err == nil {
			if !emit(p.json) {
				return
			}
			n++
		}
		read = md.Sequence.Stream
		if md.Sequence.Stream == last || md.NumPending == 0 {
			return
		}
	}
}
