package stdnet

import (
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// Connection states; transitions happen under wmu.
const (
	stateOpen     int32 = iota
	stateClosing        // Close called: flushing the queue, then finish
	stateFinished       // socket closed, OnClose queued
)

// conn is one TCP connection. Fields are grouped by who may touch them.
type conn struct {
	t  *Transport
	g  *executor
	h  reactor.Handler
	nc *net.TCPConn
	rc syscall.RawConn
	id uint64

	// Executor-owned (touched only with g.mu held).
	ctx        any
	closed     bool // OnClose is running or ran
	congested  bool
	peerClosed bool // the peer's FIN was seen and OnPeerClose kept the write side open
	localShut  bool // CloseWrite was called
	one        [1][]byte

	// dead is guarded by g.qmu: once set, Exec refuses new functions.
	dead bool

	// Reader side: paused is set by the executor and read by the reader goroutine, wake
	// nudges a paused reader (resume or close).
	paused atomic.Bool
	wake   chan struct{}
	// redeliver is set by a resume; inRead while the reader waits in (or is about to enter)
	// RawConn.Read. A resume that finds inRead set interrupts that wait with a past read
	// deadline, so bytes held while paused are re-delivered without waiting for new ones.
	redeliver atomic.Bool
	inRead    atomic.Bool

	// Reader-goroutine-owned: the pooled read buffer (nil while idle) with the unconsumed
	// bytes at [rstart, rend), the view handed to OnData, and readSome's results.
	rbuf         []byte
	rstart, rend int
	view         view
	readFn       func(fd uintptr) bool
	rn           int
	rerr         error

	// Write side, guarded by wmu.
	wmu         sync.Mutex
	state       atomic.Int32 // stateOpen...; written under wmu, read anywhere
	reason      error        // close reason, set with the transition out of stateOpen
	q           []*reactor.Buffer
	outbound    atomic.Int64 // bytes in q; written under wmu, read anywhere
	writing     bool         // the writer goroutine runs
	shutPending bool         // CloseWrite once q is empty
	wshut       bool         // CloseWrite was requested: no more writes
	notify      bool         // the executor saw Congested: queue OnWritable below the low watermark
	discard     bool         // finished while the writer ran: it releases q and exits
	wbufs       [][]byte     // tryWrite's argument and results, for writeFn
	wn          int
	werr        error
	writeFn     func(fd uintptr) bool
	writableFn  func()

	// Timeouts live on the executor's wheel and are touched only on the executor. hasTO says
	// whether to is bound (set once, on the executor); writes made off the executor (Send, the
	// writer goroutine) are reported through one coalesced wroteFn task.
	hasTO        atomic.Bool
	to           reactor.Timeouts
	wroteFn      func()
	wrotePending atomic.Bool
}

var _ reactor.Conn = (*conn)(nil)

func (t *Transport) newConn(nc *net.TCPConn, g *executor, h reactor.Handler) *conn {
	c := &conn{t: t, g: g, h: h, nc: nc, id: t.ids.Add(1), wake: make(chan struct{}, 1)}
	rc, err := nc.SyscallConn()
	if err != nil { // only for a closed conn: the first read reports it
		rc = closedRawConn{err}
	}
	c.rc = rc
	c.view.c = c
	c.readFn = c.doRead
	c.writeFn = c.doWrite
	return c
}

// ID implements reactor.Conn. IDs are unique within one transport.
func (c *conn) ID() uint64 { return c.id }

// ExecutorID implements reactor.Conn.
func (c *conn) ExecutorID() int { return c.g.id }

// LocalAddr implements reactor.Conn.
func (c *conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr implements reactor.Conn.
func (c *conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Context implements reactor.Conn.
func (c *conn) Context() any { return c.ctx }

// SetContext implements reactor.Conn.
func (c *conn) SetContext(v any) { c.ctx = v }

// Exec implements reactor.Conn.
func (c *conn) Exec(fn func()) bool { return c.g.exec(c, c, fn) }

// PauseRead implements reactor.Conn. Pausing is real: the reader goroutine stops reading the
// socket (after at most the read in progress), so the peer's TCP window closes.
func (c *conn) PauseRead(paused bool) {
	if c.paused.Swap(paused) && !paused {
		c.redeliver.Store(true)
		c.nudge()
		if c.inRead.Load() {
			_ = c.nc.SetReadDeadline(aLongTimeAgo) // the reader re-checks redeliver
		}
	}
}

// aLongTimeAgo is a read deadline that interrupts a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

// nudge wakes the reader if it waits while paused.
func (c *conn) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// SetIdleTimeout implements reactor.Conn.
func (c *conn) SetIdleTimeout(d time.Duration) { c.setTimeout(d, true) }

// SetReadTimeout implements reactor.Conn.
func (c *conn) SetReadTimeout(d time.Duration) { c.setTimeout(d, false) }

func (c *conn) setTimeout(d time.Duration, idle bool) {
	if c.closed {
		return
	}
	if !c.hasTO.Load() && d <= 0 {
		return
	}
	// No catch-up of a lagging wheel is needed: reactor.Timeouts stamps activity from the
	// clock when it checks, so a late wheel only makes a timeout fire late, never early.
	if !c.hasTO.Load() {
		c.to.Init(c.g.wheel, c.expire)
		c.wroteFn = c.wroteTask
		c.hasTO.Store(true)
	}
	c.g.armed.Store(true) // the ticker clears it once the wheel is empty
	if idle {
		c.to.SetIdle(d)
	} else {
		c.to.SetRead(d)
	}
}

// Schedule implements reactor.Conn on the executor's wheel: fn runs under the executor's lock
// once the ticker found it due. The timer belongs to the executor, so it fires even after c
// closed, and any connection of the executor may move or stop it.
func (c *conn) Schedule(t *reactor.Timer, d time.Duration, fn func()) {
	c.g.wheel.After(t, d, fn)
	c.g.armed.Store(true)
}

// Unschedule implements reactor.Conn.
func (c *conn) Unschedule(t *reactor.Timer) bool { return c.g.wheel.Stop(t) }

// expire runs inside the wheel's Advance, on the executor.
func (c *conn) expire(err error) { c.Close(err) }

// noteWrite records write progress made off the executor.
func (c *conn) noteWrite() {
	if c.hasTO.Load() && c.wrotePending.CompareAndSwap(false, true) {
		c.g.exec(c, c, c.wroteFn)
	}
}

func (c *conn) wroteTask() {
	c.wrotePending.Store(false)
	if !c.closed {
		c.touch(false)
	}
}

// touch records activity for the timeouts; executor, with hasTO set.
func (c *conn) touch(read bool) {
	if read {
		c.to.Read()
	} else {
		c.to.Wrote()
	}
}

// Close implements reactor.Conn: queued bytes are flushed for at most CloseFlushTimeout
// (the writer's write deadline), then the socket is closed and OnClose runs with reason.
func (c *conn) Close(reason error) {
	c.wmu.Lock()
	if c.state.Load() != stateOpen {
		c.wmu.Unlock()
		return
	}
	c.state.Store(stateClosing)
	c.reason = reason
	flush := c.writing || len(c.q) > 0
	if flush {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.t.o.CloseFlushTimeout))
	}
	c.wmu.Unlock()
	c.nudge()
	if !flush {
		c.finish()
	}
}

// Abort implements reactor.Conn: queued bytes are dropped and the peer gets a reset. An Abort
// during Close's flush cuts the flush short (the first reason stays).
func (c *conn) Abort(reason error) {
	if c.enterClosing(reason) {
		_ = c.nc.SetLinger(0)
		c.finish()
	}
}

// terminate closes at once without the reset: for a connection that is already broken.
func (c *conn) terminate(reason error) {
	if c.enterClosing(reason) {
		c.finish()
	}
}

// enterClosing moves an open conn to closing with reason; it reports false when the conn is
// already finished.
func (c *conn) enterClosing(reason error) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch c.state.Load() {
	case stateFinished:
		return false
	case stateOpen:
		c.state.Store(stateClosing)
		c.reason = reason
	}
	return true
}

