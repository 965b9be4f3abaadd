package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/internal/jsonl"
)

// The one-time import: a relay from before the stream kept its history in
// daily JSONL files (history-YYYY-MM-DD.jsonl, one {"seq","at","incident"}
// line per incident) and its sequence state in a file "seq". On the first
// start of a relay with the stream, those files are published into the
// stream in order (each with its version id, so an import cut short by a
// crash is simply done again, the stored part dropped as repeats), then
// renamed *.imported. A stream created by the import starts after the
// highest sequence number the old relay may have used, so no SSE id is
// ever reused: a browser resuming from an old id gets the window of the
// imported incidents after it, or a reset.

const (
	seqFile        = "seq"
	importedSuffix = ".imported"
	// atHeader carries an imported incident's original storage time, so
	// the day's budget does not count a week of imported history as
	// today's.
	atHeader = "Attackmap-At"
)

// importBatch is how many imported messages are in flight before the
// import waits for their acks: enough to keep the store busy, bounded so
// a large history does not sit in memory.
const importBatch = 500

// openStream sets up the store, NATS and the stream, imports old history
// files, and starts the consumer.
func (r *Relay) openStream() error {
	s := &store{ring: make([]*entry, r.cfg.RingSize), byID: map[string]*entry{}, dir: r.cfg.DataDir, log: r.log,
		tick: make(chan struct{})}
	s.quota = quota{perHost: r.cfg.HistoryCapPerToken, total: r.cfg.HistoryCapTotal}
	s.quota.roll(r.now())
	r.store = s
	if s.dir != "" {
		if err := os.MkdirAll(s.dir, 0o750); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
	var files []string
	var firstSeq uint64
	if s.dir != "" {
		var err error
		if files, err = jsonl.List(s.dir, historyPrefix); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		if len(files) > 0 {
			if firstSeq, err = r.oldLastSeq(files); err != nil {
				return err
			}
			firstSeq++
		}
	}
	l, err := r.natsSetup(firstSeq)
	if err != nil {
		return err
	}
	r.nats = l
	timeout := r.cfg.NATSStartTimeout
	if timeout <= 0 {
		timeout = DefaultNATSStartTimeout
	}
	if len(files) > 0 {
		if err := r.importHistory(files); err != nil {
			l.close()
			return err
		}
	}
	if err := r.startConsumer(timeout); err != nil {
		r.stopConsumer()
		l.close()
		return err
	}
	return nil
}

// oldLastSeq returns the highest sequence number the old relay may have
// used: the larger of its state file (a reservation) and its history's
// last line. An unreadable state file adds a million (the reservation is
// lost; far more than its blocks of a thousand).
func (r *Relay) oldLastSeq(files []string) (uint64, error) {
	var n uint64
	if b, err := os.ReadFile(filepath.Join(r.cfg.DataDir, seqFile)); err == nil {
		v, perr := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		if perr != nil {
			v = 1_000_000
		}
		n = v
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("relay: reading the old sequence state: %w", err)
	}
	var skip skipped
	for _, name := range files {
		err := r.readHistory(filepath.Join(r.cfg.DataDir, name), &skip, func(line []byte) error {
			var rec struct {
				Seq uint64 `json:"seq"`
			}
			if err := json.Unmarshal(line, &rec); err != nil || rec.Seq == 0 {
				return errors.New("no seq")
			}
			n = max(n, rec.Seq)
			return nil
		}, false)
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// importHistory publishes old history files into the stream, oldest first,
// and renames them (and the sequence state) *.imported. Lines that are torn
// or do not validate are skipped and counted, as the old relay did on load;
// incidents older than the retention are left out.
func (r *Relay) importHistory(files []string) error {
	var skip skipped
	imported := 0
	cutoff := time.Time{}
	if r.cfg.RetentionDays > 0 {
		cutoff = r.now().Add(-time.Duration(r.cfg.RetentionDays) * 24 * time.Hour)
	}
	var futs []jetstream.PubAckFuture
	flush := func() error {
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("relay: importing the history into the stream: %w", err)
			}
		}
		futs = futs[:0]
		return nil
	}
	for _, name := range files {
		path := filepath.Join(r.cfg.DataDir, name)
		err := r.readHistory(path, &skip, func(line []byte) error {
			var rec historyRecord
			if err := json.Unmarshal(line, &rec); err != nil {
				return err
			}
			p, err := r.prepare(rec.Incident, nil, true)
			if err != nil {
				return err
			}
			if !cutoff.IsZero() && rec.At.Before(cutoff) {
				return nil
			}
			msg := &nats.Msg{Subject: hostSubject(p.in.Host), Data: p.json, Header: nats.Header{}}
			msg.Header.Set(atHeader, rec.At.UTC().Format(time.RFC3339Nano))
			f, err := r.nats.js.PublishMsgAsync(msg, jetstream.WithMsgID(versionID(&p.in)))
			if err != nil {
				return fmt.Errorf("%w: %w", errImport, err)
			}
			futs = append(futs, f)
			imported++
			if len(futs) >= importBatch {
				if err := flush(); err != nil {
					return fmt.Errorf("%w: %w", errImport, err)
				}
			}
			return nil
		}, true)
		if err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if skip.torn > 0 {
		r.dm2.skipped.WithLabelValues("torn").Add(float64(skip.torn))
	}
	if skip.bad > 0 {
		r.dm2.skipped.WithLabelValues("malformed").Add(float64(skip.bad))
	}
	for _, name := range append(files, seqFile) {
		path := filepath.Join(r.cfg.DataDir, name)
		if err := os.Rename(path, path+importedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("relay: marking the history imported: %w", err)
		}
	}
	r.log.Info("history files imported into the stream", "files", len(files), "incidents", imported,
		"torn", skip.torn, "malformed", skip.bad)
	return nil
}

// errImport marks a failure to publish during the import, which ends it
// (any other error of a line only skips the line).
var errImport = errors.New("import")

// skipped counts the history lines a load could not use.
type skipped struct{ torn, bad int }

// lineStart is how every history line begins (historyLine marshals the
// record with seq first). It cannot occur inside one: quotes within JSON
// strings are escaped.
var lineStart = []byte(`{"seq":`)

// readHistory calls use for each line of path. A line without its newline
// at the end of the file is torn (a crash in the middle of a write; it was
// never acknowledged): it is counted as torn, never joined to anything. A
// line use refuses is tried once more from the last lineStart inside it (a
// fragment glued to a whole line by an older writer; counted as torn);
// otherwise it is counted as malformed. An error wrapping errImport ends
// the read. With logIt, a file with skipped lines gets one log line.
func (r *Relay) readHistory(path string, skip *skipped, use func([]byte) error, logIt bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var torn, bad int
	var first string
	note := func(lineNo int, what string, err error) {
		if torn+bad == 1 {
			first = fmt.Sprintf("line %d: %s: %s", lineNo, what, oneLine(err.Error()))
		}
	}
	for lineNo := 1; ; lineNo++ {
		line, complete, err := readLine(br, 2*incident.MaxBytes)
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, errLongLine) {
			return fmt.Errorf("relay: reading %s: %w", path, err)
		}
		if !complete {
			torn++
			note(lineNo, "torn", errors.New("no newline at the end of the file"))
			break
		}
		if err == nil {
			err = use(line)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errImport) {
			return err
		}
		if i := bytes.LastIndex(line, lineStart); i > 0 && use(line[i:]) == nil {
			torn++
			note(lineNo, "torn", errors.New("a fragment glued to a whole line"))
			continue
		}
		bad++
		note(lineNo, "malformed", err)
	}
	skip.torn += torn
	skip.bad += bad
	if logIt && (torn > 0 || bad > 0) {
		r.log.Warn("history lines skipped", "file", path, "torn", torn, "malformed", bad, "first", first)
	}
	return nil
}

var errLongLine = errors.New("line too long")

// readLine returns the next line without its newline. A line longer than
// max is consumed and reported as errLongLine. Bytes after the last
// newline are returned with complete false; io.EOF means nothing is left.
func readLine(br *bufio.Reader, max int) (line []byte, complete bool, err error) {
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !long {
			if len(line)+len(chunk) > max+1 {
				long, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
			if long {
				return nil, true, errLongLine
			}
			return line[:len(line)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && (len(line) > 0 || long):
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}
