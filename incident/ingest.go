package incident

import "encoding/json"

// Ingest protocol limits (docs/DESIGN.md). A batch bigger than either is
// refused whole: 100 incidents keeps one ack's work short, 256 KiB keeps a
// sensor from pinning relay memory with a single frame.
const (
	MaxBatchIncidents = 100
	MaxMessageBytes   = 256 << 10
)

// Message types on the ingest WebSocket.
const (
	TypeIncidents = "incidents"
	TypeAck       = "ack"
)

// Batch is a sensor-to-relay message: {"type":"incidents","batch":17,
// "incidents":[...]}. Incidents are kept raw so that one malformed incident
// is rejected by its index while the rest of the batch is accepted.
type Batch struct {
	Type      string            `json:"type"`
	Batch     uint64            `json:"batch"`
	Incidents []json.RawMessage `json:"incidents"`
}

// Ack is the relay's answer to a Batch: how many incidents were accepted and
// which were rejected, by index, with a one-line reason. Duplicates (same id,
// nothing newer) count as accepted.
type Ack struct {
	Type     string      `json:"type"`
	Batch    uint64      `json:"batch"`
	Accepted int         `json:"accepted"`
	Rejected []Rejection `json:"rejected"`
}

// Rejection names one refused incident of a batch.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// TypeError is a relay-to-sensor message refusing a whole batch for a
// reason that is not the batch's fault and will pass (the history's daily
// budget is spent): {"type":"error","batch":18,"error":"..."}. It is not
// an ack: the sensor keeps the batch and sends it again later. The relay
// closes the socket (1013, try again later) right after it. An addition
// to the protocol; a sensor that does not know it sees the close.
const TypeError = "error"

// BatchError is a TypeError message.
type BatchError struct {
	Type  string `json:"type"`
	Batch uint64 `json:"batch"`
	Error string `json:"error"`
}
