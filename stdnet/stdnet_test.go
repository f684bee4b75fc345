package stdnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// handler is a reactor.Handler of optional functions for the tests below.
type handler struct {
	open      func(reactor.Conn)
	data      func(reactor.Conn, reactor.View)
	writable  func(reactor.Conn)
	peerClose func(reactor.Conn) bool
	close     func(reactor.Conn, error)
}

func (h *handler) OnOpen(c reactor.Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *handler) OnData(c reactor.Conn, in reactor.View) {
	if h.data != nil {
		h.data(c, in)
		return
	}
	in.Skip(in.Len())
}

func (h *handler) OnWritable(c reactor.Conn) {
	if h.writable != nil {
		h.writable(c)
	}
}

func (h *handler) OnPeerClose(c reactor.Conn) bool { return h.peerClose != nil && h.peerClose(c) }

func (h *handler) OnClose(c reactor.Conn, err error) {
	if h.close != nil {
		h.close(c, err)
	}
}

func echoHandler() *handler {
	return &handler{
		data: func(c reactor.Conn, in reactor.View) {
			if c.Write(in.Peek(-1)) == nil {
				in.Skip(in.Len())
			}
		},
	}
}

func newStd(t testing.TB, o reactor.Options) *Transport {
	t.Helper()
	tr, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr.(*Transport)
}

func listen(t testing.TB, tr *Transport, h reactor.Handler) string {
	t.Helper()
	ln, err := tr.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return ln.Addr().String()
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

func wait[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []reactor.Options{
		{ReadBufferSize: -1},
		{HighWatermark: 1 << 10, LowWatermark: 1 << 20},
		{MaxConns: -5},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted invalid options", o)
		}
	}
}

// PauseRead is real: while paused the socket is not read, so the peer's writes block once
// the kernel buffers are full, and the transport holds at most one read's worth of bytes.
// After the resume every byte the peer managed to send arrives.
func TestPauseStopsReadingTheSocket(t *testing.T) {
	tr := newStd(t, reactor.Options{})
	conns := make(chan reactor.Conn, 1)
	var got atomic.Int64
	addr := listen(t, tr, &handler{
		open: func(c reactor.Conn) {
			c.PauseRead(true)
			conns <- c
		},
		data: func(c reactor.Conn, in reactor.View) {
			got.Add(int64(in.Len()))
			in.Skip(in.Len())
		},
	})
	client := dial(t, addr)
	c := wait(t, conns, "OnOpen")

	// Write until the kernel stops taking bytes: the write blocks on a full window.
	var sent int64
	chunk := make([]byte, 64<<10)
	_ = client.SetWriteDeadline(time.Now().Add(time.Second))
	for sent < 256<<20 {
		n, err := client.Write(chunk)
		sent += int64(n)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("client write: %v", err)
			}
			break
		}
	}
	if sent >= 64<<20 {
		t.Fatalf("the client wrote %d bytes to a paused conn without blocking: reading did not stop", sent)
	}
	held := make(chan [2]int64, 1)
	c.Exec(func() {
		cc := c.(*conn)
		held <- [2]int64{int64(cc.rend - cc.rstart), tr.readBufs.Load()}
	})
	h := wait(t, held, "Exec")
	if h[0] > int64(tr.o.ReadBufferSize) || h[1] > 1 || got.Load() != 0 {
		t.Fatalf("while paused: %d bytes and %d read buffers held, %d delivered; want at most one read "+
			"(%d bytes), one buffer, nothing delivered", h[0], h[1], got.Load(), tr.o.ReadBufferSize)
	}
	t.Logf("paused conn: the client's writes blocked after %d bytes; the transport held %d", sent, h[0])

	c.Exec(func() { c.PauseRead(false) })
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < sent && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got.Load() != sent {
		t.Fatalf("after the resume %d of %d bytes arrived", got.Load(), sent)
	}
}

