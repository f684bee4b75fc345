package pipeline

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/strait-proxy/strait/reactor"
)

// testConn is an in-memory reactor.Conn for the listener's handler.
type testConn struct {
	ctx    any
	out    bytes.Buffer
	paused bool
	closed error
}

var _ reactor.Conn = (*testConn)(nil)

func (c *testConn) ID() uint64                                     { return 7 }
func (c *testConn) ExecutorID() int                                { return 0 }
func (c *testConn) LocalAddr() net.Addr                            { return &net.TCPAddr{} }
func (c *testConn) RemoteAddr() net.Addr                           { return &net.TCPAddr{} }
func (c *testConn) Write(p []byte) error                           { c.out.Write(p); return nil }
func (c *testConn) Writev(bufs [][]byte) error                     { return c.Write(bytes.Join(bufs, nil)) }
func (c *testConn) Outbound() int                                  { return 0 }
func (c *testConn) Congested() bool                                { return false }
func (c *testConn) PauseRead(p bool)                               { c.paused = p }
func (c *testConn) CloseWrite() error                              { return nil }
func (c *testConn) SetIdleTimeout(time.Duration)                   {}
func (c *testConn) SetReadTimeout(time.Duration)                   {}
func (c *testConn) Schedule(*reactor.Timer, time.Duration, func()) {}
func (c *testConn) Unschedule(*reactor.Timer) bool                 { return false }
func (c *testConn) Context() any                                   { return c.ctx }
func (c *testConn) SetContext(v any)                               { c.ctx = v }
func (c *testConn) Send(b *reactor.Buffer) error                   { b.Release(); return nil }
func (c *testConn) Exec(fn func()) bool                            { fn(); return true }
func (c *testConn) Close(reason error)                             { c.closed = reason }
func (c *testConn) Abort(reason error)                             { c.closed = reason }

// testView is a reactor.View over a byte slice.
type testView struct{ b []byte }

func (v *testView) Len() int { return len(v.b) }
func (v *testView) Peek(n int) []byte {
	if n <= 0 || n > len(v.b) {
		n = len(v.b)
	}
	return v.b[:n]
}
func (v *testView) Skip(n int) { v.b = v.b[min(n, len(v.b)):] }
func (v *testView) Detach(n int) *reactor.Buffer {
	n = min(n, len(v.b))
	b := reactor.NewBuffer()
	b.AppendOwned(append([]byte(nil), v.b[:n]...), nil)
	v.b = v.b[n:]
	return b
}

// recFilter records its callbacks in a shared log. As configured, it is a read filter, a
// write filter and an observer of everything.
type recFilter struct {
	name     string
	log      *[]string
	consume  bool // terminal: consumes what it reads
	stopNew  bool // returns StopIteration from OnNewConnection (once)
	keepOpen bool
}

func (f *recFilter) add(s string) { *f.log = append(*f.log, f.name+":"+s) }

func (f *recFilter) OnNewConnection(*Connection) Status {
	f.add("new")
	if f.stopNew {
		f.stopNew = false
		return StopIteration
	}
	return Continue
}

func (f *recFilter) OnData(_ *Connection, in reactor.View, end bool) Status {
	f.add("data " + string(in.Peek(in.Len())))
	if end {
		f.add("end")
	}
	if f.consume {
		in.Skip(in.Len())
		return StopIteration
	}
	return Continue
}

func (f *recFilter) OnWrite(_ *Connection, p []byte) Status {
	f.add("write " + string(p))
	return Continue
}

func (f *recFilter) OnDownstreamWritable(*Connection) { f.add("writable") }
func (f *recFilter) KeepWriteOpen(*Connection) bool   { f.add("half"); return f.keepOpen }
func (f *recFilter) OnClose(_ *Connection, err error) { f.add("close " + err.Error()) }

func testListener(t testing.TB, fac ...NetworkFilterFactory) *Listener {
	t.Helper()
	return &Listener{cfg: ListenerConfig{Name: "t"}, deps: &Deps{}, factories: fac, log: slog.Default()}
}

