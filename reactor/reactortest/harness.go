package reactortest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// Time budgets. They are generous because the suite runs under -race on two shared cores;
// a backend that needs them is broken, not slow.
const (
	stepTimeout  = 20 * time.Second // one client step (dial, a round trip, a short read)
	bulkTimeout  = 90 * time.Second // a whole bulk transfer
	closeTimeout = 10 * time.Second // OnClose after the cause happened
)

// env is one subtest's transport plus the monitor watching every connection it serves.
type env struct {
	t    *testing.T
	tr   reactor.Transport
	o    reactor.Options // with defaults applied
	name string
	mon  *monitor
}

// start builds a transport for t with o. The monitor's final check is registered before the
// transport so that it runs after newTransport's Close cleanup.
func (s *suite) start(t *testing.T, o reactor.Options) *env {
	t.Helper()
	e := &env{t: t, o: o.WithDefaults(), name: "?"}
	e.mon = &monitor{e: e, conns: make(map[uint64]*connRec)}
	t.Cleanup(e.finish)
	e.tr = s.newTransport(t, o)
	if e.tr == nil {
		t.Fatal("reactortest: newTransport returned a nil transport")
	}
	e.name = e.tr.Name()
	return e
}

// finish closes the transport (a second Close must be harmless), then checks that every
// connection that was opened got exactly one OnClose.
func (e *env) finish() {
	if err := e.tr.Close(); err != nil && !errors.Is(err, reactor.ErrTransportClosed) &&
		!errors.Is(err, reactor.ErrClosed) {
		e.t.Errorf("[%s] Transport.Close (second call, from the suite's cleanup): %v", e.name, err)
	}
	deadline := time.Now().Add(closeTimeout)
	for {
		open := e.mon.openIDs()
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Errorf("[%s] %d connection(s) never got OnClose after Transport.Close: ids %v",
				e.name, len(open), open)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.mon.mu.Lock()
	e.mon.done = true
	e.mon.mu.Unlock()
}

// errorf reports a failure from any goroutine (handlers included) while the test runs; it is
// dropped once the test's cleanup finished.
func (e *env) errorf(format string, args ...any) {
	e.mon.mu.Lock()
	defer e.mon.mu.Unlock()
	if !e.mon.done {
		e.t.Errorf("[%s] "+format, append([]any{e.name}, args...)...)
	}
}

// fatalf stops the test; only from the test goroutine. The message ends with the last close
// reasons the transport reported, which usually explain a client-side symptom.
func (e *env) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf("[%s] "+format+"%s", append(append([]any{e.name}, args...), e.mon.recentCloses())...)
}

// listen serves h (wrapped by the monitor) on 127.0.0.1:0 and returns the address.
func (e *env) listen(h reactor.Handler) (string, reactor.Listener) {
	e.t.Helper()
	ln, err := e.tr.Listen("127.0.0.1:0", e.mon.wrap(h))
	if err != nil {
		e.fatalf("Listen(127.0.0.1:0): %v", err)
	}
	if ln == nil || ln.Addr() == nil {
		e.fatalf("Listen returned no listener or no address")
	}
	return ln.Addr().String(), ln
}

// dial opens a plain client connection to addr with a deadline on every operation.
func (e *env) dial(addr string) *net.TCPConn {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", addr, stepTimeout)
	if err != nil {
		e.fatalf("client dial %s: %v", addr, err)
	}
	e.t.Cleanup(func() { c.Close() })
	tc := c.(*net.TCPConn)
	_ = tc.SetDeadline(time.Now().Add(bulkTimeout))
	return tc
}

// roundTrip writes msg and reads len(msg) bytes back, failing the test unless they match.
func (e *env) roundTrip(c net.Conn, msg []byte, step string) {
	e.t.Helper()
	_ = c.SetDeadline(time.Now().Add(stepTimeout))
	if _, err := c.Write(msg); err != nil {
		e.fatalf("%s: client write: %v", step, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		e.fatalf("%s: client read of the %d-byte echo: %v", step, len(msg), err)
	}
	if string(got) != string(msg) {
		e.fatalf("%s: echo mismatch: sent %q, got %q", step, clip(msg), clip(got))
	}
}

// expectEnd waits until the server side ended c: a read returns EOF or a reset. Bytes that
// arrive first are returned.
func (e *env) expectEnd(c net.Conn, step string) []byte {
	e.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(closeTimeout))
	got, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		e.fatalf("%s: client expected the connection to end (EOF or reset), got %v after %d bytes",
			step, err, len(got))
	}
	return got
}

