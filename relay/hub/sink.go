package hub

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Sink is where a subscriber's bytes go. TryWrite must not wait: it writes a
// prefix of bufs (in order) and returns its length in bytes, 0 and no error
// when nothing could be taken right now. It is called from one writer
// goroutine at a time; Close may be called from another.
type Sink interface {
	TryWrite(bufs [][]byte) (int, error)
	Close() error
}

// Unwrapper is a connection wrapper that adds nothing to the bytes written
// (one that counts connections, say): ConnSink writes to the connection
// UnwrapConn returns and still closes the wrapper. A wrapper that changes
// the bytes (TLS) must not implement it.
type Unwrapper interface {
	UnwrapConn() net.Conn
}

// ConnSink returns the cheapest Sink for c: on Linux a TCP or Unix socket
// (also one under an Unwrapper) is written with non-blocking writev straight
// from the writer goroutine, so the subscriber needs no goroutine and no
// buffer of its own, and is watched for the peer's close. Other connections
// (TLS, pipes) get a QueueSink whose goroutine writes with a deadline.
func ConnSink(c net.Conn, writeTimeout time.Duration) Sink {
	if s := rawSink(c); s != nil {
		return s
	}
	q := NewQueueSink(func(b []byte) error {
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := c.Write(b)
		return err
	}, nil, c.Close)
	go q.Run()
	return q
}

// aborter is a sink that can be closed with a reset, dropping unsent data;
// the hub uses it for subscribers cut off as slow.
type aborter interface {
	abort() error
}

// QueueSink adapts a blocking writer (an http.ResponseWriter that cannot be
// hijacked, a TLS connection) to Sink: TryWrite queues whole buffers on a
// bounded channel and Run writes them. It costs a goroutine and a small
// queue, so the hub only uses it when a raw socket is not available.
type QueueSink struct {
	write   func([]byte) error
	flush   func() error
	closeFn func() error

	q    chan []byte
	done chan struct{}
	once sync.Once

	mu  sync.Mutex
	err error
}

// queueDepth bounds a QueueSink: 64 buffers are several bursts of frames;
// beyond that the subscriber counts as blocked and the hub's MaxQueue and
// WriteTimeout decide when to cut it off.
const queueDepth = 64

var errSinkClosed = errors.New("hub: sink closed")

// NewQueueSink returns a QueueSink that calls write for each buffer and
// flush (if not nil) whenever the queue runs empty. closeFn (if not nil) is
// called once by Close. Start Run in its own goroutine.
func NewQueueSink(write func([]byte) error, flush func() error, closeFn func() error) *QueueSink {
	return &QueueSink{write: write, flush: flush, closeFn: closeFn,
		q: make(chan []byte, queueDepth), done: make(chan struct{})}
}

// TryWrite queues as many whole buffers as fit.
func (s *QueueSink) TryWrite(bufs [][]byte) (int, error) {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range bufs {
		select {
		case <-s.done:
			return n, errSinkClosed
		case s.q <- b:
			n += len(b)
		default:
			return n, nil
		}
	}
	return n, nil
}

// Run writes queued buffers until Close or a write error. It returns the
// write error, if any.
func (s *QueueSink) Run() error {
	for {
		select {
		case <-s.done:
			return nil
		case b := <-s.q:
			err := s.write(b)
			if err == nil && len(s.q) == 0 && s.flush != nil {
				err = s.flush()
			}
			if err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return err
			}
		}
	}
}

// Done is closed by Close.
func (s *QueueSink) Done() <-chan struct{} { return s.done }

// Close stops Run and calls the close function once.
func (s *QueueSink) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		if s.closeFn != nil {
			err = s.closeFn()
		}
	})
	return err
}
