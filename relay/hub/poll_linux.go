package hub

import (
	"sync"

	"golang.org/x/sys/unix"
)

// poller watches subscribers' sockets for the peer's close with one epoll
// instance and one goroutine for the whole hub. Go's own poller cannot be
// asked "tell me when this socket is closed" without a goroutine blocked in
// a read per socket, which at 10,000 subscribers is 10,000 goroutines and
// their stacks; here a subscriber costs one map entry.
//
// Sockets are registered for EPOLLRDHUP only (EPOLLHUP and EPOLLERR are
// always reported), one-shot: bytes a client sends after its request are
// ignored, a FIN or a reset is reported once. A socket is dropped from the
// epoll set by the kernel when it is closed; epoll's user data is a
// subscriber id, not the descriptor, so an event for a socket closed (and
// its number reused) meanwhile finds no subscriber and is ignored.
type poller struct {
	epfd int
	evfd int // eventfd: written by close to end run
	done chan struct{}

	mu   sync.Mutex
	subs map[uint32]*Sub
	next uint32
}

// wakeID is the epoll user data of the eventfd; subscriber ids start at 1.
const wakeID = 0

// pollBatch is how many events one epoll_wait returns at most: a reload
// storm of more closes than that is just handled over several calls.
const pollBatch = 256

// newPoller returns a running poller, or nil when epoll is not available
// (a sandbox that forbids it): subscribers are then found gone by their
// next write, as before.
func newPoller() *poller {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeID}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil
	}
	p := &poller{epfd: epfd, evfd: evfd, done: make(chan struct{}), subs: map[uint32]*Sub{}}
	go p.run()
	return p
}

// watchable is a sink on a socket whose descriptor the poller may watch.
type watchable interface {
	control(f func(fd uintptr)) error
}

// watch registers s's socket, if it has one.
func (p *poller) watch(s *Sub) {
	w, ok := s.sink.(watchable)
	if !ok {
		return
	}
	p.mu.Lock()
	for {
		p.next++
		if p.next != wakeID && p.subs[p.next] == nil {
			break
		}
	}
	id := p.next
	p.subs[id] = s
	p.mu.Unlock()
	var cerr error
	err := w.control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(id)}
		cerr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		p.mu.Lock()
		delete(p.subs, id)
		p.mu.Unlock()
		return
	}
	s.watch = id
}

// unwatch forgets s. Its socket leaves the epoll set when it is closed.
func (p *poller) unwatch(s *Sub) {
	if s.watch == 0 {
		return
	}
	p.mu.Lock()
	if p.subs[s.watch] == s {
		delete(p.subs, s.watch)
	}
	p.mu.Unlock()
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, pollBatch)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			id := uint32(ev.Fd)
			if id == wakeID {
				return
			}
			p.mu.Lock()
			s := p.subs[id]
			delete(p.subs, id)
			p.mu.Unlock()
			if s != nil {
				s.gone.Store(true)
				s.shard.poke()
			}
		}
	}
}

// close ends run and releases the descriptors.
func (p *poller) close() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.evfd, one[:])
	<-p.done
	unix.Close(p.evfd)
	unix.Close(p.epfd)
}
