//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"log"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// maxIov is the most slices one sendmsg takes (IOV_MAX is 1024; 64 covers any real vector).
const maxIov = 64

// copyCoalesce is the largest queued copy that later small writes are appended to.
const copyCoalesce = 64 << 10

// writeQueue is the outbound FIFO: owned Buffers from Send, and copies of what Write could not
// hand to the kernel at once.
type writeQueue struct {
	bufs []*reactor.Buffer
	n    int  // queued bytes
	tail bool // the last Buffer holds our own copies and may take more
}

func (q *writeQueue) push(b *reactor.Buffer, ours bool) {
	q.bufs = append(q.bufs, b)
	q.n += b.Len()
	q.tail = ours
}

// pushCopy queues copies of bufs, skipping the first skip bytes.
func (q *writeQueue) pushCopy(bufs [][]byte, skip int) {
	var b *reactor.Buffer
	if q.tail && len(q.bufs) > 0 && q.bufs[len(q.bufs)-1].Len() < copyCoalesce {
		b = q.bufs[len(q.bufs)-1]
	} else {
		b = reactor.NewBuffer()
		q.bufs = append(q.bufs, b)
		q.tail = true
	}
	for _, p := range bufs {
		if skip >= len(p) {
			skip -= len(p)
			continue
		}
		p = p[skip:]
		skip = 0
		b.AppendCopy(p)
		q.n += len(p)
	}
}

// vec fills dst with the queued slices, in order.
func (q *writeQueue) vec(dst [][]byte) [][]byte {
	dst = dst[:0]
	for _, b := range q.bufs {
		for _, p := range b.Bytes() {
			if len(dst) == cap(dst) {
				return dst
			}
			dst = append(dst, p)
		}
	}
	return dst
}

// consume drops n written bytes, releasing Buffers that were fully written.
func (q *writeQueue) consume(n int) {
	q.n -= n
	i := 0
	for ; i < len(q.bufs) && n > 0; i++ {
		b := q.bufs[i]
		if l := b.Len(); n < l {
			b.Consume(n)
			break
		} else {
			n -= l
			b.Release()
			q.bufs[i] = nil
		}
	}
	if i > 0 {
		m := copy(q.bufs, q.bufs[i:])
		clear(q.bufs[m:])
		q.bufs = q.bufs[:m]
	}
	if len(q.bufs) == 0 {
		q.tail = false
	}
}

// take empties the queue; the caller releases the result outside its lock.
func (q *writeQueue) take() writeQueue {
	out := *q
	*q = writeQueue{bufs: q.bufs[:0:0]}
	return out
}

func (q writeQueue) release() {
	for _, b := range q.bufs {
		b.Release()
	}
}

// sendv writes bufs with one non-blocking sendmsg (MSG_NOSIGNAL: a dead peer is EPIPE, not
// SIGPIPE). EAGAIN is reported as 0 bytes and no error.
func sendv(fd int, bufs [][]byte) (int, error) {
	var iov [maxIov]unix.Iovec
	n := 0
	for _, p := range bufs {
		if len(p) == 0 {
			continue
		}
		iov[n].Base = &p[0]
		iov[n].SetLen(len(p))
		n++
		if n == maxIov {
			break
		}
	}
	if n == 0 {
		return 0, nil
	}
	var msg unix.Msghdr
	msg.Iov = &iov[0]
	msg.SetIovlen(n)
	for {
		r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)),
			unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		default:
			return 0, e
		}
	}
}

// writeErr maps a send error to the close reason.
func writeErr(err error) error {
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return fmt.Errorf("reactor/netpoll: write: %w: %v", reactor.ErrPeerReset, err)
	}
	return fmt.Errorf("reactor/netpoll: write: %w", err)
}

// Write sends p, queueing a copy of what the kernel did not take.
func (c *conn) Write(p []byte) error {
	one := [1][]byte{p}
	return c.write(one[:], nil)
}

// Writev sends bufs with one sendmsg where possible.
func (c *conn) Writev(bufs [][]byte) error { return c.write(bufs, nil) }

