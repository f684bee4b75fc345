package gnet

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bytedance/gopkg/lang/mcache"
	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

var (
	errClosed          = fmt.Errorf("reactor/gnet: %w", reactor.ErrClosed)
	errWriteOverflow   = fmt.Errorf("reactor/gnet: %w", reactor.ErrWriteBufferOverflow)
	errReadOverflow    = fmt.Errorf("reactor/gnet: %w", reactor.ErrReadBufferOverflow)
	errTransportClosed = fmt.Errorf("reactor/gnet: %w", reactor.ErrTransportClosed)
	// errLoopStopped is the close reason when gnet stopped an engine on its own (its accept
	// loop gives up on errors such as EMFILE, taking every connection of the engine along).
	errLoopStopped = fmt.Errorf("reactor/gnet: gnet event loop stopped: %w", reactor.ErrClosed)
)

// Loop-only state bits (conn.flags).
const (
	fPaused      uint32 = 1 << iota // PauseRead(true)
	fCongested                      // Outbound crossed the high watermark
	fClosing                        // Close waits for gnet's outbound buffer to drain
	fWatched                        // on loop.watch
	fWriteShut                      // FIN sent
	fCWPending                      // CloseWrite waits for the drain
	fPeerEOF                        // the peer's FIN was read
	fInGnetClose                    // inside gnet's OnClose for this conn (peer EOF)
	fDetached                       // half-closed: the write side moved to a Go net.Conn
	fReasonSet                      // ext.reason holds the close reason
	fAborting                       // Abort: SO_LINGER 0 was set
	fDeferPeer                      // OnPeerClose still owed (EOF arrived while paused)
)

// Cross-goroutine state bits (conn.xflags).
const (
	xCloseReq uint32 = 1 << iota
	xAbortReq
	xClosed
)

type closeMode uint8

const (
	closeFlush closeMode = iota // drain queued bytes first (bounded by CloseFlushTimeout)
	closeHard                   // close now; gnet writes what the kernel takes at once
	closeAbort                  // SO_LINGER 0: reset
)

// conn is a reactor.Conn on a gnet connection. It is kept small: an idle connection costs
// this struct plus gnet's own (see README). Rarely used state hangs off ext and sh.
type conn struct {
	gc     gnetv2.Conn
	l      *loop
	h      reactor.Handler
	ctx    any
	id     uint64
	laddr  net.Addr
	raddr  net.Addr
	mu     sync.Mutex // guards sh and the transitions of xflags
	xflags atomic.Uint32
	flags  uint32  // loop-only
	sh     *shared // cross-goroutine: Send queue, requested close reason
	e      *ext    // loop-only, allocated on first use
}

// shared is the part of a conn other goroutines write (under conn.mu).
type shared struct {
	bufs      []*reactor.Buffer
	spare     []*reactor.Buffer // loop-only: the previous batch's slice, reused
	posted    bool              // an opFlushSends is queued
	reason    error
	hasReason bool
}

// ext is loop-only state most connections never need.
type ext struct {
	reason   error
	deadline time.Time // end of the close flush
	to       *reactor.Timeouts
	d        *detached
	pendIn   []byte // inbound bytes read before EOF while paused (mcache)
	pendOff  int
}

var _ reactor.Conn = (*conn)(nil)

func (w *conn) ext() *ext {
	if w.e == nil {
		w.e = &ext{}
	}
	return w.e
}

func (w *conn) closed() bool { return w.xflags.Load()&xClosed != 0 }

func (w *conn) reasonOr(def error) error {
	if w.flags&fReasonSet != 0 {
		return w.e.reason
	}
	return def
}

func (w *conn) ID() uint64           { return w.id }
func (w *conn) ExecutorID() int      { return w.l.id }
func (w *conn) LocalAddr() net.Addr  { return w.laddr }
func (w *conn) RemoteAddr() net.Addr { return w.raddr }
func (w *conn) Context() any         { return w.ctx }
func (w *conn) SetContext(v any)     { w.ctx = v }
func (w *conn) Congested() bool      { return w.flags&fCongested != 0 }

