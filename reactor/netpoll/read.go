//go:build linux

package netpoll

import (
	"context"
	"fmt"
	"time"

	np "github.com/cloudwego/netpoll"

	"github.com/strait-proxy/strait/reactor"
)

// serve is the connection's OnRequest: netpoll runs it on a pooled task whenever bytes are
// buffered and runs it again while Len() > 0 after it returns. So it never returns with bytes
// left unless the connection is going away: it delivers them, and when the handler leaves some
// or paused, it parks (Peek(len+1) until more arrive, or the wake channel while paused).
func (c *conn) serve(_ context.Context, nc np.Connection) error {
	r := nc.Reader()
	for {
		gen := c.wakeGen.Load()
		if c.closing.Load() {
			discard(r)
			return nil
		}
		n := r.Len()
		paused := c.paused.Load()
		if n > 0 && !paused && (n > c.left || c.resumed.Swap(false)) {
			// The view offers at most readAhead bytes beyond what the handler left last time
			// (netpoll may have slurped much more: it reads a socket to the end on a FIN, and
			// a forwarder writes whatever it is shown), and never more than one byte past
			// MaxReadBuffer: a handler that leaves that much is closed below.
			avail := min(n, c.left+c.t.readAhead, c.t.o.MaxReadBuffer+1)
			c.view.avail, c.view.consumed = avail, 0
			if !c.deliver(avail > c.left) {
				continue // paused or closed meanwhile: nothing was shown
			}
			_ = r.Release() // views handed to OnData are dead now
			c.left = avail - c.view.consumed
			c.readLimit.Store(int64(c.left + c.t.readAhead))
			c.updateInterest()
			if c.left > c.t.o.MaxReadBuffer {
				c.overflow(r, c.left)
				return nil
			}
			continue
		}
		if n == 0 {
			return nil
		}
		// Bytes remain: reading is paused, or the handler left them and nothing new came.
		if !nc.IsActive() { // the peer ended the connection (we would be closing otherwise)
			if paused && !c.peerReset() {
				// OnPeerClose must wait for the resume and the re-delivery: keep the bytes
				// (and netpoll's close callbacks, which wait for this task) until then.
				c.waitWake(gen)
				continue
			}
			discard(r) // a reset, or the truncated tail the handler did not want
			return nil
		}
		if paused {
			if c.hk == nil && n > c.t.o.MaxReadBuffer { // soft pause: netpoll kept reading
				c.overflow(r, n)
				return nil
			}
			c.waitWake(gen)
			continue
		}
		_, _ = r.Peek(c.left + 1) // more bytes, a close, or errWake
	}
}

// peerReset reports, from the reader task while netpoll still holds the fd, whether the
// connection ended with a reset rather than a FIN.
func (c *conn) peerReset() bool {
	c.wmu.Lock()
	shut := c.wshut
	c.wmu.Unlock()
	return classifyEnd(c.fd, shut) == endReset
}

// deliver runs OnData under the executor lock, unless the connection was paused or closed
// while the task waited for the lock; it reports whether OnData ran.
func (c *conn) deliver(fresh bool) bool {
	e := c.e
	e.mu.Lock()
	ok := !c.paused.Load() && !c.closing.Load()
	if ok {
		if fresh {
			c.activity(true)
		}
		e.call(c, c.onDataFn)
	}
	e.mu.Unlock()
	return ok
}

func (c *conn) onData() { c.h.OnData(c, &c.view) }

// overflow closes a connection whose unconsumed input passed MaxReadBuffer.
func (c *conn) overflow(r np.Reader, n int) {
	discard(r)
	c.closeWith(fmt.Errorf("reactor/netpoll: %w: %d bytes unconsumed, limit %d",
		reactor.ErrReadBufferOverflow, n, c.t.o.MaxReadBuffer))
}

func discard(r np.Reader) {
	if n := r.Len(); n > 0 {
		_ = r.Skip(n)
	}
	_ = r.Release()
}

// PauseRead stops or resumes delivery and, with the netpoll hooks, reading from the socket.
func (c *conn) PauseRead(paused bool) {
	if c.paused.Load() == paused {
		return
	}
	c.paused.Store(paused)
	c.updateInterest()
	if paused {
		return
	}
	c.resumed.Store(true)
	c.wake()
	if c.peerClosePending {
		c.peerClosePending = false
		c.e.submit(c, c.peerClosedFn)
	}
}