// A chain of three filters: every capability is found on the filter that has it, every
// filter hears of each event once, in chain order, and the terminal filter decides about the
// half-close.
func TestConnectionFilterChain(t *testing.T) {
	var log []string
	first := &recFilter{name: "a", log: &log, stopNew: true}
	terminal := &recFilter{name: "b", log: &log, consume: true, keepOpen: true}
	writeOnly := &recFilter{name: "w", log: &log}
	l := testListener(t, func(fm FilterManager) {
		fm.AddReadFilter(first)
		fm.AddWriteFilter(first) // both ways: still one observer
		fm.AddReadFilter(terminal)
		fm.AddWriteFilter(writeOnly)
	})
	h, rc := listenerHandler{l}, &testConn{}
	h.OnOpen(rc)
	c := rc.ctx.(*Connection)
	if !rc.paused || c.started {
		t.Fatalf("paused=%v started=%v after a filter stopped OnNewConnection", rc.paused, c.started)
	}
	h.OnData(rc, &testView{b: []byte("ignored")}) // not started: nothing is offered
	c.ContinueReading()
	if rc.paused || !c.started {
		t.Fatalf("paused=%v started=%v after ContinueReading", rc.paused, c.started)
	}
	h.OnData(rc, &testView{b: []byte("hi")})
	if err := c.Write([]byte("yo")); err != nil {
		t.Fatal(err)
	}
	h.OnWritable(rc)
	if !h.OnPeerClose(rc) {
		t.Fatal("the terminal filter's KeepWriteOpen was not honoured")
	}
	h.OnClose(rc, errors.New("bye"))
	want := "a:new b:new a:data hi b:data hi w:write yo a:write yo a:writable b:writable w:writable " +
		"a:data  a:end b:data  b:end b:half a:close bye b:close bye w:close bye"
	if got := strings.Join(log, " "); got != want {
		t.Fatalf("events:\n%s\nwant\n%s", got, want)
	}
	if rc.out.String() != "yo" || c.BytesSent != 2 || c.BytesReceived != 2 {
		t.Fatalf("out=%q sent=%d received=%d", rc.out.String(), c.BytesSent, c.BytesReceived)
	}
	if time.Since(c.Start()) > time.Minute || c.Start().IsZero() {
		t.Fatalf("Start() = %v", c.Start())
	}
}

// A connection whose chain is one read filter holds one small struct: no filter or observer
// slices.
func TestConnectionSingleFilterIsSmall(t *testing.T) {
	if n := unsafe.Sizeof(Connection{}); n > 80 {
		t.Errorf("Connection is %d bytes, want at most 80", n)
	}
	var log []string
	f := &recFilter{name: "t", log: &log, consume: true}
	l := testListener(t, func(fm FilterManager) { fm.AddReadFilter(f) })
	rc := &testConn{}
	listenerHandler{l}.OnOpen(rc)
	c := rc.ctx.(*Connection)
	if c.more != nil || c.read0 != ReadFilter(f) || !c.started {
		t.Fatalf("more=%v read0=%v started=%v", c.more, c.read0, c.started)
	}
	listenerHandler{l}.OnClose(rc, errors.New("x"))
	if got := strings.Join(log, " "); got != "t:new t:close x" {
		t.Fatalf("events: %s", got)
	}
	if l.ActiveConnections() != 0 || l.TotalConnections() != 1 {
		t.Fatalf("active=%d total=%d", l.ActiveConnections(), l.TotalConnections())
	}
}

// Filters of types that cannot be compared (a func type here) are still told of each event.
type funcFilter func(string)

func (f funcFilter) OnWrite(*Connection, []byte) Status { f("write"); return Continue }
func (f funcFilter) OnClose(*Connection, error)         { f("close") }

func TestConnectionUncomparableFilter(t *testing.T) {
	var log []string
	rec := funcFilter(func(s string) { log = append(log, s) })
	term := &recFilter{name: "t", log: &log, consume: true}
	l := testListener(t, func(fm FilterManager) {
		fm.AddReadFilter(term)
		fm.AddWriteFilter(rec)
	})
	rc := &testConn{}
	h := listenerHandler{l}
	h.OnOpen(rc)
	_ = rc.ctx.(*Connection).Write([]byte("x"))
	h.OnClose(rc, errors.New("e"))
	if got := strings.Join(log, " "); got != "t:new write t:close e close" {
		t.Fatalf("events: %s", got)
	}
}