// recv waits for a value on ch.
func recv[T any](e *env, ch <-chan T, d time.Duration, what string) T {
	e.t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		e.fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}

// eventually polls cond until it holds or d passes.
func (e *env) eventually(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func isReset(err error) bool {
	return err != nil && (errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") ||
		strings.Contains(err.Error(), "broken pipe") || errors.Is(err, syscall.ECONNRESET))
}

func clip(p []byte) []byte {
	if len(p) > 64 {
		return p[:64]
	}
	return p
}

// funcs is a reactor.Handler made of optional functions. Missing OnData consumes everything;
// missing OnPeerClose returns false.
type funcs struct {
	open      func(c reactor.Conn)
	data      func(c reactor.Conn, in reactor.View)
	writable  func(c reactor.Conn)
	peerClose func(c reactor.Conn) bool
	close     func(c reactor.Conn, err error)
}

func (f *funcs) OnOpen(c reactor.Conn) {
	if f.open != nil {
		f.open(c)
	}
}

func (f *funcs) OnData(c reactor.Conn, in reactor.View) {
	if f.data != nil {
		f.data(c, in)
		return
	}
	in.Skip(in.Len())
}

func (f *funcs) OnWritable(c reactor.Conn) {
	if f.writable != nil {
		f.writable(c)
	}
}

func (f *funcs) OnPeerClose(c reactor.Conn) bool {
	if f.peerClose != nil {
		return f.peerClose(c)
	}
	return false
}

func (f *funcs) OnClose(c reactor.Conn, err error) {
	if f.close != nil {
		f.close(c, err)
	}
}

// echo returns a handler that writes back what it reads and respects back-pressure: it pauses
// its own reading while its outbound queue is congested.
func echo() *funcs {
	return &funcs{
		data: func(c reactor.Conn, in reactor.View) {
			if err := c.Write(in.Peek(-1)); err != nil {
				return
			}
			in.Skip(in.Len())
			if c.Congested() {
				c.PauseRead(true)
			}
		},
		writable: func(c reactor.Conn) { c.PauseRead(false) },
	}
}

// closeEvent is what OnClose reported.
type closeEvent struct {
	c   reactor.Conn
	err error
	at  time.Time
}

// monitor checks the contract's invariants on every callback: per connection (OnOpen first
// and once, nothing after OnClose, a stable ExecutorID) and per executor (callbacks of its
// connections never run at the same time on different goroutines; a callback nested in another
// on the same goroutine, like an OnClose run from inside Close, is allowed).
type monitor struct {
	e      *env
	mu     sync.Mutex
	done   bool
	conns  map[uint64]*connRec
	execs  map[int]*execRec
	open   int
	closes []string // the last few OnClose reasons, for failure messages
}

// recentCloses formats the last OnClose reasons.
func (m *monitor) recentCloses() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.closes) == 0 {
		return ""
	}
	return "\n\trecent OnClose calls: " + strings.Join(m.closes, "; ")
}

type connRec struct {
	closes int
	exec   int // ExecutorID at OnOpen
}

type execRec struct {
	owner int64 // goroutine running a callback of the executor, 0 when none
	depth int
	conn  uint64 // the conn whose callback owns the executor
	cb    string
}

func (m *monitor) wrap(h reactor.Handler) reactor.Handler { return &checked{m: m, h: h} }

// openIDs lists the connections that got OnOpen and no OnClose yet.
func (m *monitor) openIDs() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []uint64
	for id, r := range m.conns {
		if r.closes == 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// openCount is the number of connections currently between OnOpen and OnClose.
func (m *monitor) openCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open
}

// totalOpened is the number of connections that ever got OnOpen.
func (m *monitor) totalOpened() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.conns)
}

func (m *monitor) violation(format string, args ...any) {
	m.e.errorf("contract violation: "+format, args...)
}

