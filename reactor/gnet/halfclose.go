package gnet

// Half-close. gnet v2.9.7 closes a connection as soon as read() returns 0 (eventloop_unix.go),
// but OnClose runs before gnet closes the fd. When the peer's FIN arrives, onClose sees io.EOF
// and runs OnPeerClose right there; if the handler keeps its write side (or bytes are still
// queued, or reading was paused so OnPeerClose is owed later), the fd is duplicated, gnet's
// unsent outbound bytes are taken over, and the write side moves to a Go *net.TCPConn served by
// one writer goroutine. The connection keeps its executor: every callback still runs on the
// gnet loop, posted through the loop's inbox. Nothing is read from the socket any more.

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/bytedance/gopkg/lang/mcache"
	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// detached is the write side of a half-closed connection.
type detached struct {
	nc     *net.TCPConn
	l      *loop
	exited chan struct{}

	mu       sync.Mutex
	cond     sync.Cond
	q        []*reactor.Buffer
	queued   int
	shut     bool // CloseWrite requested
	shutDone bool
	closing  bool // Close: flush, then close
	kill     bool // close at once
	err      error
	done     bool // the writer exited
	posted   bool // an opDetached is queued
}

// peerEOF handles gnet's OnClose with io.EOF: the peer sent FIN. Loop-only; gnet closes its fd
// when this returns.
func (w *conn) peerEOF() {
	gc := w.gc
	if err := sockErr(gc.Fd()); err != nil { // a reset seen as EPOLLHUP while paused
		w.finalize(w.reasonOr(mapErr(err)))
		return
	}
	w.flags |= fPeerEOF | fInGnetClose
	if w.e != nil && w.e.to != nil {
		w.e.to.SetRead(0) // nothing more can be read
	}
	keep := false
	open := w.xflags.Load() == 0 && w.flags&(fReasonSet|fClosing) == 0
	switch {
	case open && w.flags&fPaused != 0:
		// OnPeerClose must wait for PauseRead(false) and the OnData that redelivers these.
		if err := w.keepPending(); err != nil {
			w.flags &^= fInGnetClose
			w.finalize(w.reasonOr(mapErr(err)))
			return
		}
		w.flags |= fDeferPeer
	case open:
		l := w.l
		l.enter()
		keep = w.callPeerClose()
		l.exit()
	}
	w.flags &^= fInGnetClose
	w.settleEOF(keep)
}

// settleEOF decides what happens to a connection whose peer sent FIN, after OnPeerClose
// returned keep (or while it is still owed). Loop-only.
func (w *conn) settleEOF(keep bool) {
	if w.closed() {
		return
	}
	if w.flags&fReasonSet == 0 && w.xflags.Load()&(xCloseReq|xAbortReq) != 0 {
		w.mu.Lock()
		w.ext().reason = w.sh.reason
		w.mu.Unlock()
		w.flags |= fReasonSet
	}
	detached := w.flags&fDetached != 0
	out := w.Outbound()
	switch {
	case w.flags&fAborting != 0 || w.xflags.Load()&xAbortReq != 0:
		if !detached {
			_ = w.gc.SetLinger(0)
		}
		w.finalize(w.e.reason)
	case w.flags&fDeferPeer != 0:
		w.detach()
	case w.flags&(fReasonSet|fClosing) != 0:
		if out == 0 {
			w.finalize(w.e.reason)
			return
		}
		if w.detach() {
			w.e.d.flushClose(w.l.t.o.CloseFlushTimeout)
		}
	case !keep:
		w.ext().reason = reactor.ErrPeerClosed
		w.flags |= fReasonSet
		if out == 0 {
			w.finalize(reactor.ErrPeerClosed)
			return
		}
		if w.detach() {
			w.e.d.flushClose(w.l.t.o.CloseFlushTimeout)
		}
	case w.flags&fWriteShut != 0:
		w.finalize(reactor.ErrPeerClosed) // both directions finished
	case w.flags&fCWPending != 0 && out == 0 && !detached:
		w.shutWrite()
		w.finalize(reactor.ErrPeerClosed)
	default:
		w.detach()
	}
}