// Idle connections hold no read buffer: it is taken for a read and returned once the view
// was consumed.
func TestIdleConnsHoldNoReadBuffer(t *testing.T) {
	tr := newStd(t, reactor.Options{})
	addr := listen(t, tr, echoHandler())
	const n = 100
	for i := range n {
		c := dial(t, addr)
		msg := []byte(fmt.Sprintf("hello %d", i))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.readBufs.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if held := tr.readBufs.Load(); held != 0 {
		t.Fatalf("%d idle conns hold %d read buffers, want 0", n, held)
	}
}

// A small Write with nothing queued goes straight to the kernel: nothing is copied or
// queued, and a Buffer given to Send is released before Send returns.
func TestWriteGoesStraightToTheKernel(t *testing.T) {
	tr := newStd(t, reactor.Options{})
	type result struct {
		outbound, released int64
	}
	res := make(chan result, 1)
	addr := listen(t, tr, &handler{
		data: func(c reactor.Conn, in reactor.View) {
			in.Skip(in.Len())
			_ = c.Write([]byte("write "))
			var released atomic.Int64
			b := reactor.NewBuffer()
			b.AppendOwned([]byte("send"), releaser{&released})
			_ = c.Send(b)
			res <- result{int64(c.Outbound()), released.Load()}
		},
	})
	client := dial(t, addr)
	if _, err := client.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	r := wait(t, res, "OnData")
	if r.outbound != 0 || r.released != 1 {
		t.Fatalf("after a small Write and Send: Outbound %d, Send's buffer released %d times; want 0 and 1",
			r.outbound, r.released)
	}
	got := make([]byte, 10)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "write send" {
		t.Fatalf("client got %q, %v", got, err)
	}
}

type releaser struct{ n *atomic.Int64 }

func (r releaser) Release() error {
	r.n.Add(1)
	return nil
}

// A panicking handler closes its connection with ErrHandlerPanic; the process and the
// transport's other connections carry on.
func TestHandlerPanicClosesTheConn(t *testing.T) {
	tr := newStd(t, reactor.Options{})
	closed := make(chan error, 4)
	h := echoHandler()
	h.data = func(c reactor.Conn, in reactor.View) {
		if string(in.Peek(-1)) == "panic" {
			panic("handler bug")
		}
		_ = c.Write(in.Peek(-1))
		in.Skip(in.Len())
	}
	h.close = func(c reactor.Conn, err error) { closed <- err }
	addr := listen(t, tr, h)
	bad := dial(t, addr)
	if _, err := bad.Write([]byte("panic")); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, closed, "OnClose after the panic"); !errors.Is(err, ErrHandlerPanic) {
		t.Fatalf("OnClose reason %v, want ErrHandlerPanic", err)
	}
	good := dial(t, addr)
	if _, err := good.Write([]byte("fine")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(good, got); err != nil || string(got) != "fine" {
		t.Fatalf("another conn after the panic: %q, %v", got, err)
	}
}

// Tiny read buffers still deliver every byte: partial frames grow the buffer, reads never
// come back empty.
func TestTinyReadBuffer(t *testing.T) {
	tr := newStd(t, reactor.Options{ReadBufferSize: 1})
	frames := make(chan string, 1)
	addr := listen(t, tr, &handler{
		data: func(c reactor.Conn, in reactor.View) {
			if in.Len() < 10 { // wait for a whole 10-byte frame
				return
			}
			frames <- string(in.Peek(10))
			in.Skip(10)
		},
	})
	c := dial(t, addr)
	if _, err := c.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, frames, "a frame read one byte at a time"); got != "0123456789" {
		t.Fatalf("got %q", got)
	}
}

// A near connection from another transport cannot lend its executor: the dial fails instead
// of silently breaking the executor guarantee.
func TestDialNearForeignConnFails(t *testing.T) {
	a, b := newStd(t, reactor.Options{}), newStd(t, reactor.Options{})
	conns := make(chan reactor.Conn, 1)
	addr := listen(t, a, &handler{open: func(c reactor.Conn) { conns <- c }})
	dial(t, addr)
	foreign := wait(t, conns, "OnOpen")
	errs := make(chan error, 1)
	b.Dial(foreign, addr, 0, &handler{}, func(c reactor.Conn, err error) { errs <- err })
	if err := wait(t, errs, "done"); err == nil {
		t.Fatal("Dial near a conn of another transport succeeded")
	}
}
