package gnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// engineState is one gnet engine: a listener's, or the client engine (h == nil).
type engineState struct {
	t       *Transport
	h       reactor.Handler
	ev      events
	eng     gnetv2.Engine
	cli     *gnetv2.Client
	lnFD    int
	booted  chan struct{} // OnBoot ran: eng is set
	started chan struct{} // the first OnTick ran: gnet registered the loops
	runDone chan struct{}
	runErr  error

	client bool // the client engine: no listener, never stops before the transport

	tickOnce sync.Once
	loopsErr error // set before started is closed

	lnClosed atomic.Bool

	mu         sync.Mutex
	refs       int // open connections plus pending dials near them
	stopping   bool
	cliStopped bool
	loops      []*loop
}

func newEngineState(t *Transport, h reactor.Handler, client bool) *engineState {
	es := &engineState{t: t, h: h, client: client, booted: make(chan struct{}),
		started: make(chan struct{}), runDone: make(chan struct{})}
	es.ev.es = es
	return es
}

// acquire counts a connection or pending dial on the engine; false once it is stopping.
func (es *engineState) acquire() bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.stopping {
		return false
	}
	es.refs++
	return true
}

// release undoes acquire; a listener engine whose listener is closed stops with its last
// connection.
func (es *engineState) release() {
	es.mu.Lock()
	es.refs--
	stop := es.refs == 0 && es.lnClosed.Load() && !es.stopping && !es.client
	es.mu.Unlock()
	if stop {
		go es.stop()
	}
}

// ensureLoops builds the loop states of the engine once gnet registered its loops. It runs
// on a goroutine gnet started after the registration (the ticker's OnTick, a loop's OnOpen)
// or after Client.Start; that ordering makes reading gnet's loop list race-free.
func (es *engineState) ensureLoops() error {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.loops != nil {
		return nil
	}
	els, err := es.t.lay.eventLoops(es.eng)
	if err != nil {
		return err
	}
	loops := make([]*loop, 0, len(els))
	for _, el := range els {
		epfd, err := es.t.lay.epollFD(el)
		if err != nil {
			return err
		}
		loops = append(loops, newLoop(es.t, es, el, epfd))
	}
	es.t.addLoops(loops)
	es.loops = loops
	return nil
}

func (es *engineState) loopsReady() bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.loops != nil && !es.stopping
}

func (es *engineState) loopList() []*loop {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.loops
}

// loopOf returns the state of the loop el. Called on el.
func (es *engineState) loopOf(el gnetv2.EventLoop) (*loop, error) {
	if err := es.ensureLoops(); err != nil {
		return nil, err
	}
	for _, l := range es.loopList() {
		if l.el == el {
			return l, nil
		}
	}
	return nil, fmt.Errorf("reactor/gnet: connection on an unknown event loop: %w", ErrLayout)
}

// closeListener stops accepting (see listener.Close).
func (es *engineState) closeListener() error {
	es.lnClosed.Store(true)
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.stopping || es.eng.Validate() != nil {
		return nil // gnet closes (or closed) the socket itself
	}
	ph, err := placeholderSocket()
	if err != nil {
		return fmt.Errorf("reactor/gnet: close listener: %w", err)
	}
	err = unix.Dup3(ph, es.lnFD, unix.O_CLOEXEC)
	_ = unix.Close(ph)
	if err != nil {
		return fmt.Errorf("reactor/gnet: close listener: %w", os.NewSyscallError("dup3", err))
	}
	if es.refs == 0 {
		es.stopping = true
		go es.stopNow()
	}
	return nil
}

// placeholderSocket returns a listening, non-blocking AF_UNIX socket on an autobound
// abstract address: accept on it returns EAGAIN, so gnet's accept loop stays quiet.
func placeholderSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{}); err != nil {
		_ = unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		_ = unix.Close(fd)
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}

// stop shuts the engine down and waits until its loops exited; every connection on it got
// OnClose. Idempotent.
func (es *engineState) stop() {
	es.mu.Lock()
	es.stopping = true
	es.mu.Unlock()
	es.stopNow()
}

func (es *engineState) stopNow() {
	if es.client {
		es.stopClient()
	} else {
		select {
		case <-es.booted:
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // Stop triggers the shutdown and returns; runDone tells when it is over
			_ = es.eng.Stop(ctx)
		case <-es.runDone:
		}
		<-es.runDone
	}
	es.mu.Lock()
	loops := append([]*loop(nil), es.loops...)
	es.mu.Unlock()
	for _, l := range loops {
		l.kill()
	}
	if !es.client {
		es.t.forgetEngine(es)
	}
}

// stopClient stops the client engine once; Client.Stop returns after its loops exited.
func (es *engineState) stopClient() {
	es.mu.Lock()
	first := !es.cliStopped
	es.cliStopped = true
	es.mu.Unlock()
	if first {
		_ = es.cli.Stop()
		close(es.runDone)
	}
	<-es.runDone
}

// events adapts gnet's EventHandler to the transport; one per engine.
type events struct {
	gnetv2.BuiltinEventEngine
	es *engineState
}

func (ev *events) OnBoot(eng gnetv2.Engine) gnetv2.Action {
	ev.es.eng = eng
	close(ev.es.booted)
	return gnetv2.None
}

// OnTick runs once, right after gnet started the engine's loops; then it sleeps for good.
func (ev *events) OnTick() (time.Duration, gnetv2.Action) {
	ev.es.tickOnce.Do(func() {
		if err := ev.es.ensureLoops(); err != nil {
			ev.es.loopsErr = err
		}
		close(ev.es.started)
	})
	return 24 * time.Hour, gnetv2.None
}

