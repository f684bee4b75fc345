// Package gnet is Strait's reactor.Transport on github.com/panjf2000/gnet/v2 (v2.9.7) event
// loops: the executor of a connection is the gnet event loop it lives on, handler callbacks
// run on that loop and never block it, and upstreams dialed near a downstream are registered
// on the downstream's own loop so that forwarding is a synchronous, copy-free Write.
//
// It owns: one gnet engine per listener (Options.Loops loops each), a gnet client engine
// started only for dials with a nil near while no listener accepts, a timing wheel and a task
// inbox per loop, and the bridging that gnet lacks (read pausing through the loop's epoll set,
// a half-closed write side on a Go net.Conn, drain polling for the watermarks, recovery from
// handler panics). The few reads of gnet's unexported state are isolated in layout.go.
//
// Who may call it: cmd/strait constructs it through New (a reactor.Factory); everything else
// uses it through the reactor interfaces only. See README.md for how the contract maps onto
// gnet, the copies per forwarded byte, the memory of an idle connection and the limitations.
package gnet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytedance/gopkg/util/gopool"
	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// ErrForeignConn is reported to a dial's done when near is not a connection of this transport.
var ErrForeignConn = errors.New("reactor/gnet: near connection belongs to another transport")

// Transport is the gnet backend. Build it with New.
type Transport struct {
	o      reactor.Options
	lay    *layout
	runner func(func())
	dialer net.Dialer

	ids     atomic.Uint64
	rr      atomic.Uint64 // round robin of nil-near dials
	open    atomic.Int64  // open connections, for MaxConns
	closing atomic.Bool   // Close started: OnClose reasons become ErrTransportClosed

	ctx    context.Context // cancelled by Close; dials use it
	cancel context.CancelFunc
	dials  sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	engines  []*engineState
	client   *engineState
	loops    []*loop
	detached map[*conn]struct{}

	clockKick chan struct{}
	clockStop chan struct{}
	clockDone chan struct{}
}

var _ reactor.Transport = (*Transport)(nil)

// New builds a gnet transport. It fails with ErrLayout if the gnet module is not the v2.9.7
// this backend reads internals of.
func New(o reactor.Options) (reactor.Transport, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("reactor/gnet: %w", err)
	}
	lay, err := probeLayout()
	if err != nil {
		return nil, err
	}
	t := &Transport{
		o:         o.WithDefaults(),
		lay:       lay,
		runner:    o.Runner,
		detached:  make(map[*conn]struct{}),
		clockKick: make(chan struct{}, 1),
		clockStop: make(chan struct{}),
		clockDone: make(chan struct{}),
	}
	if t.runner == nil {
		p := gopool.NewPool("strait-reactor-gnet", math.MaxInt32, gopool.NewConfig())
		p.SetPanicHandler(func(_ context.Context, r any) {
			_ = t.recovered(nil, -1, "a task on the dial runner", r, debug.Stack())
		})
		t.runner = p.Go
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	go t.clock()
	return t, nil
}

// Name implements reactor.Transport.
func (t *Transport) Name() string { return "gnet" }

// gnetOptions are the engine options. Accepted connections go to loops round robin (the
// contract's assignment; only the accepting loop calls the balancer, so gnet's non-atomic
// round robin is safe). The client engine always balances by least connections (gnet
// hard-codes it in NewClient).
//
// Listener engines run gnet's ticker only for its first OnTick, which gnet calls right after
// the engine registered its loops: that is when the backend lists them (layout.eventLoops).
func (t *Transport) gnetOptions(listener bool) []gnetv2.Option {
	return []gnetv2.Option{
		gnetv2.WithNumEventLoop(t.o.Loops),
		gnetv2.WithReadBufferCap(t.o.ReadBufferSize),
		gnetv2.WithLoadBalancing(gnetv2.RoundRobin),
		gnetv2.WithReuseAddr(true),
		gnetv2.WithTCPNoDelay(gnetv2.TCPNoDelay),
		gnetv2.WithLogger(quietLogger{}),
		gnetv2.WithTicker(listener),
	}
}

