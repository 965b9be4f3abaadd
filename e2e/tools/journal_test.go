package tools

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"

	"github.com/attackmap/attackmap/incident"
)

// readJSONL calls fn with every complete line of the files matching
// pattern, oldest file first. A last line without its newline is still
// being written: it is left for the next read, as the sensor's own reader
// does.
func readJSONL(pattern string, fn func(line []byte) error) error {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return err
	}
	sort.Strings(files) // YYYY-MM-DD names sort by date
	for _, name := range files {
		if err := readLines(name, fn); err != nil {
			return err
		}
	}
	return nil
}

func readLines(name string, fn func(line []byte) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	// 1 MiB: events and incidents lines are capped far below it (an
	// incident at 16 KiB), so a longer line means a broken journal.
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%s: a line over %d bytes", name, r.Size())
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(line[:len(line)-1]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
}

// readIncidents returns the latest copy of every incident in the sensor's
// incidents journals, in the order they were first raised: a growing
// incident is written again with the same id.
func readIncidents(dataDir string) ([]incident.Incident, error) {
	var out []incident.Incident
	at := map[string]int{}
	err := readJSONL(filepath.Join(dataDir, "incidents-*.jsonl"), func(line []byte) error {
		in, err := incident.Decode(line)
		if err != nil {
			return err
		}
		if i, ok := at[in.ID]; ok {
			out[i] = in
			return nil
		}
		at[in.ID] = len(out)
		out = append(out, in)
		return nil
	})
	return out, err
}

// readEvents counts the raw events the sensor parsed, by source address
// and kind: they tell a line the parser did not understand from an event
// no detector acted on.
func readEvents(dataDir string) (map[netip.Addr]map[string]int, error) {
	got := map[netip.Addr]map[string]int{}
	err := readJSONL(filepath.Join(dataDir, "events-*.jsonl"), func(line []byte) error {
		var ev struct {
			Kind  string     `json:"kind"`
			SrcIP netip.Addr `json:"src_ip"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			return err
		}
		if !ev.SrcIP.IsValid() {
			return nil
		}
		m := got[ev.SrcIP.Unmap()]
		if m == nil {
			m = map[string]int{}
			got[ev.SrcIP.Unmap()] = m
		}
		m[ev.Kind]++
		return nil
	})
	return got, err
}