// afterRead runs on netpoll's poller after each read into the connection's buffer.
func (c *conn) afterRead() {
	if c.interestN.Load() && !c.paused.Load() &&
		int64(c.nc.Reader().Len()) < c.readLimit.Load() {
		return // the common case: nothing to change
	}
	c.updateInterest()
}

// updateInterest makes the epoll registration match the state: reading is on unless paused or
// the handler is readAhead bytes behind.
func (c *conn) updateInterest() {
	if c.hk == nil {
		return
	}
	c.imu.Lock()
	want := !c.paused.Load() && int64(c.nc.Reader().Len()) < c.readLimit.Load()
	if c.fdValid && !c.shut.Load() && want != c.interest {
		if err := c.hk.setReadInterest(want); err == nil {
			c.interest = want
			c.interestN.Store(want)
		}
	}
	c.imu.Unlock()
}

// wake rouses a parked reader task.
func (c *conn) wake() {
	c.wakeGen.Add(1)
	c.imu.Lock()
	if c.wakeCh != nil {
		select {
		case c.wakeCh <- struct{}{}:
		default:
		}
	}
	c.imu.Unlock()
	if c.hk != nil {
		c.hk.wake()
	}
}

// waitWake parks the reader task until wake runs after gen was read.
func (c *conn) waitWake(gen uint64) {
	c.imu.Lock()
	if c.wakeCh == nil {
		c.wakeCh = make(chan struct{}, 1)
	}
	ch := c.wakeCh
	c.imu.Unlock()
	if c.wakeGen.Load() != gen {
		return
	}
	if c.hk != nil {
		<-ch
		return
	}
	// Soft pause: netpoll keeps reading, so look at the buffer now and then.
	tm := time.NewTimer(c.t.o.TimerTick)
	select {
	case <-ch:
	case <-tm.C:
	}
	tm.Stop()
}

// view is the reactor.View over netpoll's input LinkBuffer. It is a snapshot: netpoll's poller
// keeps appending while OnData runs, and those bytes wait for the next OnData, so Len only
// changes when the handler consumes.
type view struct {
	c        *conn
	r        np.Reader
	avail    int // bytes buffered when OnData was called
	consumed int // bytes skipped or detached since
}

var _ reactor.View = (*view)(nil)

func (v *view) Len() int { return v.avail - v.consumed }

func (v *view) Peek(n int) []byte {
	l := v.Len()
	if n <= 0 || n > l {
		n = l
	}
	if n == 0 {
		return nil
	}
	p, err := v.r.Peek(n)
	if err != nil {
		return nil
	}
	return p
}

func (v *view) Skip(n int) {
	if l := v.Len(); n > l {
		n = l
	}
	if n > 0 {
		_ = v.r.Skip(n)
		v.consumed += n
	}
}

// Detach takes n bytes as a ref-counted netpoll slice: no copy; the Buffer pins the slice's
// LinkBuffer nodes until it is released.
func (v *view) Detach(n int) *reactor.Buffer {
	b := reactor.NewBuffer()
	if l := v.Len(); n > l {
		n = l
	}
	if n <= 0 {
		return b
	}
	s, err := v.r.Slice(n)
	if err != nil {
		return b
	}
	v.consumed += n
	// A read-only slice must not be given a GetBytes vector longer than its non-empty nodes
	// (v0.7.2 dereferences its nil flush node), so take one node at a time.
	if gb, ok := s.(interface{ GetBytes([][]byte) [][]byte }); ok {
		for s.Len() > 0 {
			first := gb.GetBytes(v.c.one[:])
			if len(first) != 1 || len(first[0]) == 0 {
				break
			}
			p, err := s.Next(len(first[0]))
			if err != nil {
				break
			}
			b.AppendOwned(p, nil)
		}
		v.c.one[0] = nil
	}
	if rest := s.Len(); rest > 0 { // not expected; stay correct with a copy
		p, _ := s.Next(rest)
		b.AppendCopy(p)
	}
	b.AppendOwned(nil, s)
	return b
}