// writeCheck reports whether the write side accepts bytes. Executor.
func (w *conn) writeCheck() error {
	if w.xflags.Load() != 0 ||
		w.flags&(fClosing|fWriteShut|fCWPending|fAborting|fReasonSet) != 0 {
		return errClosed
	}
	return nil
}

// sendCheck is writeCheck for Buffers Send accepted before a Close was requested: Close
// flushes them like any other queued bytes. Loop-only.
func (w *conn) sendCheck() error {
	if w.xflags.Load()&(xClosed|xAbortReq) != 0 || w.flags&(fWriteShut|fCWPending|fAborting) != 0 {
		return errClosed
	}
	return nil
}

// Write implements reactor.Conn: gnet writes p at once and copies what the kernel did not take.
func (w *conn) Write(p []byte) error {
	if err := w.writeCheck(); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	if w.flags&fDetached != 0 {
		b := reactor.NewBuffer()
		b.AppendCopy(p)
		return w.e.d.enqueue(w, b)
	}
	before := w.gc.OutboundBuffered()
	if _, err := w.gc.Write(p); err != nil {
		return writeErr(err)
	}
	return w.wrote(before)
}

// Writev implements reactor.Conn. bufs is not modified.
func (w *conn) Writev(bufs [][]byte) error {
	if err := w.writeCheck(); err != nil {
		return err
	}
	if w.flags&fDetached != 0 {
		b := reactor.NewBuffer()
		for _, p := range bufs {
			b.AppendCopy(p)
		}
		return w.e.d.enqueue(w, b)
	}
	l := w.l
	before := w.gc.OutboundBuffered()
	l.vec = append(l.vec[:0], bufs...)
	err := l.writev(w, l.vec)
	clear(l.vec)
	if err != nil {
		return writeErr(err)
	}
	return w.wrote(before)
}

// wrote applies the watermarks after bytes were handed to gnet.
func (w *conn) wrote(before int) error {
	w.touch(false)
	out := w.gc.OutboundBuffered()
	o := &w.l.t.o
	if out > o.MaxWriteBuffer {
		w.beginClose(errWriteOverflow, closeHard)
		return errWriteOverflow
	}
	if out > o.HighWatermark && w.flags&fCongested == 0 {
		w.flags |= fCongested
		w.l.addWatch(w)
	}
	if before == 0 && out > 0 && w.flags&(fPaused|fClosing) != 0 {
		w.l.setInterest(w) // gnet just re-armed EPOLLIN with EPOLLOUT
	}
	return nil
}

// writeErr wraps the error of a gnet write; gnet has already closed the connection and the
// close is reported through OnClose.
func writeErr(err error) error {
	return fmt.Errorf("reactor/gnet: write: %w", mapErr(err))
}

// Outbound implements reactor.Conn.
func (w *conn) Outbound() int {
	switch {
	case w.closed():
		return 0
	case w.flags&fDetached != 0:
		return w.e.d.queuedBytes()
	default:
		return w.gc.OutboundBuffered()
	}
}

// PauseRead implements reactor.Conn by removing EPOLLIN from the connection's epoll
// interest: the socket is not read, so TCP flow control pushes back on the peer.
func (w *conn) PauseRead(paused bool) {
	if w.closed() || (w.flags&fPaused != 0) == paused {
		return
	}
	if paused {
		w.flags |= fPaused
	} else {
		w.flags &^= fPaused
	}
	switch {
	case w.flags&fDetached != 0:
		if !paused && (w.flags&fDeferPeer != 0 || len(w.e.pendIn) > w.e.pendOff) {
			w.l.post(task{op: opResume, w: w})
		}
	case w.flags&fClosing != 0:
	default:
		w.l.setInterest(w)
		if !paused && w.gc.InboundBuffered() > 0 {
			w.l.post(task{op: opResume, w: w})
		}
	}
}

// resume redelivers what was buffered while reading was paused. Loop task.
func (w *conn) resume() {
	if w.closed() || w.flags&fPaused != 0 || w.xflags.Load() != 0 || w.flags&fReasonSet != 0 {
		return
	}
	if w.flags&fDetached != 0 {
		w.deliverPending()
		return
	}
	w.deliver()
}

