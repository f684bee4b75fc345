//go:build linux

package netpoll

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// fh is a reactor.Handler made of optional functions (missing OnData consumes everything).
type fh struct {
	open      func(c reactor.Conn)
	data      func(c reactor.Conn, in reactor.View)
	writable  func(c reactor.Conn)
	peerClose func(c reactor.Conn) bool
	close     func(c reactor.Conn, err error)
}

func (h *fh) OnOpen(c reactor.Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *fh) OnData(c reactor.Conn, in reactor.View) {
	if h.data != nil {
		h.data(c, in)
		return
	}
	in.Skip(in.Len())
}

func (h *fh) OnWritable(c reactor.Conn) {
	if h.writable != nil {
		h.writable(c)
	}
}

func (h *fh) OnPeerClose(c reactor.Conn) bool {
	if h.peerClose != nil {
		return h.peerClose(c)
	}
	return false
}

func (h *fh) OnClose(c reactor.Conn, err error) {
	if h.close != nil {
		h.close(c, err)
	}
}

// start builds a transport (soft: without the netpoll hooks) closed at the end of the test.
func start(t *testing.T, o reactor.Options, soft bool) *transport {
	t.Helper()
	tr, err := newTransport(o, soft)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func listen(t *testing.T, tr *transport, h reactor.Handler) string {
	t.Helper()
	ln, err := tr.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String()
}

func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	return c.(*net.TCPConn)
}

func within[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// pattern returns n deterministic bytes starting at stream offset off.
func pattern(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		x := uint32(off + i)
		b[i] = byte(x*2654435761>>24) ^ byte(x)
	}
	return b
}

// readAllExact reads exactly n bytes of the pattern from c and then expects EOF.
func readAllExact(c net.Conn, n int, wantEOF bool) error {
	buf := make([]byte, 64<<10)
	got := 0
	for got < n {
		k, err := c.Read(buf[:min(len(buf), n-got)])
		if string(buf[:k]) != string(pattern(got, k)) {
			return errors.New("stream corrupted")
		}
		got += k
		if err != nil {
			return err
		}
	}
	if wantEOF {
		if k, err := c.Read(buf[:1]); k != 0 || err != io.EOF {
			return errors.New("no EOF after the stream")
		}
	}
	return nil
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// closeRec records OnClose reasons.
type closeRec struct {
	n   atomic.Int32
	err chan error
}

func newCloseRec() *closeRec { return &closeRec{err: make(chan error, 8)} }

func (r *closeRec) on(_ reactor.Conn, err error) {
	r.n.Add(1)
	r.err <- err
}
