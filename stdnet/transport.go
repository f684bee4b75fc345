// Package stdnet is Strait's classic reactor.Transport: one reader goroutine per connection
// over the standard library's net.TCPConn, with the same contract as the event-loop backends
// (reactor/gnet, reactor/netpoll). It owns its listeners, its connections' goroutines, their
// read buffers, write queues and timers, and nothing else.
//
// Who may call it: cmd/strait, which picks the backend, and tests. Everything else programs
// against the reactor interfaces.
//
// How the contract maps onto goroutines:
//   - Reading: each connection's reader goroutine waits for readability through
//     syscall.RawConn.Read without holding a buffer, takes a pooled buffer (mcache) only to
//     read and deliver, and returns it as soon as the handler consumed everything. Paused
//     connections are not read at all, so TCP flow control pushes back on the peer.
//   - Executors: Options.Loops of them per transport, each a mutex plus a FIFO of Exec
//     functions. Accepted connections and nil-near dials are spread over them round robin;
//     a dial near a connection joins its executor. The reader calls OnData under the
//     executor's mutex; Exec functions and internal events (OnWritable, OnClose, dial
//     completions) are drained under it by a pooled goroutine.
//   - Writing: with nothing queued, Write tries one non-blocking write(v) straight from the
//     caller's slices; the kernel usually takes it all and nothing is copied. What remains is
//     copied (Send keeps the caller's Buffer) into a queue that a writer goroutine, started on
//     demand, pushes out with blocking writes.
//   - Timers: one timing wheel per executor, under its mutex, advanced by one ticker
//     goroutine while it holds timers; idle/read timeout expiries and Conn.Schedule timer
//     functions therefore run on the executor.
package stdnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytedance/gopkg/util/gopool"

	"github.com/strait-proxy/strait/reactor"
)

// ErrHandlerPanic is the close reason (wrapped, with the value and stack) when a handler
// callback or an Exec function panicked.
var ErrHandlerPanic = errors.New("stdnet: handler panicked")

// Name is the backend's name for --transport.
const Name = "stdnet"

const (
	wheelSlots = 512 // slots per executor's timing wheel
	runnerCap  = 1024
)

var _ reactor.Factory = New

// Transport is the stdnet backend. Create it with New.
type Transport struct {
	o      reactor.Options
	run    func(func())
	ctx    context.Context // cancelled by Close: aborts dials in flight
	cancel context.CancelFunc

	execs    []*executor
	nextExec atomic.Uint32
	ids      atomic.Uint64
	open     atomic.Int64 // open connections, for MaxConns
	readBufs atomic.Int64 // pooled read buffers held right now (idle connections hold none)

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}

	stopTicker chan struct{}
	timersOff  atomic.Bool // set as Close returns: timer functions no longer start
}

// New returns a stdnet transport with o.Loops executors.
func New(o reactor.Options) (reactor.Transport, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("stdnet: %w", err)
	}
	o = o.WithDefaults()
	t := &Transport{
		o:          o,
		run:        o.Runner,
		listeners:  make(map[*listener]struct{}),
		conns:      make(map[*conn]struct{}),
		stopTicker: make(chan struct{}),
	}
	if t.run == nil {
		t.run = gopool.NewPool("stdnet", runnerCap, gopool.NewConfig()).Go
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.execs = make([]*executor, o.Loops)
	for i := range t.execs {
		t.execs[i] = newExecutor(t, i)
	}
	go t.tick()
	return t, nil
}

// Name implements reactor.Transport.
func (t *Transport) Name() string { return Name }

// tick advances, once per TimerTick, the wheel of every executor that has timers armed, under
// the executor's lock: expired timeouts close their connection and timer functions run on the
// executor. Executors with nothing armed cost an atomic load per tick.
func (t *Transport) tick() {
	tk := time.NewTicker(t.o.TimerTick)
	defer tk.Stop()
	for {
		select {
		case now := <-tk.C:
			for _, e := range t.execs {
				if e.armed.Load() {
					e.advance(now)
				}
			}
		case <-t.stopTicker:
			return
		}
	}
}