// deliver hands the buffered inbound bytes to OnData. Loop-only, inside a dispatch.
func (w *conn) deliver() {
	l, gc := w.l, w.gc
	if gc.InboundBuffered() == 0 {
		return
	}
	v := &l.view
	v.gc = gc
	l.enter()
	w.callData(v)
	v.gc = nil
	if !w.closed() && w.flags&fDetached == 0 && gc.InboundBuffered() > l.t.o.MaxReadBuffer {
		w.beginClose(errReadOverflow, closeHard)
	}
	l.exit()
}

// CloseWrite implements reactor.Conn: FIN once gnet's outbound buffer drained.
func (w *conn) CloseWrite() error {
	if w.flags&(fWriteShut|fCWPending) != 0 {
		return nil
	}
	if err := w.writeCheck(); err != nil {
		return err
	}
	w.flags |= fCWPending
	switch {
	case w.flags&fDetached != 0:
		w.e.d.shutdown()
	case w.flags&fInGnetClose != 0 || w.gc.OutboundBuffered() > 0:
		// Inside OnPeerClose the decision waits for peerEOF; otherwise poll for the drain.
		if w.flags&fInGnetClose == 0 {
			w.l.addWatch(w)
		}
	default:
		w.shutWrite()
	}
	return nil
}

// shutWrite sends FIN on the gnet connection. Loop-only.
func (w *conn) shutWrite() {
	w.flags &^= fCWPending
	w.flags |= fWriteShut
	if err := unix.Shutdown(w.gc.Fd(), unix.SHUT_WR); err != nil {
		w.beginClose(mapErr(err), closeHard)
	}
}

// touch records activity for the idle and read timeouts (reactor.Timeouts stamps it from
// the clock, so a wheel lagging behind its ticks cannot make them fire early). Loop-only.
func (w *conn) touch(read bool) {
	if w.e == nil || w.e.to == nil {
		return
	}
	if read {
		w.e.to.Read()
	} else {
		w.e.to.Wrote()
	}
}

// SetIdleTimeout implements reactor.Conn on the loop's timing wheel.
func (w *conn) SetIdleTimeout(d time.Duration) {
	if to := w.timeouts(d); to != nil {
		to.SetIdle(d)
	}
}

// SetReadTimeout implements reactor.Conn on the loop's timing wheel.
func (w *conn) SetReadTimeout(d time.Duration) {
	if to := w.timeouts(d); to != nil {
		to.SetRead(d)
	}
}

// timeouts returns w's timeout tracker, creating it when d enables a timeout.
func (w *conn) timeouts(d time.Duration) *reactor.Timeouts {
	if w.closed() {
		return nil
	}
	l := w.l
	if w.e == nil || w.e.to == nil {
		if d <= 0 {
			return nil
		}
		e := w.ext()
		e.to = &reactor.Timeouts{}
		e.to.Init(l.wheel, func(err error) { w.beginClose(err, closeFlush) })
	}
	l.timers.Store(true)
	return w.e.to
}

// Schedule implements reactor.Conn on the loop's timing wheel (the one the timeouts use): fn
// runs in a loop task once the clock's tick has moved the wheel past the deadline. The timer
// belongs to the loop, so it fires even after w closed, and any connection of the loop may
// move or stop it.
func (w *conn) Schedule(t *reactor.Timer, d time.Duration, fn func()) {
	l := w.l
	l.wheel.After(t, d, fn)
	if !l.timers.Load() {
		l.timers.Store(true) // the clock posts ticks while the wheel holds timers
	}
}

// Unschedule implements reactor.Conn.
func (w *conn) Unschedule(t *reactor.Timer) bool { return w.l.wheel.Stop(t) }

// Send implements reactor.Conn: b joins the connection's send queue, which the loop writes
// with one writev per batch. b is released after gnet took its bytes (written or copied
// into gnet's outbound buffer), or at once if the connection is closed.
func (w *conn) Send(b *reactor.Buffer) error {
	if b == nil {
		return nil
	}
	w.mu.Lock()
	if w.xflags.Load() != 0 {
		w.mu.Unlock()
		b.Release()
		return errClosed
	}
	if w.sh == nil {
		w.sh = &shared{}
	}
	w.sh.bufs = append(w.sh.bufs, b)
	post := !w.sh.posted
	w.sh.posted = true
	w.mu.Unlock()
	if post {
		w.l.post(task{op: opFlushSends, w: w})
	}
	return nil
}