// detach moves the write side to a Go net.Conn; it reports false (and finalizes w) on error.
// Loop-only, inside gnet's OnClose (the gnet fd is still open).
func (w *conn) detach() bool {
	if w.flags&fDetached != 0 {
		return true
	}
	gc := w.gc
	fd, err := gc.Dup()
	if err != nil {
		w.finalize(w.reasonOr(mapErr(err)))
		return false
	}
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f) // dups again; f is closed below
	_ = f.Close()
	if err != nil {
		w.finalize(w.reasonOr(mapErr(err)))
		return false
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		_ = nc.Close()
		w.finalize(w.reasonOr(errClosed))
		return false
	}
	d := &detached{nc: tc, l: w.l, exited: make(chan struct{})}
	d.cond.L = &d.mu
	// Take the bytes gnet still queues; gnet would otherwise try them once, non-blocking,
	// and drop the rest when it closes its fd.
	if b, err := takeOutbound(w.l.t.lay, gc); err != nil {
		_ = tc.Close()
		w.finalize(w.reasonOr(err))
		return false
	} else if b != nil {
		d.q = append(d.q, b)
		d.queued = b.Len()
	}
	d.shut = w.flags&fCWPending != 0
	w.ext().d = d
	w.flags |= fDetached
	w.flags &^= fClosing
	w.l.t.rememberDetached(w)
	go d.run(w)
	return true
}

// deliverPending hands bytes read before EOF to OnData after a resume, then runs the owed
// OnPeerClose. Loop task.
func (w *conn) deliverPending() {
	e, l := w.e, w.l
	if e.pendOff < len(e.pendIn) {
		v := &l.view
		v.buf = e.pendIn[e.pendOff:]
		l.enter()
		w.callData(v)
		e.pendOff = len(e.pendIn) - len(v.buf)
		v.buf = nil
		l.exit()
		if w.closed() || w.flags&fPaused != 0 {
			return
		}
	}
	if w.flags&fDeferPeer == 0 {
		return
	}
	w.flags &^= fDeferPeer
	if e.pendIn != nil {
		mcache.Free(e.pendIn)
		e.pendIn, e.pendOff = nil, 0
	}
	keep := false
	if w.xflags.Load() == 0 && w.flags&fReasonSet == 0 {
		l.enter()
		keep = w.callPeerClose()
		l.exit()
	}
	w.settleEOF(keep)
}

// detachedProgress runs on the loop after the writer made progress or stopped. Loop task.
func (w *conn) detachedProgress() {
	if w.closed() || w.flags&fDetached == 0 {
		return
	}
	d := w.e.d
	d.mu.Lock()
	d.posted = false
	queued, err, done, shutDone, killed := d.queued, d.err, d.done, d.shutDone, d.kill
	d.mu.Unlock()
	if killed {
		return // whoever stopped the writer finalizes w with its own reason
	}
	if err != nil {
		w.finalize(w.reasonOr(mapErr(err)))
		return
	}
	if shutDone {
		w.flags &^= fCWPending
		w.flags |= fWriteShut
	}
	if done {
		if w.flags&fDeferPeer != 0 && w.flags&fReasonSet == 0 {
			return // OnData and OnPeerClose are still owed; deliverPending finalizes
		}
		w.finalize(w.reasonOr(reactor.ErrPeerClosed))
		return
	}
	if w.flags&fCongested != 0 && queued < w.l.t.o.LowWatermark {
		w.flags &^= fCongested
		w.callWritable()
	}
}

// enqueue hands b to the writer, taking ownership. Loop-only.
func (d *detached) enqueue(w *conn, b *reactor.Buffer) error {
	d.mu.Lock()
	if d.done || d.kill || d.err != nil {
		d.mu.Unlock()
		w.l.t.release(b)
		return errClosed
	}
	d.q = append(d.q, b)
	d.queued += b.Len()
	q := d.queued
	d.cond.Signal()
	d.mu.Unlock()
	w.touch(false)
	o := &w.l.t.o
	if q > o.MaxWriteBuffer {
		w.beginClose(errWriteOverflow, closeHard)
		return errWriteOverflow
	}
	if q > o.HighWatermark {
		w.flags |= fCongested
	}
	return nil
}

func (d *detached) queuedBytes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queued
}

// shutdown asks the writer to send FIN after the queued bytes.
func (d *detached) shutdown() {
	d.mu.Lock()
	d.shut = true
	d.cond.Signal()
	d.mu.Unlock()
}

// flushClose asks the writer to flush (within timeout) and close.
func (d *detached) flushClose(timeout time.Duration) {
	d.mu.Lock()
	if !d.closing {
		d.closing = true
		_ = d.nc.SetWriteDeadline(time.Now().Add(timeout))
	}
	d.cond.Signal()
	d.mu.Unlock()
}

// stop closes the socket at once (with a reset when abort) and lets the writer exit.
func (d *detached) stop(abort bool) {
	d.mu.Lock()
	if d.kill {
		d.mu.Unlock()
		return
	}
	d.kill = true
	if abort {
		_ = d.nc.SetLinger(0)
	}
	_ = d.nc.Close() // unblocks a write in progress
	d.cond.Signal()
	d.mu.Unlock()
}