// Send queues an owned Buffer; it is released after its bytes were written or on close.
func (c *conn) Send(b *reactor.Buffer) error {
	if b == nil {
		return nil
	}
	return c.write(b.Bytes(), b)
}

// write is Write, Writev and Send: when nothing is queued it tries the kernel directly (no
// copy when it takes everything), then queues the rest: owned as is, borrowed as a copy.
func (c *conn) write(bufs [][]byte, owned *reactor.Buffer) error {
	total := 0
	for _, p := range bufs {
		total += len(p)
	}
	c.wmu.Lock()
	if c.wclosed || c.closing.Load() || c.wshut || c.shutPending {
		c.wmu.Unlock()
		owned.Release()
		if c.wshut || c.shutPending {
			return fmt.Errorf("reactor/netpoll: write after CloseWrite: %w", reactor.ErrClosed)
		}
		return fmt.Errorf("reactor/netpoll: write: %w", reactor.ErrClosed)
	}
	if total == 0 {
		c.wmu.Unlock()
		owned.Release()
		return nil
	}
	sent := 0
	if c.q.n == 0 {
		// One attempt: what the kernel does not take now goes to the queue, and arming the
		// write poller re-checks writability, so a second try here would only cost a syscall.
		n, err := sendv(c.wfd, bufs)
		if err != nil {
			c.wmu.Unlock()
			owned.Release()
			err = writeErr(err)
			c.closeWith(err)
			return err
		}
		sent = n
	}
	if left := total - sent; left > 0 {
		if c.q.n+left > c.t.o.MaxWriteBuffer {
			c.wmu.Unlock()
			owned.Release()
			err := fmt.Errorf("reactor/netpoll: %d bytes queued, limit %d: %w",
				c.q.n+left, c.t.o.MaxWriteBuffer, reactor.ErrWriteBufferOverflow)
			c.closeWith(err)
			return err
		}
		wasEmpty := c.q.n == 0
		if owned != nil {
			owned.Consume(sent)
			c.q.push(owned, false)
			owned = nil
		} else {
			c.q.pushCopy(bufs, sent)
		}
		if wasEmpty {
			c.e.wp.arm(c)
		}
		c.outbound.Store(int64(c.q.n))
		if c.q.n > c.t.o.HighWatermark {
			c.congested.Store(true)
		}
	}
	c.wmu.Unlock()
	owned.Release() // fully written (nil when queued)
	if sent > 0 {
		c.activity(false)
	}
	return nil
}

// Outbound is the number of queued bytes.
func (c *conn) Outbound() int { return int(c.outbound.Load()) }

// Congested reports the high/low watermark state.
func (c *conn) Congested() bool { return c.congested.Load() }

// CloseWrite shuts down the write direction once the queue drained.
func (c *conn) CloseWrite() error {
	c.wmu.Lock()
	if c.wclosed || c.closing.Load() {
		c.wmu.Unlock()
		return fmt.Errorf("reactor/netpoll: CloseWrite: %w", reactor.ErrClosed)
	}
	if c.wshut || c.shutPending {
		c.wmu.Unlock()
		return nil
	}
	if c.q.n > 0 {
		c.shutPending = true
		c.wmu.Unlock()
		return nil
	}
	err := unix.Shutdown(c.wfd, unix.SHUT_WR)
	c.wshut = true
	both := c.halfClosed
	c.wmu.Unlock()
	if err != nil {
		err = fmt.Errorf("reactor/netpoll: CloseWrite: %w", err)
		c.closeWith(err)
		return err
	}
	if both { // the peer's side ended before: both directions are done
		c.Close(reactor.ErrPeerClosed)
	}
	return nil
}

