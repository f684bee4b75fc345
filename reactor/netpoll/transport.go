//go:build linux

package netpoll

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytedance/gopkg/util/gopool"
	cgopool "github.com/cloudwego/gopkg/concurrency/gopool"
	np "github.com/cloudwego/netpoll"

	"github.com/strait-proxy/strait/reactor"
)

// defaultRunnerCap bounds the default executor runner. Executor drains never block, so the
// bound is only a guard against a handler that does.
const defaultRunnerCap = 10000

// process holds what netpoll keeps process-wide. It is configured once, by the first New.
var process struct {
	once    sync.Once
	err     error
	loops   int
	bufSize int
	// tasks runs netpoll's reader tasks and dials. Both block by design (a reader task waits
	// for more bytes, a dial for the connect), so the pool is unbounded; it keeps idle workers
	// (a reader task per burst of bytes would otherwise start a goroutine each time).
	tasks *cgopool.GoPool
}

// nextID numbers connections process-wide (reactor.Conn.ID).
var nextID atomic.Uint64

// configure applies o's process-wide settings once. netpoll's poller count, default buffer
// size, LinkBufferCap and runner are globals read while connections are created, so changing
// them later would race with running transports: later calls keep the first values.
func configure(o reactor.Options) error {
	process.once.Do(func() {
		p := cgopool.NewGoPool("strait-netpoll-tasks", nil)
		p.SetPanicHandler(func(_ context.Context, r any) {
			log.Printf("reactor/netpoll: panic in a netpoll task: %v\n%s", r, debug.Stack())
		})
		process.tasks = p
		if o.ReadBufferSize < np.LinkBufferCap {
			np.LinkBufferCap = o.ReadBufferSize
		}
		process.loops, process.bufSize = o.Loops, o.ReadBufferSize
		process.err = np.Configure(np.Config{
			PollerNum:   o.Loops,
			BufferSize:  o.ReadBufferSize,
			LoadBalance: np.RoundRobin,
			Runner: func(ctx context.Context, f func()) {
				p.CtxGo(ctx, f)
			},
		})
	})
	return process.err
}

// transport implements reactor.Transport.
type transport struct {
	o    reactor.Options
	soft bool         // no netpoll hooks: pause only stops delivery (see README.md)
	run  func(func()) // executor drains and other short non-blocking work
	pool gopool.Pool  // the default runner's pool, nil with Options.Runner
	// readChunk caps one poller read; readAhead caps the bytes read beyond what the handler
	// left unconsumed before read interest is dropped (see conn.updateInterest).
	readChunk, readAhead int

	execs []*executor
	rr    atomic.Uint32

	conns   sync.Map     // id -> *conn, for the write pollers and Close
	pollers sync.Map     // epoll fd -> *pollerYield, one per netpoll poller
	active  atomic.Int64 // reserved connection slots (MaxConns)
	live    atomic.Int64 // connections whose OnClose (or final cleanup) has not run yet

	layoutWarn sync.Once

	mu        sync.Mutex
	closed    atomic.Bool
	closeOnce sync.Once
	listeners map[*listener]struct{}
}

var _ reactor.Transport = (*transport)(nil)

// New returns the netpoll transport (a reactor.Factory).
//
// netpoll keeps its poller count, its default input buffer size, LinkBufferCap (the minimum
// LinkBuffer node) and its task runner in package globals. The first New in a process sets
// them from its Options (Loops pollers, ReadBufferSize input nodes, LinkBufferCap lowered to
// ReadBufferSize when that is smaller); later transports in the same process share those
// settings and only their per-transport options (executors, watermarks, limits, timeouts)
// differ.
func New(o reactor.Options) (reactor.Transport, error) {
	return newTransport(o, false)
}

func newTransport(o reactor.Options, soft bool) (*transport, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("reactor/netpoll: %w", err)
	}
	o = o.WithDefaults()
	if err := configure(o); err != nil {
		return nil, fmt.Errorf("reactor/netpoll: configure netpoll: %w", err)
	}
	if _, err := resolveLayout(); err != nil && !soft {
		log.Printf("reactor/netpoll: %v; PauseRead falls back to stopping delivery", err)
		soft = true
	}
	t := &transport{o: o, soft: soft, listeners: make(map[*listener]struct{})}
	t.readChunk = min(max(o.ReadBufferSize, 64<<10), max(o.MaxReadBuffer/4, 4<<10))
	t.readAhead = max(o.MaxReadBuffer/4, t.readChunk)
	if o.Runner != nil {
		t.run = o.Runner
	} else {
		t.pool = gopool.NewPool("strait-netpoll-exec", defaultRunnerCap, gopool.NewConfig())
		t.pool.SetPanicHandler(func(_ context.Context, r any) {
			log.Printf("reactor/netpoll: panic on an executor: %v\n%s", r, debug.Stack())
		})
		t.run = t.pool.Go
	}
	for i := range o.Loops {
		e, err := newExecutor(t, i)
		if err != nil {
			for _, e := range t.execs {
				e.stop()
			}
			return nil, err
		}
		t.execs = append(t.execs, e)
	}
	return t, nil
}

func (t *transport) Name() string { return Name }