// Listen implements reactor.Transport: it starts a gnet engine for addr and returns once the
// socket is bound and listening.
func (t *Transport) Listen(addr string, h reactor.Handler) (reactor.Listener, error) {
	if h == nil {
		return nil, errors.New("reactor/gnet: nil handler")
	}
	es := newEngineState(t, h, false)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errTransportClosed
	}
	t.engines = append(t.engines, es)
	t.mu.Unlock()

	go func() {
		es.runErr = gnetv2.Run(&es.ev, "tcp://"+addr, t.gnetOptions(true)...)
		close(es.runDone)
	}()
	select {
	case <-es.started:
	case <-es.runDone:
		t.forgetEngine(es)
		return nil, fmt.Errorf("reactor/gnet: listen %s: %w", addr, es.runErr)
	}
	if es.loopsErr != nil {
		es.stop()
		t.forgetEngine(es)
		return nil, fmt.Errorf("reactor/gnet: listen %s: %w", addr, es.loopsErr)
	}
	fail := func(err error) (reactor.Listener, error) {
		es.stop()
		t.forgetEngine(es)
		return nil, fmt.Errorf("reactor/gnet: listen %s: %w", addr, err)
	}
	if err := es.ensureLoops(); err != nil {
		return fail(err)
	}
	fds, err := t.lay.listenerFDs(es.eng)
	if err != nil || len(fds) != 1 {
		return fail(errors.Join(err, ErrLayout))
	}
	es.lnFD = fds[0]
	dup, err := es.eng.Dup()
	if err != nil {
		return fail(err)
	}
	sa, err := unix.Getsockname(dup)
	_ = unix.Close(dup)
	if err != nil {
		return fail(err)
	}
	ln := &listener{es: es, addr: sockaddrToTCP(sa)}
	return ln, nil
}

// Dial implements reactor.Transport. The connect runs on the runner (net.Dialer, so the
// timeout applies); the connected socket is then enrolled on near's loop or, when near is
// nil, on the next loop (round robin) of the oldest listener engine still accepting, or of
// the client engine when there is none.
func (t *Transport) Dial(near reactor.Conn, addr string, timeout time.Duration, h reactor.Handler, done func(reactor.Conn, error)) {
	if timeout <= 0 {
		timeout = t.o.DialTimeout
	}
	ds := &dialState{t: t, h: h, done: done, addr: addr}
	if near != nil {
		c, ok := near.(*conn)
		if !ok || c.l.t != t {
			t.runner(func() { ds.fail(ErrForeignConn) })
			return
		}
		ds.near = c.l
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.runner(func() { ds.fail(errTransportClosed) })
		return
	}
	t.dials.Add(1)
	t.mu.Unlock()
	if ds.near != nil && !ds.near.es.acquire() {
		t.dials.Done()
		t.runner(func() { ds.fail(errClosed) })
		return
	}
	t.runner(func() { t.dial(ds, timeout) })
}

// dialState carries a dial from Dial to OnOpen (as the gnet connection's context).
type dialState struct {
	t        *Transport
	h        reactor.Handler
	done     func(reactor.Conn, error)
	addr     string
	near     *loop // near's loop: failures are reported there
	finished bool  // done was called; only touched on the loop that reports
}

func (ds *dialState) fail(err error) {
	if ds.finished {
		return
	}
	ds.finished = true
	defer ds.rescueDone()
	ds.done(nil, err)
}

// report delivers a dial failure where the contract wants it: on near's executor, or on
// this pooled goroutine for a nil near.
func (ds *dialState) report(err error) {
	if ds.near != nil {
		ds.near.post(task{op: opDialFail, ds: ds, err: err})
		return
	}
	ds.fail(err)
}

// dial runs on the runner.
func (t *Transport) dial(ds *dialState, timeout time.Duration) {
	defer t.dials.Done()
	home := ds.near
	if home != nil {
		defer home.es.release()
	}
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	nc, err := t.dialer.DialContext(ctx, "tcp", ds.addr)
	cancel()
	if err != nil {
		ds.report(t.dialErr(ds.addr, err))
		return
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		_ = nc.Close()
		ds.report(errTransportClosed)
		return
	}
	if home == nil {
		if home, err = t.pickLoop(); err != nil {
			_ = nc.Close()
			ds.report(err)
			return
		}
		defer home.es.release()
	}
	ch, err := home.el.Enroll(gnetv2.NewContext(context.Background(), ds), nc)
	if err != nil {
		_ = nc.Close()
		ds.report(fmt.Errorf("reactor/gnet: dial %s: %w", ds.addr, err))
		return
	}
	if res := <-ch; res.Err != nil {
		ds.report(fmt.Errorf("reactor/gnet: dial %s: %w", ds.addr, res.Err))
		return
	}
	// OnOpen ran on home (and called done) unless gnet failed to register the fd, in which
	// case this reports the failure there, once.
	if ds.near == nil {
		ds.near = home
	}
	ds.near.post(task{op: opDialFail, ds: ds, err: fmt.Errorf(
		"reactor/gnet: dial %s: %w: connection not registered", ds.addr, reactor.ErrClosed)})
}

// pickLoop chooses the loop for a dial with a nil near and counts the dial on its engine.
func (t *Transport) pickLoop() (*loop, error) {
	for {
		t.mu.Lock()
		engines := append([]*engineState(nil), t.engines...)
		t.mu.Unlock()
		var es *engineState
		for _, e := range engines {
			if !e.lnClosed.Load() && e.loopsReady() {
				es = e
				break
			}
		}
		if es == nil {
			var err error
			if es, err = t.clientEngine(); err != nil {
				return nil, err
			}
		}
		loops := es.loopList()
		if len(loops) == 0 {
			return nil, fmt.Errorf("reactor/gnet: engine without loops: %w", ErrLayout)
		}
		l := loops[int(t.rr.Add(1)-1)%len(loops)]
		if es.acquire() {
			return l, nil
		}
		// The engine began stopping in between; pick again.
	}
}