// enter records that callback cb of c starts; the returned record (nil after a violation)
// goes to exit.
func (m *monitor) enter(c reactor.Conn, cb string, opening, closing bool) *execRec {
	id, eid, gid := c.ID(), c.ExecutorID(), goroutineID()
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.conns[id]
	switch {
	case opening && r != nil:
		m.violationLocked("OnOpen for conn id %d, which was already opened (ids must be unique)", id)
		return nil
	case opening:
		r = &connRec{exec: eid}
		m.conns[id] = r
		m.open++
	case r == nil:
		m.violationLocked("%s for conn id %d before its OnOpen", cb, id)
		return nil
	case r.closes > 0 && closing:
		m.violationLocked("OnClose called %d times for conn id %d", r.closes+1, id)
		return nil
	case r.closes > 0:
		m.violationLocked("%s for conn id %d after its OnClose", cb, id)
		return nil
	}
	if r.exec != eid {
		m.violationLocked("conn id %d: ExecutorID was %d at OnOpen and is %d in %s", id, r.exec, eid, cb)
	}
	if closing {
		r.closes++
		m.open--
	}
	if eid < 0 {
		m.violationLocked("conn id %d: negative ExecutorID %d", id, eid)
		return nil
	}
	if m.execs == nil {
		m.execs = make(map[int]*execRec)
	}
	x := m.execs[eid]
	if x == nil {
		x = &execRec{}
		m.execs[eid] = x
	}
	if x.owner != 0 && x.owner != gid {
		m.violationLocked("%s of conn id %d ran on executor %d while %s of conn id %d was running there "+
			"on another goroutine", cb, id, eid, x.cb, x.conn)
		return nil
	}
	if x.depth == 0 {
		x.conn, x.cb = id, cb
	}
	x.owner = gid
	x.depth++
	return x
}

func (m *monitor) exit(x *execRec) {
	if x == nil {
		return
	}
	m.mu.Lock()
	if x.depth--; x.depth == 0 {
		x.owner = 0
	}
	m.mu.Unlock()
}

// violationLocked reports with m.mu held.
func (m *monitor) violationLocked(format string, args ...any) {
	if !m.done {
		m.e.t.Errorf("[%s] contract violation: "+format, append([]any{m.e.name}, args...)...)
	}
}

// goroutineID parses the current goroutine's id from its stack header ("goroutine 42 [").
func goroutineID() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		if id, err := strconv.ParseInt(string(b[:i]), 10, 64); err == nil {
			return id
		}
	}
	return -1
}

// checked wraps a Handler with the monitor's checks.
type checked struct {
	m *monitor
	h reactor.Handler
}

func (w *checked) OnOpen(c reactor.Conn) {
	x := w.m.enter(c, "OnOpen", true, false)
	defer w.m.exit(x)
	w.h.OnOpen(c)
}

func (w *checked) OnData(c reactor.Conn, in reactor.View) {
	x := w.m.enter(c, "OnData", false, false)
	defer w.m.exit(x)
	if in.Len() == 0 {
		w.m.violation("OnData for conn id %d with an empty view", c.ID())
	}
	w.h.OnData(c, in)
}

func (w *checked) OnWritable(c reactor.Conn) {
	x := w.m.enter(c, "OnWritable", false, false)
	defer w.m.exit(x)
	w.h.OnWritable(c)
}

func (w *checked) OnPeerClose(c reactor.Conn) bool {
	x := w.m.enter(c, "OnPeerClose", false, false)
	defer w.m.exit(x)
	return w.h.OnPeerClose(c)
}

func (w *checked) OnClose(c reactor.Conn, err error) {
	x := w.m.enter(c, "OnClose", false, true)
	defer w.m.exit(x)
	w.m.mu.Lock()
	if len(w.m.closes) == 8 {
		w.m.closes = append(w.m.closes[:0], w.m.closes[1:]...)
	}
	w.m.closes = append(w.m.closes, fmt.Sprintf("conn %d: %s", c.ID(), describe(err)))
	w.m.mu.Unlock()
	w.h.OnClose(c, err)
}

// countingReleaser counts Release calls; it is attached to Buffers given to Send.
type countingReleaser struct {
	n *atomic.Int64
}

func (r countingReleaser) Release() error {
	r.n.Add(1)
	return nil
}

// ownedBuffer returns a Buffer holding p whose release increments n.
func ownedBuffer(p []byte, n *atomic.Int64) *reactor.Buffer {
	b := reactor.NewBuffer()
	b.AppendOwned(p, countingReleaser{n})
	return b
}

func errIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) || (t == nil && err == nil) {
			return true
		}
	}
	return false
}

func describe(err error) string {
	if err == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q (%T)", err.Error(), err)
}
