//go:build linux

package netpoll

import (
	"context"
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	np "github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// npctx is the context netpoll carries for an accepted connection (OnPrepare returns it); it
// lives inside conn, so handing it over allocates nothing.
type npctx struct {
	context.Context
	c *conn
}

// conn implements reactor.Conn over one netpoll connection.
//
// Goroutines: netpoll's reader task (serve), the executor (callbacks, Exec), the executor's
// write poller (flushes), netpoll's poller (the read hooks) and any goroutine calling Send,
// Exec, Close or Abort. Field groups below say what protects them.
type conn struct {
	t    *transport
	e    *executor
	h    reactor.Handler
	nc   np.Connection
	id   uint64
	fd   int    // netpoll's socket; valid until netpoll's close callbacks finished
	hk   *hooks // nil in soft mode
	ctx  npctx
	view view

	// Executor-only.
	userCtx          any
	peerClosePending bool // OnPeerClose waits for PauseRead(false)
	one              [1][]byte

	// Reader-task-only.
	left int // bytes the handler left unconsumed after the last OnData

	opened    atomic.Bool
	paused    atomic.Bool
	resumed   atomic.Bool // PauseRead(false) asks for a re-delivery
	closing   atomic.Bool // Close, Abort or a fatal error happened (the first reason wins)
	shut      atomic.Bool // closeNow ran
	finished  atomic.Bool // finish ran: OnClose is queued
	timed     atomic.Bool // an idle or read timeout is set
	congested atomic.Bool
	outbound  atomic.Int64
	readLimit atomic.Int64 // read interest is dropped while Len() >= readLimit
	interestN atomic.Bool  // mirror of interest for the poller's fast path
	hup       atomic.Bool  // netpoll saw the peer end the connection
	wakeGen   atomic.Uint64
	posted    atomic.Bool // an OnWritable is queued

	// imu guards read interest, fdValid and the wake channel.
	imu      sync.Mutex
	interest bool // EPOLLIN is in the registration
	fdValid  bool // fd still belongs to netpoll's open connection
	wakeCh   chan struct{}

	// wmu guards the write side.
	wmu         sync.Mutex
	wfd         int  // where writes go: fd, or its dup after the peer's FIN
	wreg        bool // wfd is on the write poller
	wclosed     bool // no more writes: the fd is gone or going
	wshut       bool // shutdown(SHUT_WR) done
	shutPending bool // CloseWrite waits for the queue to drain
	flushClose  bool // Close waits for the queue to drain
	halfClosed  bool // netpoll closed its side; the socket lives on in wfd
	localClosed bool // we asked netpoll to close
	reason      error
	q           writeQueue
	flushTimer  *time.Timer

	// qmu of the executor guards execClosed.
	execClosed bool

	// e.tmu guards the timeouts.
	to     reactor.Timeouts
	toInit bool
	idleOn bool
	readOn bool

	onDataFn, peerClosedFn, closeNowFn func()
}

var _ reactor.Conn = (*conn)(nil)

// newConn wraps nc, which already holds a reserved slot. dialed says nc is registered with a
// poller already (DialConnection); accepted connections come here from OnPrepare, before.
func (t *transport) newConn(nc np.Connection, e *executor, h reactor.Handler, dialed bool) (*conn, error) {
	fder, ok := nc.(interface{ Fd() int })
	if !ok {
		return nil, fmt.Errorf("%w: connection %T has no Fd", ErrLayout, nc)
	}
	c := &conn{t: t, e: e, h: h, nc: nc, id: nextID.Add(1), fd: fder.Fd()}
	c.ctx = npctx{Context: context.Background(), c: c}
	c.view = view{c: c, r: nc.Reader()}
	c.wfd = c.fd
	c.fdValid, c.interest = true, true
	c.interestN.Store(true)
	c.readLimit.Store(int64(t.readAhead))
	c.onDataFn, c.peerClosedFn, c.closeNowFn = c.onData, c.peerClosed, c.closeNow
	if !t.soft {
		hk, err := attach(nc, c.fd)
		if err == nil {
			// Set before the hook is installed: a dialed connection is already on a
			// poller, whose afterRead reads c.hk once wrapInput releases the operator.
			c.hk = hk
			hk.py = t.pollerYield(hk.epfd)
			if !hk.wrapInput(dialed, t.readChunk, c.afterRead) {
				c.hk = nil
			}
		} else {
			t.layoutWarn.Do(func() {
				log.Printf("reactor/netpoll: %v; PauseRead falls back to stopping delivery", err)
			})
		}
	}
	t.live.Add(1)
	t.conns.Store(c.id, c)
	_ = nc.AddCloseCallback(c.onNPClose)
	if dialed {
		if d, ok := nc.(interface{ SetOnDisconnect(np.OnDisconnect) error }); ok {
			_ = d.SetOnDisconnect(c.onDisconnect)
		}
	}
	return c, nil
}

func (c *conn) ID() uint64           { return c.id }
func (c *conn) ExecutorID() int      { return c.e.id }
func (c *conn) LocalAddr() net.Addr  { return c.nc.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
func (c *conn) Context() any         { return c.userCtx }
func (c *conn) SetContext(v any)     { c.userCtx = v }

// markOpen decides, against a concurrent finish, whether OnOpen runs: afterwards finish
// queues OnClose exactly when OnOpen ran.
func (c *conn) markOpen() bool {
	c.e.qmu.Lock()
	defer c.e.qmu.Unlock()
	if c.execClosed || c.closing.Load() {
		return false
	}
	c.opened.Store(true)
	return true
}

// openAccepted runs OnOpen from netpoll's OnConnect, on the reader task before any OnData.
func (c *conn) openAccepted() {
	c.e.mu.Lock()
	if c.markOpen() {
		c.e.call(c, func() { c.h.OnOpen(c) })
	}
	c.e.mu.Unlock()
}

// openDialed runs on the executor: OnOpen, then done, then reading starts.
func (c *conn) openDialed(done func(reactor.Conn, error)) {
	if !c.markOpen() {
		done(nil, fmt.Errorf("reactor/netpoll: dial: %w", reactor.ErrClosed))
		return
	}
	panicked := true
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.t.panicked(c, r)
			}
		}()
		c.h.OnOpen(c)
		panicked = false
	}()
	if panicked {
		done(nil, fmt.Errorf("reactor/netpoll: dial: OnOpen: %w", ErrPanic))
		return
	}
	done(c, nil)
	_ = c.nc.SetOnRequest(c.serve)
	if !c.nc.IsActive() && c.nc.Reader().Len() == 0 {
		// The peer ended the connection before reading started: netpoll leaves the close
		// callbacks of a connection without OnRequest to the user.
		_ = c.nc.Close()
	}
}