func (t *Transport) dialErr(addr string, err error) error {
	var ne net.Error
	switch {
	case t.ctx.Err() != nil:
		return errTransportClosed
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("reactor/gnet: dial %s: %w: %w", addr, reactor.ErrDialTimeout, err)
	default:
		return fmt.Errorf("reactor/gnet: dial %s: %w", addr, err)
	}
}

// clientEngine starts the client engine on first use. Lock order: es.mu before t.mu.
func (t *Transport) clientEngine() (*engineState, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errTransportClosed
	}
	es := t.client
	if es == nil {
		es = newEngineState(t, nil, true)
		cli, err := gnetv2.NewClient(&es.ev, t.gnetOptions(false)...)
		if err == nil {
			err = cli.Start()
		}
		if err != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("reactor/gnet: client engine: %w", err)
		}
		es.cli = cli
		t.client = es
	}
	t.mu.Unlock()
	if err := es.ensureLoops(); err != nil {
		return nil, err
	}
	return es, nil
}

// Close implements reactor.Transport.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.closing.Store(true)
	t.mu.Unlock()

	t.cancel()
	t.dials.Wait() // no Enroll may race with the engines' shutdown

	t.mu.Lock()
	engines := append([]*engineState(nil), t.engines...)
	if t.client != nil {
		engines = append(engines, t.client)
	}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, es := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			es.stop()
		}()
	}
	wg.Wait()

	// Every loop is dead now; half-closed connections are the only ones left.
	t.mu.Lock()
	var left []*conn
	for w := range t.detached {
		left = append(left, w)
	}
	t.mu.Unlock()
	for _, w := range left {
		d := w.e.d
		d.stop(false)
		<-d.exited
		w.l.deadMu.Lock()
		w.finalize(w.reasonOr(errTransportClosed))
		w.l.unlockDead() // runs what OnClose posted to the dead loop meanwhile
	}
	close(t.clockStop)
	<-t.clockDone
	return nil
}

func (t *Transport) forgetEngine(es *engineState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, e := range t.engines {
		if e == es {
			t.engines = append(t.engines[:i], t.engines[i+1:]...)
			return
		}
	}
}

func (t *Transport) rememberDetached(w *conn) {
	t.mu.Lock()
	t.detached[w] = struct{}{}
	t.mu.Unlock()
}

func (t *Transport) forgetDetached(w *conn) {
	t.mu.Lock()
	delete(t.detached, w)
	t.mu.Unlock()
}

// addLoops registers an engine's loops with the clock and gives them the next ExecutorIDs.
func (t *Transport) addLoops(ls []*loop) {
	t.mu.Lock()
	for _, l := range ls {
		l.id = len(t.loops)
		t.loops = append(t.loops, l)
	}
	t.mu.Unlock()
}

// kickClock tells the clock that a loop started watching drains.
func (t *Transport) kickClock() {
	select {
	case t.clockKick <- struct{}{}:
	default:
	}
}

// clock posts timing-wheel ticks to loops with armed timeouts every TimerTick, and drain
// checks every drainPoll to loops that watch connections.
func (t *Transport) clock() {
	defer close(t.clockDone)
	tick := time.NewTicker(t.o.TimerTick)
	defer tick.Stop()
	fast := time.NewTimer(drainPoll)
	fast.Stop()
	fastOn := false
	var loops []*loop
	snapshot := func() []*loop {
		t.mu.Lock()
		loops = append(loops[:0], t.loops...)
		t.mu.Unlock()
		return loops
	}
	for {
		select {
		case <-t.clockStop:
			fast.Stop()
			return
		case <-tick.C:
			for _, l := range snapshot() {
				l.postTick()
			}
		case <-t.clockKick:
			if !fastOn {
				fastOn = true
				fast.Reset(drainPoll)
			}
		case <-fast.C:
			busy := false
			for _, l := range snapshot() {
				if l.watching.Load() {
					busy = true
					l.postWatch()
				}
			}
			if fastOn = busy; busy {
				fast.Reset(drainPoll)
			}
		}
	}
}

func sockaddrToTCP(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	case *unix.SockaddrInet6:
		ip := append(net.IP(nil), a.Addr[:]...)
		var zone string
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: ip, Port: a.Port, Zone: zone}
	default:
		return &net.TCPAddr{}
	}
}

// quietLogger drops gnet's own log lines; the transport reports through OnClose and errors.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(string, ...any) {}
