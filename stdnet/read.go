package stdnet

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/bytedance/gopkg/lang/mcache"

	"github.com/strait-proxy/strait/reactor"
)

// readLoop is the connection's reader goroutine. For accepted connections it runs OnOpen
// first; dialed ones were opened by the dial task that started it.
func (c *conn) readLoop(open bool) {
	defer c.freeReadBuf()
	if open {
		c.g.mu.Lock()
		c.callOpen()
		c.g.mu.Unlock()
	}
	eof := false
	for c.state.Load() == stateOpen {
		if c.paused.Load() {
			<-c.wake
			if !c.paused.Load() {
				c.redeliver.Store(false)
				if c.rend > c.rstart && !c.deliver(false) {
					return // resumed: bytes held while paused are delivered before anything else
				}
			}
			continue
		}
		if eof {
			if c.peerEOF() {
				return
			}
			continue // paused meanwhile: OnPeerClose waits for the resume
		}
		// A resume may race this goroutine anywhere between the OnData that paused and the
		// wait for new bytes. inRead is published before redeliver is checked, and the resume
		// sets redeliver before it checks inRead, so either this check sees the resume or the
		// resume interrupts the wait below with a past deadline.
		c.inRead.Store(true)
		if c.redeliver.Swap(false) {
			c.inRead.Store(false)
			select {
			case <-c.wake:
			default:
			}
			if c.rend > c.rstart {
				if !c.deliver(false) {
					return
				}
			}
			continue
		}
		n, err := c.readSome()
		c.inRead.Store(false)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Interrupted by a resume (a deadline is never set otherwise): clear it, loop.
			_ = c.nc.SetReadDeadline(time.Time{})
			continue
		case err != nil:
			c.readFailed(err)
			return
		case n == 0:
			eof = true
		default:
			if !c.deliver(true) {
				return
			}
		}
	}
}

// readSome waits until the socket is readable without holding a buffer, then reads once
// into the pooled buffer after the unconsumed bytes. n == 0 with a nil error is EOF.
func (c *conn) readSome() (int, error) {
	c.rn, c.rerr = 0, nil
	if err := c.rc.Read(c.readFn); err != nil {
		return 0, err
	}
	return c.rn, c.rerr
}

// doRead is readSome's RawConn callback; returning false makes the runtime wait for
// readability and call it again.
func (c *conn) doRead(fd uintptr) bool {
	c.makeRoom()
	p := c.rbuf[c.rend:min(len(c.rbuf), c.rend+c.t.o.ReadBufferSize)] // one read adds at most ReadBufferSize
	for {
		n, err := syscall.Read(int(fd), p)
		switch err {
		case nil:
			c.rn = n
			c.rend += n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if c.rend == c.rstart { // nothing pending: do not hold a buffer while waiting
				c.freeReadBuf()
			}
			return false
		default:
			c.rerr = err
			return true
		}
	}
}

// makeRoom makes sure the read buffer exists and has free space after the unconsumed bytes:
// it compacts, or grows (pooled) while a partial frame is pending.
func (c *conn) makeRoom() {
	size := c.t.o.ReadBufferSize
	if c.rbuf == nil {
		c.rbuf = mcache.Malloc(size)
		c.rbuf = c.rbuf[:cap(c.rbuf)]
		c.rstart, c.rend = 0, 0
		c.t.readBufs.Add(1)
		return
	}
	minFree := max(1, min(size/2, 4<<10))
	if len(c.rbuf)-c.rend >= minFree {
		return
	}
	pending := c.rend - c.rstart
	if len(c.rbuf)-pending >= max(minFree, size/2) { // enough space once compacted
		copy(c.rbuf, c.rbuf[c.rstart:c.rend])
		c.rstart, c.rend = 0, pending
		return
	}
	nb := mcache.Malloc(pending + size)
	nb = nb[:cap(nb)]
	copy(nb, c.rbuf[c.rstart:c.rend])
	mcache.Free(c.rbuf)
	c.rbuf, c.rstart, c.rend = nb, 0, pending
}

func (c *conn) freeReadBuf() {
	if c.rbuf != nil {
		mcache.Free(c.rbuf)
		c.rbuf = nil
		c.t.readBufs.Add(-1)
	}
	c.rstart, c.rend = 0, 0
}

// deliver runs OnData on the executor unless the conn is paused (the bytes stay for the
// resume) or closed; fresh says bytes were just read. It reports whether the reader should
// go on.
func (c *conn) deliver(fresh bool) bool {
	g := c.g
	g.mu.Lock()
	if c.closed || c.state.Load() != stateOpen {
		g.mu.Unlock()
		return false
	}
	if fresh && c.hasTO.Load() {
		c.touch(true)
	}
	if c.paused.Load() {
		g.mu.Unlock()
		return true
	}
	c.callData()
	pending := c.rend - c.rstart
	if pending == 0 {
		c.freeReadBuf()
	}
	g.mu.Unlock()
	if pending > c.t.o.MaxReadBuffer {
		c.Close(fmt.Errorf("stdnet: %d bytes left unconsumed: %w", pending, reactor.ErrReadBufferOverflow))
		return false
	}
	return c.state.Load() == stateOpen
}

// peerEOF runs OnPeerClose once every byte was delivered. It reports false, without running
// it, when the conn is paused: OnPeerClose never overtakes the re-delivery after the resume.
func (c *conn) peerEOF() bool {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	if c.closed || c.state.Load() != stateOpen {
		return true
	}
	if c.paused.Load() {
		return false
	}
	if keep := c.callPeerClose(); !keep || c.localShut {
		c.Close(reactor.ErrPeerClosed)
		return true
	}
	c.peerClosed = true
	return true
}

func (c *conn) readFailed(err error) {
	if c.state.Load() != stateOpen {
		return // we closed it
	}
	if isReset(err) {
		c.terminate(fmt.Errorf("stdnet: read: %w (%w)", reactor.ErrPeerReset, err))
		return
	}
	c.terminate(fmt.Errorf("stdnet: read: %w", err))
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// view is the reactor.View over the unconsumed bytes of the read buffer; the bytes are
// always contiguous, so Peek never copies.
type view struct{ c *conn }

var _ reactor.View = (*view)(nil)

func (v *view) Len() int { return v.c.rend - v.c.rstart }

func (v *view) Peek(n int) []byte {
	c := v.c
	if n <= 0 || n > c.rend-c.rstart {
		n = c.rend - c.rstart
	}
	return c.rbuf[c.rstart : c.rstart+n : c.rstart+n]
}

func (v *view) Skip(n int) {
	c := v.c
	if n > 0 {
		c.rstart += min(n, c.rend-c.rstart)
	}
}

// Detach copies the bytes once into pooled memory: the read buffer itself goes back to the
// pool as soon as the view is consumed.
func (v *view) Detach(n int) *reactor.Buffer {
	b := reactor.NewBuffer()
	if n = min(n, v.Len()); n > 0 {
		b.AppendCopy(v.Peek(n))
		v.Skip(n)
	}
	return b
}