// Exec queues fn on the executor unless the connection is closed.
func (c *conn) Exec(fn func()) bool {
	e := c.e
	e.qmu.Lock()
	if c.execClosed {
		e.qmu.Unlock()
		return false
	}
	sched := e.pushLocked(task{c: c, fn: fn})
	e.qmu.Unlock()
	if sched {
		e.t.run(e.drainFn)
	}
	return true
}

// Close flushes what is queued (bounded by CloseFlushTimeout), then closes. The first Close,
// Abort or fatal error decides the reason; later calls are no-ops.
func (c *conn) Close(reason error) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.wmu.Lock()
	c.reason = reason
	if c.q.n > 0 && !c.wclosed {
		c.flushClose = true
		c.flushTimer = time.AfterFunc(c.t.o.CloseFlushTimeout, c.closeNowFn)
		c.wmu.Unlock()
		return
	}
	c.wmu.Unlock()
	c.closeNow()
}

// Abort discards what is queued and closes with a TCP reset.
func (c *conn) Abort(reason error) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.wmu.Lock()
	c.reason = reason
	if !c.wclosed {
		_ = setLingerZero(c.wfd)
	}
	drop := c.q.take()
	c.wmu.Unlock()
	drop.release()
	c.closeNow()
}

// closeWith closes at once without flushing: write errors, overflows, panics, a Close whose
// flush did not finish. reason is used only if nothing else closed the connection first.
func (c *conn) closeWith(reason error) {
	first := c.closing.CompareAndSwap(false, true)
	c.wmu.Lock()
	if first {
		c.reason = reason
	}
	drop := c.q.take()
	c.wmu.Unlock()
	drop.release()
	c.closeNow()
}

// closeNow closes the socket: through netpoll while it owns the connection (its close
// callback then finishes), or directly after a half-close moved the socket to our dup.
func (c *conn) closeNow() {
	if !c.shut.CompareAndSwap(false, true) {
		return
	}
	c.wmu.Lock()
	if c.flushTimer != nil {
		c.flushTimer.Stop()
	}
	if c.halfClosed {
		reason := c.reason
		drop := c.closeWriteSideLocked(true)
		c.wmu.Unlock()
		drop.release()
		c.finish(reason)
		return
	}
	c.localClosed = true
	c.wmu.Unlock()
	c.imu.Lock()
	if c.hk != nil && c.fdValid && !c.interest { // taken off netpoll's epoll by a pause
		_ = c.hk.quiet()
	}
	c.imu.Unlock()
	c.wake()
	_ = c.nc.Close()
}

// closeWriteSideLocked ends writing: the fd leaves the write poller and, when it is our dup
// (closeFD), is closed. It returns the queued buffers for release outside the lock.
func (c *conn) closeWriteSideLocked(closeFD bool) writeQueue {
	if !c.wclosed {
		c.wclosed = true
		c.e.wp.deregister(c)
		if closeFD {
			_ = unix.Close(c.wfd)
		}
	}
	return c.q.take()
}