// finish closes the socket once and queues OnClose behind accepted Exec functions.
func (c *conn) finish() {
	c.wmu.Lock()
	if c.state.Load() == stateFinished {
		c.wmu.Unlock()
		return
	}
	c.state.Store(stateFinished)
	if c.writing {
		c.discard = true
	} else {
		c.releaseQueueLocked()
	}
	c.wmu.Unlock()
	_ = c.nc.Close()
	c.t.forget(c)
	c.nudge()
	c.g.closeConn(c)
}

// onClosed is OnClose's executor task.
func (c *conn) onClosed() {
	c.closed = true
	if c.hasTO.Load() {
		c.to.Stop()
	}
	c.callClose()
}

// Callback wrappers: each runs with g.mu held and turns a panic into a close reason.

func (c *conn) recoverPanic(where string) {
	if r := recover(); r != nil {
		stack := debug.Stack()
		c.t.o.Log().Error("stdnet: handler panic", "conn", c.id, "in", where, "panic", fmt.Sprint(r), "stack", string(stack))
		c.terminate(fmt.Errorf("%w in %s: %v\n%s", ErrHandlerPanic, where, r, stack))
	}
}

func (c *conn) callOpen() {
	defer c.recoverPanic("OnOpen")
	c.h.OnOpen(c)
}

func (c *conn) callDone(done func(reactor.Conn, error)) {
	defer c.recoverPanic("Dial's done")
	done(c, nil)
}

func (c *conn) callData() {
	defer c.recoverPanic("OnData")
	c.h.OnData(c, &c.view)
}

func (c *conn) callWritable() {
	defer c.recoverPanic("OnWritable")
	c.h.OnWritable(c)
}

func (c *conn) callPeerClose() (keep bool) {
	defer c.recoverPanic("OnPeerClose")
	return c.h.OnPeerClose(c)
}

func (c *conn) callClose() {
	defer func() { _ = recover() }() // the conn is gone: nothing left to close
	c.h.OnClose(c, c.reason)
}

// closedRawConn stands in for the RawConn of a conn that was closed before it was served.
type closedRawConn struct{ err error }

func (r closedRawConn) Control(func(uintptr)) error    { return r.err }
func (r closedRawConn) Read(func(uintptr) bool) error  { return r.err }
func (r closedRawConn) Write(func(uintptr) bool) error { return r.err }