// close applies a close mode to the detached write side. Loop-only.
func (d *detached) close(w *conn, mode closeMode) {
	if mode == closeFlush {
		d.flushClose(w.l.t.o.CloseFlushTimeout)
		return
	}
	d.stop(mode == closeAbort)
	w.finalize(w.reasonOr(errClosed))
}

// report posts one opDetached to the loop.
func (d *detached) report(w *conn) {
	d.mu.Lock()
	post := !d.posted
	d.posted = true
	d.mu.Unlock()
	if post {
		d.l.post(task{op: opDetached, w: w})
	}
}

// run is the writer goroutine.
func (d *detached) run(w *conn) {
	defer close(d.exited)
	var vec [][]byte
	for {
		d.mu.Lock()
		for len(d.q) == 0 && !d.kill && !d.closing && !(d.shut && !d.shutDone) {
			d.cond.Wait()
		}
		if d.kill {
			d.mu.Unlock()
			break
		}
		batch := d.q
		d.q = nil
		d.mu.Unlock()

		if len(batch) > 0 {
			vec = vec[:0]
			n := 0
			for _, b := range batch {
				vec = append(vec, b.Bytes()...)
				n += b.Len()
			}
			bufs := net.Buffers(vec)
			_, err := bufs.WriteTo(d.nc)
			clear(vec)
			d.l.t.releaseAll(batch)
			d.mu.Lock()
			d.queued -= n
			if err != nil && d.err == nil && !d.kill {
				d.err = err
			}
			d.mu.Unlock()
			d.report(w)
			if err != nil {
				break
			}
			continue
		}
		d.mu.Lock()
		closing, shut := d.closing, d.shut && !d.shutDone
		d.mu.Unlock()
		if closing {
			break
		}
		if shut {
			err := d.nc.CloseWrite()
			d.mu.Lock()
			d.shutDone = true
			if err != nil && d.err == nil {
				d.err = err
			}
			d.mu.Unlock()
			break // the peer's side ended before: both directions are done
		}
	}
	d.mu.Lock()
	d.done = true
	rest := d.q
	d.q = nil
	d.queued = 0
	d.mu.Unlock()
	d.l.t.releaseAll(rest)
	_ = d.nc.Close()
	d.report(w)
}

// sockErr returns the socket's pending error, if any.
func sockErr(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil || v == 0 {
		return nil
	}
	return unix.Errno(v)
}

// takeOutbound moves the bytes gnet still queues for gc into an owned Buffer (nil when there
// are none). Loop-only.
func takeOutbound(lay *layout, gc gnetv2.Conn) (*reactor.Buffer, error) {
	ob, err := lay.outbound(gc)
	if err != nil {
		return nil, err
	}
	n := ob.Buffered()
	if n == 0 {
		return nil, nil
	}
	// Peek(-1), not Peek(n): in v2.9.7 elastic.Buffer.Peek(n) compares n with the list part
	// alone and fails when the ring part holds bytes too.
	iov, err := ob.Peek(-1)
	if err != nil {
		return nil, fmt.Errorf("reactor/gnet: taking %d queued bytes: %w", n, err)
	}
	m := mcache.Malloc(n)
	k := 0
	for _, p := range iov {
		k += copy(m[k:], p)
	}
	if k != n {
		mcache.Free(m)
		return nil, fmt.Errorf("reactor/gnet: outbound buffer yielded %d of %d queued bytes: %w", k, n, ErrLayout)
	}
	_, _ = ob.Discard(n)
	b := reactor.NewBuffer()
	b.AppendPooled(m)
	return b, nil
}

// keepPending saves what a paused connection has not delivered when its peer's FIN is seen:
// gnet's inbound buffer plus whatever is still in the socket. While reading is paused the
// loop has no EPOLLIN interest, and once both directions are shut epoll reports a bare
// EPOLLHUP, which gnet v2.9.7 (processIO) turns into a close without reading: the peer's
// last bytes are then still in the kernel. After a FIN nothing more can arrive, so SIOCINQ
// is exact. Loop-only, inside gnet's OnClose (the gnet fd is still open).
func (w *conn) keepPending() error {
	gc := w.gc
	n := gc.InboundBuffered()
	q, err := unix.IoctlGetInt(gc.Fd(), unix.SIOCINQ)
	if err != nil || q < 0 {
		q = 0
	}
	if n+q == 0 {
		return nil
	}
	m := mcache.Malloc(n + q)
	v := view{gc: gc}
	copy(m, v.Peek(n))
	k := n
	for k < len(m) {
		r, err := unix.Read(gc.Fd(), m[k:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || r <= 0 {
			break // EAGAIN or EOF: the socket is dry
		}
		k += r
	}
	w.ext().pendIn = m[:k]
	return nil
}
