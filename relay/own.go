package relay

import (
	"bytes"
	"container/list"
	"sync"
)

// ownPrepared holds the incidents this relay prepared in publish until its
// own consumer reads them back from the stream, so each incident is
// prepared (decoded, validated, stamped, masked, encoded) once on the relay
// that ingests it instead of twice (one encode per trust boundary,
// docs/DESIGN.md). A message the consumer reads is looked up by its Nats-Msg-Id
// (versionID) and used only when its bytes are exactly the ones prepared
// here; anything else (another relay's or an external writer's message,
// a re-read after a consumer reset, an evicted entry) is prepared from the
// stream as before. That is safe because prepare is idempotent on its own
// output: prepare(p.json, nil, true) gives p again (FuzzDecodeBatch and
// TestOwnPreparedIsWhatTheStreamGives check it), so a hit applies exactly
// what a miss would.
//
// It is safe for concurrent use: publish runs on every ingest connection
// at once, take on the consumer's goroutine.
type ownPrepared struct {
	mu    sync.Mutex
	byID  map[string]*list.Element // of *ownEntry
	order list.List                // oldest first
	bytes int
}

type ownEntry struct {
	id string
	p  prepared
}

// Bounds of ownPrepared. An entry normally lives from its publish to its
// read-back, well under a millisecond in process (confirm waits for it
// before acknowledging the batch), so only the batches in flight at once
// are held: a few per ingest connection. The caps are for a consumer that
// stopped delivering (a lost or stuck consumer, a reset that skips nothing
// but re-reads from later): without them such a stream would grow the map
// for ever. Past them the oldest entries go first, which costs at most a
// prepare each when they are read back after all. 4,096 entries are 40
// full batches in flight; 8 MiB bounds the memory whatever the incidents'
// size (the json plus its decoded form, about twice that, against the
// relay's other buffers of hundreds of MiB).
const (
	ownMaxEntries = 4096
	ownMaxBytes   = 8 << 20
)

func newOwnPrepared() *ownPrepared {
	return &ownPrepared{byID: map[string]*list.Element{}}
}

// put remembers p, published under the message id id. A second put of the
// same id (the same version sent again, on another socket, before the
// first was read back) replaces the first: the stream stores one message
// per id, and take checks its bytes.
func (o *ownPrepared) put(id string, p prepared) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if el, ok := o.byID[id]; ok {
		o.remove(el)
	}
	o.byID[id] = o.order.PushBack(&ownEntry{id: id, p: p})
	o.bytes += len(p.json)
	for o.order.Len() > ownMaxEntries || o.bytes > ownMaxBytes {
		o.remove(o.order.Front())
	}
}

// take returns and forgets what was prepared for the message id when its
// stored bytes are data. The entry is forgotten either way: the stream
// holds one message per id, so an entry whose bytes differ (another
// writer's message stored first) will never match.
func (o *ownPrepared) take(id string, data []byte) (prepared, bool) {
	if id == "" {
		return prepared{}, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	el, ok := o.byID[id]
	if !ok {
		return prepared{}, false
	}
	o.remove(el)
	e := el.Value.(*ownEntry)
	if !bytes.Equal(e.p.json, data) {
		return prepared{}, false
	}
	return e.p, true
}

// drop forgets the entry for the message id when it holds json: the
// message was not stored (a publish error) or was a repeat the stream
// dropped (a duplicate ack), so it will not be read back. An entry with
// other bytes belongs to another publish of the same id and stays.
func (o *ownPrepared) drop(id string, json []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if el, ok := o.byID[id]; ok && bytes.Equal(el.Value.(*ownEntry).p.json, json) {
		o.remove(el)
	}
}

// remove forgets el. Called with o.mu held.
func (o *ownPrepared) remove(el *list.Element) {
	e := o.order.Remove(el).(*ownEntry)
	delete(o.byID, e.id)
	o.bytes -= len(e.p.json)
}