// flushSends writes the Send queue. Loop task.
func (w *conn) flushSends() {
	w.mu.Lock()
	sh := w.sh
	if sh == nil {
		w.mu.Unlock()
		return
	}
	bufs := sh.bufs
	sh.bufs, sh.spare = sh.spare[:0], nil
	sh.posted = false
	w.mu.Unlock()
	defer func() {
		clear(bufs)
		sh.spare = bufs[:0]
	}()
	if len(bufs) == 0 {
		return
	}
	err := w.sendCheck()
	switch {
	case err != nil:
		w.l.t.releaseAll(bufs)
	case w.flags&fDetached != 0:
		for _, b := range bufs {
			_ = w.e.d.enqueue(w, b)
		}
	default:
		l := w.l
		before := w.gc.OutboundBuffered()
		vec := l.vec[:0]
		for _, b := range bufs {
			vec = append(vec, b.Bytes()...)
		}
		l.vec = vec
		err = l.writev(w, vec)
		clear(vec)
		l.t.releaseAll(bufs)
		if err == nil {
			_ = w.wrote(before)
		}
	}
}

// Exec implements reactor.Conn.
func (w *conn) Exec(fn func()) bool {
	if w.closed() {
		return false
	}
	w.l.post(task{op: opExec, w: w, fn: fn})
	return true
}

// Close implements reactor.Conn.
func (w *conn) Close(reason error) { w.request(reason, false) }

// Abort implements reactor.Conn.
func (w *conn) Abort(reason error) { w.request(reason, true) }

func (w *conn) request(reason error, abort bool) {
	bit, op := xCloseReq, opClose
	if abort {
		bit, op = xAbortReq, opAbort
	}
	w.mu.Lock()
	x := w.xflags.Load()
	if x&(xClosed|bit) != 0 || (x&xAbortReq != 0) {
		w.mu.Unlock()
		return
	}
	if w.sh == nil {
		w.sh = &shared{}
	}
	if !w.sh.hasReason {
		w.sh.reason, w.sh.hasReason = reason, true
	}
	w.xflags.Or(bit)
	w.mu.Unlock()
	w.l.post(task{op: op, w: w})
}

// closeRequested runs a Close or Abort requested from any goroutine. Loop task.
func (w *conn) closeRequested(abort bool) {
	if w.closed() {
		return
	}
	w.mu.Lock()
	reason := w.sh.reason
	w.mu.Unlock()
	mode := closeFlush
	if abort {
		mode = closeAbort
	}
	w.beginClose(reason, mode)
}

// beginClose starts closing w with reason. Loop-only.
func (w *conn) beginClose(reason error, mode closeMode) {
	if w.closed() {
		return
	}
	if w.flags&fReasonSet == 0 {
		w.ext().reason = reason
		w.flags |= fReasonSet
	}
	l := w.l
	if mode == closeAbort {
		w.flags |= fAborting
	}
	if w.flags&fDetached != 0 {
		w.e.d.close(w, mode)
		return
	}
	switch mode {
	case closeAbort:
		_ = w.gc.SetLinger(0)
		l.closeNow(w)
	case closeFlush:
		if w.flags&fInGnetClose != 0 {
			return // peerEOF decides once OnPeerClose returned
		}
		if w.gc.OutboundBuffered() > 0 {
			if w.flags&fClosing == 0 {
				w.flags |= fClosing
				w.e.deadline = time.Now().Add(l.t.o.CloseFlushTimeout)
				l.setInterest(w)
				l.addWatch(w)
			}
			return
		}
		l.closeNow(w)
	default:
		l.closeNow(w)
	}
}