// pick assigns the next executor round robin.
func (t *transport) pick() *executor {
	return t.execs[int(t.rr.Add(1)-1)%len(t.execs)]
}

// reserve takes a slot for an accepted connection; false when MaxConns is reached or the
// transport closed.
func (t *transport) reserve() bool {
	n := t.active.Add(1)
	if t.closed.Load() || (t.o.MaxConns > 0 && n > int64(t.o.MaxConns)) {
		t.active.Add(-1)
		return false
	}
	return true
}

// Dial connects on a task goroutine (netpoll's DialConnection blocks until the connect
// finished) and reports on the executor.
func (t *transport) Dial(near reactor.Conn, addr string, timeout time.Duration, h reactor.Handler,
	done func(reactor.Conn, error)) {
	var e *executor
	if nc, ok := near.(*conn); ok && nc != nil && nc.t == t {
		e = nc.e
	} else {
		e = t.pick()
	}
	if timeout <= 0 {
		timeout = t.o.DialTimeout
	}
	fail := func(err error) {
		if near != nil {
			e.submit(nil, func() { done(nil, err) })
			return
		}
		t.run(func() { done(nil, err) })
	}
	if t.closed.Load() {
		fail(fmt.Errorf("reactor/netpoll: dial %s: %w", addr, reactor.ErrTransportClosed))
		return
	}
	process.tasks.Go(func() {
		start := time.Now()
		nc, err := np.DialConnection("tcp", addr, timeout)
		if err != nil {
			// netpoll v0.7.2 reports an expired connect as a plain "i/o timeout" error.
			var ne net.Error
			if (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) ||
				time.Since(start) >= timeout*9/10 || strings.Contains(err.Error(), "i/o timeout") {
				err = fmt.Errorf("reactor/netpoll: dial %s: %w: %v", addr, reactor.ErrDialTimeout, err)
			} else {
				err = fmt.Errorf("reactor/netpoll: dial %s: %w", addr, err)
			}
			fail(err)
			return
		}
		// Dialed connections count towards MaxConns (so accepted ones are refused sooner)
		// but are never refused for it.
		t.active.Add(1)
		if t.closed.Load() {
			t.active.Add(-1)
			_ = nc.Close()
			fail(fmt.Errorf("reactor/netpoll: dial %s: %w", addr, reactor.ErrTransportClosed))
			return
		}
		c, err := t.newConn(nc, e, h, true)
		if err != nil {
			t.active.Add(-1)
			_ = nc.Close()
			fail(fmt.Errorf("reactor/netpoll: dial %s: %w", addr, err))
			return
		}
		e.submit(c, func() { c.openDialed(done) })
	})
}

// Close stops the listeners, closes every connection with ErrTransportClosed and waits
// (bounded by CloseFlushTimeout plus a grace period) until they are gone. It must not be
// called from a handler callback: it waits for callbacks to finish.
func (t *transport) Close() error {
	first := false
	t.closeOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	t.closed.Store(true)
	t.mu.Lock()
	ls := make([]*listener, 0, len(t.listeners))
	for l := range t.listeners {
		ls = append(ls, l)
	}
	t.mu.Unlock()
	for _, l := range ls {
		_ = l.Close()
	}
	// Close every connection, again every few milliseconds so that one accepted or dialed
	// while this runs is caught too (Close is a no-op on a closing connection).
	deadline := time.Now().Add(t.o.CloseFlushTimeout + time.Second)
	for t.live.Load() > 0 && time.Now().Before(deadline) {
		t.eachConn(func(c *conn) { c.Close(reactor.ErrTransportClosed) })
		time.Sleep(2 * time.Millisecond)
	}
	deadline = time.Now().Add(2 * time.Second)
	for t.live.Load() > 0 && time.Now().Before(deadline) { // flushes that did not finish
		t.eachConn(func(c *conn) { c.closeWith(reactor.ErrTransportClosed) })
		time.Sleep(2 * time.Millisecond)
	}
	for _, e := range t.execs {
		e.stop()
	}
	if n := t.live.Load(); n > 0 {
		return fmt.Errorf("reactor/netpoll: %d connection(s) did not finish closing", n)
	}
	return nil
}

func (t *transport) eachConn(fn func(c *conn)) {
	t.conns.Range(func(_, v any) bool {
		fn(v.(*conn))
		return true
	})
}

// lookup finds a live connection by id (write pollers).
func (t *transport) lookup(id uint64) *conn {
	if v, ok := t.conns.Load(id); ok {
		return v.(*conn)
	}
	return nil
}

// panicked handles a panic in a callback or Exec function of c (nil: not tied to a conn).
func (t *transport) panicked(c *conn, r any) {
	if c == nil {
		t.o.Log().Error("reactor/netpoll: panic on an executor", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		return
	}
	t.o.Log().Error("reactor/netpoll: handler panic", "conn", c.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	c.closeWith(fmt.Errorf("%w: %v", ErrPanic, r))
}

// pollerYield returns the yield state of the netpoll poller whose epoll instance is epfd.
func (t *transport) pollerYield(epfd int) *pollerYield {
	if v, ok := t.pollers.Load(epfd); ok {
		return v.(*pollerYield)
	}
	v, _ := t.pollers.LoadOrStore(epfd, &pollerYield{})
	return v.(*pollerYield)
}
