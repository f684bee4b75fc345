package gnet

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// TestPauseReadPushesBack: while paused the backend reads nothing from the socket, so the
// peer's writes stall once the kernel buffers are full (TCP flow control), and resuming
// delivers every byte.
func TestPauseReadPushesBack(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	conns := make(chan reactor.Conn, 1)
	var got bytes.Buffer // executor-only
	h := &hfuncs{
		open: func(c reactor.Conn) {
			c.PauseRead(true)
			conns <- c
		},
		data: func(c reactor.Conn, in reactor.View) {
			got.Write(in.Peek(-1))
			in.Skip(in.Len())
		},
	}
	addr, _ := listen(t, tr, h)
	client := dial(t, addr)
	c := recvT(t, conns, "OnOpen").(*conn)

	// Write until the kernel stops taking bytes.
	var sent int
	for {
		_ = client.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := client.Write(pattern(3, sent, 64<<10))
		sent += n
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("client write: %v", err)
			}
			break
		}
		if sent > 256<<20 {
			t.Fatalf("the client wrote %d bytes to a paused connection without stalling", sent)
		}
	}
	var buffered int
	onLoop(t, c, func() { buffered = c.gc.InboundBuffered() })
	if buffered != 0 {
		t.Fatalf("a paused connection read %d bytes from its socket", buffered)
	}
	t.Logf("the peer stalled after %d bytes (kernel buffers); nothing was read while paused", sent)

	onLoop(t, c, func() { c.PauseRead(false) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		onLoop(t, c, func() { n = got.Len() })
		if n == sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after resuming %d of %d bytes arrived", n, sent)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var ok bool
	onLoop(t, c, func() { ok = bytes.Equal(got.Bytes(), pattern(3, 0, sent)) })
	if !ok {
		t.Fatal("bytes delivered after resuming are corrupted")
	}
}

// TestPausedWriterDoesNotRead: gnet re-arms read interest whenever it drains a connection's
// outbound buffer; a paused connection that keeps writing (its outbound flushed by the drain
// poll) must still read nothing.
func TestPausedWriterDoesNotRead(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	const size = 8 << 20
	conns := make(chan reactor.Conn, 1)
	var maxIn atomic.Int64
	type st struct{ off int }
	var pump func(c reactor.Conn)
	pump = func(c reactor.Conn) {
		s := c.Context().(*st)
		w := c.(*conn)
		for s.off < size && !c.Congested() {
			n := min(64<<10, size-s.off)
			if err := c.Write(pattern(5, s.off, n)); err != nil {
				return
			}
			s.off += n
			if in := int64(w.gc.InboundBuffered()); in > maxIn.Load() {
				maxIn.Store(in)
			}
		}
		if s.off == size {
			_ = c.CloseWrite()
		}
	}
	h := &hfuncs{
		open: func(c reactor.Conn) {
			c.SetContext(&st{})
			c.PauseRead(true)
			pump(c)
			conns <- c
		},
		writable: pump,
	}
	addr, _ := listen(t, tr, h)
	client := dial(t, addr)
	c := recvT(t, conns, "OnOpen").(*conn)

	// The client floods the paused server while reading everything it sends.
	flood := make(chan int, 1)
	go func() {
		var sent int
		for {
			_ = client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := client.Write(pattern(6, sent, 32<<10))
			sent += n
			if err != nil {
				flood <- sent
				return
			}
		}
	}()
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	readAllPattern(t, client, 5, size)
	sent := recvT(t, flood, "the flooding writer")
	var in int
	onLoop(t, c, func() { in = c.gc.InboundBuffered() })
	if in != 0 || maxIn.Load() != 0 {
		t.Fatalf("a paused connection that wrote %d bytes read %d bytes (max %d) of the %d the peer sent",
			size, in, maxIn.Load(), sent)
	}
	t.Logf("wrote %d bytes while paused; the peer's %d bytes stayed in the kernel", size, sent)
}

// readAllPattern reads until EOF and checks the bytes against pattern(seed, 0, want).
func readAllPattern(t *testing.T, c net.Conn, seed byte, want int) {
	t.Helper()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("client read: %v after %d bytes", err, len(got))
	}
	if len(got) != want || !bytes.Equal(got, pattern(seed, 0, want)) {
		t.Fatalf("client got %d bytes (intact %v), want %d", len(got), bytes.Equal(got, pattern(seed, 0, len(got))), want)
	}
}