// pollDrain checks a watched connection; it reports whether to keep watching. Loop-only.
func (w *conn) pollDrain(now *time.Time) bool {
	if w.closed() || w.flags&fDetached != 0 {
		return false
	}
	out := w.gc.OutboundBuffered()
	if w.flags&fClosing != 0 {
		if out == 0 {
			w.l.closeNow(w)
			return false
		}
		if now.IsZero() {
			*now = time.Now()
		}
		if now.After(w.e.deadline) {
			w.l.closeNow(w)
			return false
		}
		return true
	}
	if w.flags&fPaused != 0 && out > 0 {
		if err := w.gc.Flush(); err != nil || w.closed() {
			return false // gnet closed it; OnClose was reported
		}
		w.l.setInterest(w) // Flush re-armed EPOLLIN if it drained the buffer
		out = w.gc.OutboundBuffered()
	}
	if w.flags&fCWPending != 0 && out == 0 {
		w.shutWrite()
	}
	if w.flags&fCongested != 0 && out < w.l.t.o.LowWatermark {
		w.flags &^= fCongested
		w.callWritable()
	}
	if w.closed() || w.flags&fDetached != 0 {
		return false
	}
	return w.flags&(fCongested|fCWPending|fClosing) != 0 ||
		(w.flags&fPaused != 0 && w.gc.OutboundBuffered() > 0)
}

// finalize marks w closed, releases what it holds and reports OnClose. Loop-only.
func (w *conn) finalize(reason error) {
	w.mu.Lock()
	if w.xflags.Load()&xClosed != 0 {
		w.mu.Unlock()
		return
	}
	w.xflags.Or(xClosed)
	var bufs []*reactor.Buffer
	if w.sh != nil {
		bufs = w.sh.bufs
		w.sh.bufs = nil
	}
	w.mu.Unlock()
	l := w.l
	l.t.releaseAll(bufs)
	if e := w.e; e != nil {
		if e.to != nil {
			e.to.Stop()
		}
		if e.d != nil {
			e.d.stop(false)
			l.t.forgetDetached(w)
		}
		if e.pendIn != nil {
			mcache.Free(e.pendIn)
			e.pendIn = nil
		}
	}
	l.t.open.Add(-1)
	l.es.release()
	l.notify(w, reason)
}

// mapErr turns a socket error into the contract's sentinels.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("%w: %w", reactor.ErrPeerReset, err)
	case errors.Is(err, reactor.ErrPeerReset), errors.Is(err, reactor.ErrClosed):
		return err
	default:
		return fmt.Errorf("reactor/gnet: %w", err)
	}
}

// ownAddr detaches an address from gnet's pools: gnet recycles the bytes of IPv6 zones
// when a connection is released.
func ownAddr(a net.Addr) net.Addr {
	if ta, ok := a.(*net.TCPAddr); ok && ta.Zone != "" {
		c := *ta
		c.Zone = strings.Clone(ta.Zone)
		return &c
	}
	return a
}

// view is the reactor.View over a gnet connection's inbound bytes (gc) or over bytes held by
// a half-closed connection (buf). One per loop, valid only during OnData.
type view struct {
	gc  gnetv2.Conn
	buf []byte
}

var _ reactor.View = (*view)(nil)

func (v *view) Len() int {
	if v.gc != nil {
		return v.gc.InboundBuffered()
	}
	return len(v.buf)
}

func (v *view) Peek(n int) []byte {
	total := v.Len()
	if n <= 0 || n > total {
		n = total
	}
	if n == 0 {
		return nil
	}
	if v.gc == nil {
		return v.buf[:n:n]
	}
	p, err := v.gc.Peek(n)
	if err != nil {
		return nil
	}
	return p
}

func (v *view) Skip(n int) {
	if n <= 0 {
		return
	}
	n = min(n, v.Len())
	if v.gc == nil {
		v.buf = v.buf[n:]
		return
	}
	_, _ = v.gc.Discard(n)
}

func (v *view) Detach(n int) *reactor.Buffer {
	b := reactor.NewBuffer()
	n = min(max(n, 0), v.Len())
	if n == 0 {
		return b
	}
	m := mcache.Malloc(n)
	copy(m, v.Peek(n))
	v.Skip(n)
	b.AppendPooled(m)
	return b
}
