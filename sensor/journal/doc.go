// Package journal is the delivery side of the sensor's durable queue: it
// reads the daily JSONL files that internal/jsonl writes (incidents and raw
// events) and remembers, per consumer, what was delivered, so that a relay
// gets every line once across crashes and restarts.
//
// A Reader follows the files in order (woken by the writer in-process or by
// inotify), hands out batches, and records progress in two places: a cursor
// file (file, offset and inode, replaced atomically) and a compact per-file
// index of the lines acknowledged (8 bytes a line, next to the cursor).
//
// Faults the package absorbs, and how:
//
//   - A torn line (a crash or power cut in the middle of a write that the
//     writer has not healed yet) is counted as torn, not malformed, and when
//     a fragment was glued to a whole line the whole line is delivered.
//   - Readers never replay what they already sent: "file shrank" means a
//     size below the committed offset, and the sent index lets a reader
//     whose cursor is unreadable, or whose file was replaced, skip what was
//     already delivered instead of replaying days of it.
//   - A line its Check refuses is counted (Malformed), logged once with its
//     file and offset, and skipped.
//
// The file format and the cursor are described in docs/DESIGN.md.
package journal
