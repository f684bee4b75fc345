package gnet

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// hfuncs is a reactor.Handler made of optional functions; missing OnData consumes all.
type hfuncs struct {
	open      func(c reactor.Conn)
	data      func(c reactor.Conn, in reactor.View)
	writable  func(c reactor.Conn)
	peerClose func(c reactor.Conn) bool
	close     func(c reactor.Conn, err error)
}

func (f *hfuncs) OnOpen(c reactor.Conn) {
	if f.open != nil {
		f.open(c)
	}
}

func (f *hfuncs) OnData(c reactor.Conn, in reactor.View) {
	if f.data != nil {
		f.data(c, in)
		return
	}
	in.Skip(in.Len())
}

func (f *hfuncs) OnWritable(c reactor.Conn) {
	if f.writable != nil {
		f.writable(c)
	}
}

func (f *hfuncs) OnPeerClose(c reactor.Conn) bool {
	if f.peerClose != nil {
		return f.peerClose(c)
	}
	return false
}

func (f *hfuncs) OnClose(c reactor.Conn, err error) {
	if f.close != nil {
		f.close(c, err)
	}
}

// newTransport builds a transport closed at the end of the test.
func newTransport(t testing.TB, o reactor.Options) *Transport {
	t.Helper()
	tr, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr.(*Transport)
}

// listen serves h on 127.0.0.1:0.
func listen(t testing.TB, tr *Transport, h reactor.Handler) (string, reactor.Listener) {
	t.Helper()
	ln, err := tr.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), ln
}

// dial opens a client connection with a 30 s deadline.
func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// onLoop runs fn on c's executor and waits for it.
func onLoop(t testing.TB, c reactor.Conn, fn func()) {
	t.Helper()
	done := make(chan struct{})
	if !c.Exec(func() { fn(); close(done) }) {
		t.Fatal("Exec refused: connection closed")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Exec function did not run within 10s")
	}
}

// recvT waits for a value on ch.
func recvT[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// pattern returns n deterministic bytes starting at offset off of a stream seeded by seed.
func pattern(seed byte, off, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		x := uint32(off+i)*2654435761 + uint32(seed)*40503
		p[i] = byte(x >> 24)
	}
	return p
}

var noDeadline time.Time

func runtimeGosched() { runtime.Gosched() }
