package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
)

// sentSuffix names the directory of a cursor's sent index:
// cursor-local.json gives cursor-local.json.sent/.
const sentSuffix = ".sent"

// idsExt ends an index file: incidents-2026-03-22.jsonl.ids holds the
// hashes of the lines of incidents-2026-03-22.jsonl that were acknowledged.
const idsExt = ".ids"

// maxIndexBytes caps the index of one journal file that a reader loads:
// 8 MiB is a million acknowledged lines, far above a day of incidents;
// past it the rest is ignored (and could be resent once), so a corrupt or
// foreign file cannot make the reader allocate without bound.
const maxIndexBytes = 8 << 20

// LineHash is the hash recorded in the sent index for a journal line: 64-bit
// FNV-1a of its bytes (without the newline). Two copies of an incident with
// different content (a newer last_seen, a higher count) hash differently,
// so an update is never mistaken for a line already sent.
func LineHash(line []byte) uint64 {
	h := fnv.New64a()
	h.Write(line)
	return h.Sum64()
}

// sentIndex is the compact record of acknowledged lines kept next to a
// cursor: per journal file, an append-only file of 8-byte hashes. It is
// written without fsync (a crash of the process keeps it in the page
// cache; a power cut may lose its last lines, which costs a resend the
// relay drops), and pruned with the journal: the index of a journal file
// that retention removed is removed too.
type sentIndex struct{ dir string }

func newSentIndex(cursorPath string) sentIndex {
	return sentIndex{dir: cursorPath + sentSuffix}
}

func (s sentIndex) path(file string) string { return filepath.Join(s.dir, file+idsExt) }

// add appends hashes to file's index in one write.
func (s sentIndex) add(file string, hashes []uint64) error {
	if len(hashes) == 0 {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path(file), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	buf := make([]byte, 8*len(hashes))
	for i, h := range hashes {
		binary.LittleEndian.PutUint64(buf[8*i:], h)
	}
	n, err := f.Write(buf)
	if err != nil && n%8 != 0 {
		// Keep whole records: a torn one would shift every later hash.
		if st, serr := f.Stat(); serr == nil {
			_ = f.Truncate(st.Size() - int64(n%8))
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// load returns the hashes recorded for file (an empty set when there is no
// index). A trailing partial record is ignored.
func (s sentIndex) load(file string) (map[uint64]struct{}, error) {
	f, err := os.Open(s.path(file))
	if errors.Is(err, os.ErrNotExist) {
		return map[uint64]struct{}{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := min(st.Size(), maxIndexBytes) / 8 * 8
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && int64(len(buf)) > 0 {
		return nil, fmt.Errorf("reading %s: %w", s.path(file), err)
	}
	set := make(map[uint64]struct{}, n/8)
	for i := int64(0); i < n; i += 8 {
		set[binary.LittleEndian.Uint64(buf[i:])] = struct{}{}
	}
	return set, nil
}

// size returns how many hashes the index holds, in how many files.
func (s sentIndex) size() (lines int64, files int) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), idsExt) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			lines += fi.Size() / 8
			files++
		}
	}
	return lines, files
}

// prune removes the index files of journal files that are gone.
func (s sentIndex) prune(journalDir string) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), idsExt)
		if !ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(journalDir, name)); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}