// onNPClose is netpoll's close callback. It runs once, after the reader task finished and
// before netpoll closes the fd (netpoll's own callback, registered first, runs last).
func (c *conn) onNPClose(np.Connection) error {
	c.imu.Lock()
	c.fdValid = false
	c.imu.Unlock()
	c.wmu.Lock()
	if c.localClosed {
		reason := c.reason
		drop := c.closeWriteSideLocked(false)
		c.wmu.Unlock()
		drop.release()
		c.finish(reason)
		return nil
	}
	// netpoll closed the connection because the peer ended it.
	end := classifyEnd(c.fd, c.wshut)
	var dup int
	var err error
	if end != endReset {
		if dup, err = dupFD(c.fd); err != nil {
			end = endReset
		}
	}
	if end == endReset {
		reason := fmt.Errorf("reactor/netpoll: %w", reactor.ErrPeerReset)
		if errno := socketError(c.fd); errno != 0 {
			reason = fmt.Errorf("reactor/netpoll: %w: %v", reactor.ErrPeerReset, errno)
		}
		if c.closing.Load() {
			reason = c.reason
		}
		c.shut.Store(true)
		drop := c.closeWriteSideLocked(false)
		c.wmu.Unlock()
		drop.release()
		c.finish(reason)
		return nil
	}
	// A FIN: keep the socket through the dup so the write side (or a pending flush) lives on.
	c.e.wp.deregister(c)
	c.wfd, c.halfClosed = dup, true
	c.e.wp.register(c) // also reports a later reset of the half-open socket
	closing := c.closing.Load()
	c.wmu.Unlock()
	if !closing {
		c.e.submit(c, c.peerClosedFn)
	}
	return nil
}

// onDisconnect is netpoll's OnDisconnect: the peer ended the connection. It wakes a reader
// task parked while paused, which then drops the buffered bytes if it was a reset.
func (c *conn) onDisconnect(context.Context, np.Connection) {
	c.hup.Store(true)
	c.wake()
}

// peerClosed runs OnPeerClose on the executor once every byte was delivered.
func (c *conn) peerClosed() {
	if c.finished.Load() || c.closing.Load() {
		return
	}
	if c.paused.Load() {
		c.peerClosePending = true
		return
	}
	keep := c.h.OnPeerClose(c)
	if c.closing.Load() {
		return
	}
	c.wmu.Lock()
	both := c.wshut
	c.wmu.Unlock()
	if !keep || both {
		c.Close(reactor.ErrPeerClosed)
	}
}

// finish tears the connection down once: timers, registry, slot, and OnClose on the executor
// when OnOpen ran. The write side is closed already.
func (c *conn) finish(reason error) {
	if !c.finished.CompareAndSwap(false, true) {
		return
	}
	c.shut.Store(true)
	c.closing.Store(true)
	c.wake()
	e := c.e
	e.tmu.Lock()
	if c.toInit {
		c.to.Stop()
	}
	e.tmu.Unlock()
	c.t.conns.Delete(c.id)
	c.t.active.Add(-1)
	e.qmu.Lock()
	c.execClosed = true
	opened := c.opened.Load()
	sched := false
	if opened {
		sched = e.pushLocked(task{c: c, fn: func() {
			defer c.t.live.Add(-1)
			c.h.OnClose(c, reason)
		}})
	}
	e.qmu.Unlock()
	if sched {
		e.t.run(e.drainFn)
	}
	if !opened {
		c.t.live.Add(-1)
	}
}

// SetIdleTimeout arms the idle timeout on the executor's wheel.
func (c *conn) SetIdleTimeout(d time.Duration) { c.setTimeout(d, true) }

// SetReadTimeout arms the read timeout on the executor's wheel.
func (c *conn) SetReadTimeout(d time.Duration) { c.setTimeout(d, false) }

func (c *conn) setTimeout(d time.Duration, idle bool) {
	e := c.e
	e.tmu.Lock()
	defer e.tmu.Unlock()
	if c.finished.Load() || (!c.toInit && d <= 0) {
		return
	}
	if !c.toInit {
		c.to.Init(e.wheel, c.expire)
		c.toInit = true
	}
	e.armed.Store(true) // the ticker clears it once the wheel is empty
	if idle {
		c.to.SetIdle(d)
		c.idleOn = d > 0
	} else {
		c.to.SetRead(d)
		c.readOn = d > 0
	}
	c.timed.Store(c.idleOn || c.readOn)
}

// Schedule implements reactor.Conn on the executor's wheel: fn runs as an executor task once
// the wheel's ticker found it due. The timer belongs to the executor, so it fires even after c
// closed, and any connection of the executor may move or stop it.
func (c *conn) Schedule(t *reactor.Timer, d time.Duration, fn func()) { c.e.schedule(t, d, fn) }

// Unschedule implements reactor.Conn.
func (c *conn) Unschedule(t *reactor.Timer) bool { return c.e.unschedule(t) }

// expire runs inside the wheel's Advance (tmu held): close from elsewhere.
func (c *conn) expire(err error) {
	c.t.run(func() { c.Close(fmt.Errorf("reactor/netpoll: %w", err)) })
}

// activity records inbound (read) or outbound bytes for the timeouts.
func (c *conn) activity(read bool) {
	if !c.timed.Load() {
		return
	}
	c.e.tmu.Lock()
	if read {
		c.to.Read()
	} else {
		c.to.Wrote()
	}
	c.e.tmu.Unlock()
}