// flush runs on the write poller when the socket became writable (or reported an error).
func (c *conn) flush(events uint32) {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return
	}
	var vs [maxIov][]byte
	wrote := 0
	var werr error
	for c.q.n > 0 {
		n, err := sendv(c.wfd, c.q.vec(vs[:]))
		if err != nil {
			werr = err
			break
		}
		if n == 0 {
			break
		}
		wrote += n
		c.q.consume(n)
	}
	clear(vs[:])
	if werr == nil && c.q.n == 0 && events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 && c.halfClosed {
		// Nothing to write, but the half-open socket reports a failure.
		if errno := socketError(c.wfd); errno != 0 {
			werr = errno
		}
	}
	c.outbound.Store(int64(c.q.n))
	empty := c.q.n == 0
	writable := c.congested.Load() && c.q.n < c.t.o.LowWatermark
	doClose := empty && c.flushClose
	both := false
	if empty && c.shutPending && werr == nil {
		c.shutPending = false
		c.wshut = true
		if err := unix.Shutdown(c.wfd, unix.SHUT_WR); err != nil {
			werr = err
		}
		both = c.halfClosed
	}
	c.wmu.Unlock()
	if wrote > 0 {
		c.activity(false)
	}
	switch {
	case werr != nil:
		c.closeWith(writeErr(werr))
	case doClose:
		c.closeNow()
	case both:
		c.Close(reactor.ErrPeerClosed)
	}
	if writable && werr == nil && c.posted.CompareAndSwap(false, true) {
		c.e.submit(c, c.writableTask)
	}
}

// writableTask clears the congestion and runs OnWritable on the executor.
func (c *conn) writableTask() {
	c.posted.Store(false)
	if c.closing.Load() || !c.congested.Load() {
		return
	}
	if c.outbound.Load() >= int64(c.t.o.LowWatermark) {
		return // refilled meanwhile (Send); a later flush posts again
	}
	c.congested.Store(false)
	c.h.OnWritable(c)
}

// writePoller is an epoll instance that waits for EPOLLOUT on sockets with queued bytes (and
// for errors on half-closed ones) and flushes them. Its event data is the connection id, so a
// stale event can never reach another connection.
type writePoller struct {
	t    *transport
	epfd int
	evfd int
	done chan struct{}
}

func newWritePoller(t *transport) (*writePoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("reactor/netpoll: epoll_create: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("reactor/netpoll: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		_ = unix.Close(evfd)
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("reactor/netpoll: epoll_ctl: %w", err)
	}
	wp := &writePoller{t: t, epfd: epfd, evfd: evfd, done: make(chan struct{})}
	go wp.loop()
	return wp, nil
}

func eventFor(id uint64) unix.EpollEvent {
	return unix.EpollEvent{
		Events: unix.EPOLLOUT | unix.EPOLLET,
		Fd:     int32(uint32(id)),
		Pad:    int32(uint32(id >> 32)),
	}
}

// arm (c.wmu held) asks for a writability event: the first time it registers, afterwards it
// re-arms (EPOLL_CTL_MOD re-checks readiness, so an edge that came before is not lost).
func (wp *writePoller) arm(c *conn) {
	ev := eventFor(c.id)
	op := unix.EPOLL_CTL_MOD
	if !c.wreg {
		op = unix.EPOLL_CTL_ADD
	}
	if err := unix.EpollCtl(wp.epfd, op, c.wfd, &ev); err != nil {
		log.Printf("reactor/netpoll: conn %d: write poller: %v", c.id, err)
		return
	}
	c.wreg = true
}

// register (c.wmu held) puts a half-closed socket on the poller for good.
func (wp *writePoller) register(c *conn) { wp.arm(c) }

// deregister (c.wmu held, fd still open) takes c.wfd off the poller.
func (wp *writePoller) deregister(c *conn) {
	if c.wreg {
		_ = unix.EpollCtl(wp.epfd, unix.EPOLL_CTL_DEL, c.wfd, nil)
		c.wreg = false
	}
}

func (wp *writePoller) loop() {
	defer close(wp.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(wp.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			log.Printf("reactor/netpoll: write poller: %v", err)
			return
		}
		for i := range events[:n] {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if id == 0 { // the eventfd: stop
				return
			}
			if c := wp.t.lookup(id); c != nil {
				c.flush(events[i].Events)
			}
		}
	}
}

// stop ends the loop and closes the poller's descriptors.
func (wp *writePoller) stop() {
	var one = [8]byte{7: 1}
	_, _ = unix.Write(wp.evfd, one[:])
	<-wp.done
	_ = unix.Close(wp.evfd)
	_ = unix.Close(wp.epfd)
}