// Listen implements reactor.Transport.
func (t *Transport) Listen(addr string, h reactor.Handler) (reactor.Listener, error) {
	if h == nil {
		return nil, errors.New("stdnet: Listen with a nil handler")
	}
	if t.isClosed() {
		return nil, fmt.Errorf("stdnet: listen %s: %w", addr, reactor.ErrTransportClosed)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(t.ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stdnet: listen %s: %w", addr, err)
	}
	l := &listener{t: t, ln: ln.(*net.TCPListener), h: h}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		ln.Close()
		return nil, fmt.Errorf("stdnet: listen %s: %w", addr, reactor.ErrTransportClosed)
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	go l.serve()
	return l, nil
}

// Dial implements reactor.Transport. The connect runs on its own goroutine with a
// net.Dialer; near, when it is a connection of this transport, lends its executor.
func (t *Transport) Dial(near reactor.Conn, addr string, timeout time.Duration, h reactor.Handler,
	done func(reactor.Conn, error)) {
	var g *executor
	if near != nil {
		nc, ok := near.(*conn)
		if !ok || nc == nil || nc.t != t {
			t.dialFailed(nil, done, fmt.Errorf("stdnet: dial %s: near (%T) is not a connection of this transport", addr, near))
			return
		}
		g = nc.g
	}
	if timeout <= 0 {
		timeout = t.o.DialTimeout
	}
	if h == nil {
		t.dialFailed(g, done, fmt.Errorf("stdnet: dial %s with a nil handler", addr))
		return
	}
	if t.isClosed() {
		t.dialFailed(g, done, fmt.Errorf("stdnet: dial %s: %w", addr, reactor.ErrTransportClosed))
		return
	}
	go t.dial(g, addr, timeout, h, done)
}

func (t *Transport) dial(g *executor, addr string, timeout time.Duration, h reactor.Handler,
	done func(reactor.Conn, error)) {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		switch {
		case t.ctx.Err() != nil:
			err = fmt.Errorf("stdnet: dial %s: %w", addr, reactor.ErrTransportClosed)
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			err = fmt.Errorf("stdnet: dial %s: %w after %v: %w", addr, reactor.ErrDialTimeout, timeout, err)
		default:
			err = fmt.Errorf("stdnet: dial %s: %w", addr, err)
		}
		t.dialFailed(g, done, err)
		return
	}
	t.open.Add(1) // dialed connections count towards MaxConns but are never refused
	if g == nil {
		g = t.pickExecutor()
	}
	c := t.newConn(nc.(*net.TCPConn), g, h)
	if !t.register(c) {
		t.open.Add(-1)
		nc.Close()
		t.dialFailed(g, done, fmt.Errorf("stdnet: dial %s: %w", addr, reactor.ErrTransportClosed))
		return
	}
	g.exec(nil, c, func() {
		c.callOpen()
		c.callDone(done)
		go c.readLoop(false)
	})
}

// dialFailed reports err to done: on near's executor when there is one, else on the runner.
func (t *Transport) dialFailed(g *executor, done func(reactor.Conn, error), err error) {
	if g != nil {
		g.exec(nil, nil, func() { done(nil, err) })
		return
	}
	t.run(func() { done(nil, err) })
}

// Close implements reactor.Transport: it stops every listener and closes every connection
// with ErrTransportClosed (each flushing for at most CloseFlushTimeout). Later calls are
// no-ops.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	lns := make([]*listener, 0, len(t.listeners))
	for l := range t.listeners {
		lns = append(lns, l)
	}
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	t.cancel()
	var errs []error
	for _, l := range lns {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range conns {
		c.Close(reactor.ErrTransportClosed)
	}
	close(t.stopTicker)
	t.timersOff.Store(true)
	return errors.Join(errs...)
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *Transport) register(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) forget(c *conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	t.open.Add(-1)
}

// accept serves one accepted connection, or closes it at once past MaxConns.
func (t *Transport) accept(nc *net.TCPConn, h reactor.Handler) {
	if n := t.open.Add(1); t.o.MaxConns > 0 && n > int64(t.o.MaxConns) {
		t.open.Add(-1)
		nc.Close()
		return
	}
	c := t.newConn(nc, t.pickExecutor(), h)
	if !t.register(c) {
		t.open.Add(-1)
		nc.Close()
		return
	}
	go c.readLoop(true)
}

// pickExecutor assigns executors round robin.
func (t *Transport) pickExecutor() *executor {
	return t.execs[int(t.nextExec.Add(1)-1)%len(t.execs)]
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// listener is a bound socket with its accept goroutine.
type listener struct {
	t      *Transport
	ln     *net.TCPListener
	h      reactor.Handler
	closed atomic.Bool
}

// Addr implements reactor.Listener.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Close implements reactor.Listener: the socket is closed, so new connections are refused;
// established ones are not affected. Later calls are no-ops.
func (l *listener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.t.mu.Lock()
	delete(l.t.listeners, l)
	l.t.mu.Unlock()
	if err := l.ln.Close(); err != nil {
		return fmt.Errorf("stdnet: close listener %s: %w", l.ln.Addr(), err)
	}
	return nil
}

func (l *listener) serve() {
	var backoff time.Duration
	for {
		nc, err := l.ln.AcceptTCP()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE, ENFILE, ENOBUFS...: wait for descriptors to come back.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.t.accept(nc, l.h)
	}
}