// The adapters below are gnet's entry points into the backend. Handler code inside them runs
// through guarded calls (panic.go); each adapter also recovers whatever escapes, so no panic
// reaches gnet's loop goroutine, which would end the process.

func (ev *events) OnOpen(gc gnetv2.Conn) (out []byte, act gnetv2.Action) {
	defer ev.es.rescueOpen(gc, &act)
	return nil, ev.es.onOpen(gc)
}

func (ev *events) OnTraffic(gc gnetv2.Conn) (act gnetv2.Action) {
	w, ok := gc.Context().(*conn)
	if !ok || w.closed() {
		return gnetv2.None
	}
	defer w.l.rescueTraffic(w, &act)
	return w.l.onTraffic(w)
}

func (ev *events) OnClose(gc gnetv2.Conn, err error) gnetv2.Action {
	if w, ok := gc.Context().(*conn); ok && !w.closed() {
		defer w.l.rescueClose(w, w.l.mark())
		ev.es.t.onClose(w, err)
	}
	return gnetv2.None
}

// onOpen wraps a new gnet connection. Runs on its loop.
func (es *engineState) onOpen(gc gnetv2.Conn) gnetv2.Action {
	t := es.t
	ds, dialed := gc.Context().(*dialState)
	h := es.h
	if dialed {
		h = ds.h
	} else if h == nil || es.lnClosed.Load() || t.closing.Load() {
		return gnetv2.Close
	}
	if n := t.open.Add(1); !dialed && t.o.MaxConns > 0 && n > int64(t.o.MaxConns) {
		t.open.Add(-1)
		return gnetv2.Close
	}
	l, err := es.loopOf(gc.EventLoop())
	if err != nil || !es.acquire() {
		t.open.Add(-1)
		if dialed {
			ds.fail(errors.Join(errClosed, err))
		}
		return gnetv2.Close
	}
	w := &conn{
		gc:    gc,
		l:     l,
		h:     h,
		id:    t.ids.Add(1),
		laddr: ownAddr(gc.LocalAddr()),
		raddr: ownAddr(gc.RemoteAddr()),
	}
	gc.SetContext(w)
	l.cur = w
	l.enter()
	opened := w.callOpen()
	switch {
	case dialed && opened:
		ds.finished = true
		w.callDone(ds.done)
	case dialed:
		// OnOpen panicked: the dial failed. OnClose follows, since OnOpen ran.
		ds.fail(fmt.Errorf("reactor/gnet: dial %s: OnOpen: %w", ds.addr, ErrHandlerPanic))
	}
	l.exit()
	l.cur = nil
	if l.curClose {
		l.curClose = false
		return gnetv2.Close
	}
	if w.flags&fPaused != 0 && gc.OutboundBuffered() > 0 {
		// gnet's open() re-arms EPOLLIN|EPOLLOUT after OnOpen when bytes are queued.
		l.post(task{op: opInterest, w: w})
	}
	return gnetv2.None
}

// onTraffic delivers inbound bytes. Runs on w's loop inside gnet's OnTraffic.
func (l *loop) onTraffic(w *conn) gnetv2.Action {
	if l.events++; l.events&63 == 0 {
		l.yieldIfDue()
	}
	l.cur = w
	w.touch(true)
	if w.flags&(fPaused|fClosing|fReasonSet) != 0 || w.xflags.Load() != 0 {
		// Not delivering: gnet re-armed EPOLLIN (after draining its outbound buffer) and
		// read once more. Take read interest away again; the bytes stay buffered.
		l.enter()
		if w.flags&(fPaused|fClosing) != 0 {
			l.setInterest(w)
		}
		if w.gc.InboundBuffered() > l.t.o.MaxReadBuffer {
			w.beginClose(errReadOverflow, closeHard)
		}
		l.exit()
	} else {
		w.deliver()
	}
	l.cur = nil
	if l.curClose {
		l.curClose = false
		return gnetv2.Close
	}
	return gnetv2.None
}

// onClose handles gnet closing a connection. Runs on its loop; gnet closes the fd after.
func (t *Transport) onClose(w *conn, err error) {
	if err != nil && errors.Is(err, io.EOF) && !t.closing.Load() && w.flags&fAborting == 0 {
		w.peerEOF()
		return
	}
	var reason error
	switch {
	case w.flags&fReasonSet != 0:
		reason = w.e.reason
	case w.xflags.Load()&(xCloseReq|xAbortReq) != 0:
		w.mu.Lock()
		reason = w.sh.reason
		w.mu.Unlock()
	case t.closing.Load():
		reason = errTransportClosed
	case err == nil:
		reason = errLoopStopped // every close the backend asks for carries a reason
	default:
		reason = mapErr(err)
	}
	w.finalize(reason)
}

// listener is a bound gnet engine's listening socket.
type listener struct {
	es   *engineState
	addr net.Addr
	once sync.Once
}

func (ln *listener) Addr() net.Addr { return ln.addr }

// Close stops accepting. gnet cannot stop one listener without stopping its engine (and every
// connection on it), so the listening socket is replaced in place: dup3 puts an unconnected,
// non-blocking AF_UNIX listening socket on the listener's fd number. That releases the TCP
// socket (the port is free, queued connections are reset), drops it from the accepting
// loop's epoll set, and leaves gnet a harmless fd to close when the engine stops. OnOpen also
// rejects anything accepted after Close. The engine itself stops once its last connection is
// gone.
func (ln *listener) Close() error {
	var err error
	ln.once.Do(func() { err = ln.es.closeListener() })
	return err
}
