package gnet

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// streamer writes size bytes of pattern(seed) respecting Congested/OnWritable, then runs fin.
type streamer struct {
	seed      byte
	off, size int
	maxOut    int
	fin       func(c reactor.Conn)
}

func (s *streamer) pump(c reactor.Conn) {
	for s.off < s.size && !c.Congested() {
		n := min(64<<10, s.size-s.off)
		if err := c.Write(pattern(s.seed, s.off, n)); err != nil {
			return
		}
		s.off += n
		s.maxOut = max(s.maxOut, c.Outbound())
	}
	if s.off == s.size && s.fin != nil {
		s.fin(c)
		s.fin = nil
	}
}

// TestHalfCloseWriteSideMovesOffGnet: gnet closes a connection when read() returns 0. When
// OnPeerClose keeps the write side, the backend dups the fd before gnet closes it and serves
// the write side from a Go net.Conn: gnet no longer counts the connection, yet an 8 MiB reply
// written afterwards (through the watermarks) arrives, followed by FIN.
func TestHalfCloseWriteSideMovesOffGnet(t *testing.T) {
	o := reactor.Options{HighWatermark: 256 << 10, LowWatermark: 64 << 10}
	tr := newTransport(t, o)
	const size = 8 << 20
	type result struct {
		gnetConns int
		detached  bool
	}
	atPeerClose := make(chan result, 1)
	closed := make(chan error, 1)
	var st *streamer
	h := &hfuncs{
		peerClose: func(c reactor.Conn) bool {
			st = &streamer{seed: 9, size: size, fin: func(c reactor.Conn) {
				if err := c.CloseWrite(); err != nil {
					t.Errorf("CloseWrite: %v", err)
				}
			}}
			// Start writing after gnet closed its side: on the next executor turn.
			c.Exec(func() {
				w := c.(*conn)
				atPeerClose <- result{gnetConns: w.l.es.eng.CountConnections(), detached: w.flags&fDetached != 0}
				st.pump(c)
			})
			return true
		},
		writable: func(c reactor.Conn) { st.pump(c) },
		close:    func(c reactor.Conn, err error) { closed <- err },
	}
	addr, _ := listen(t, tr, h)
	client := dial(t, addr)
	if _, err := client.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r := recvT(t, atPeerClose, "the write side after OnPeerClose")
	if !r.detached || r.gnetConns != 0 {
		t.Fatalf("after the peer's FIN: detached %v, gnet still counts %d connections", r.detached, r.gnetConns)
	}
	time.Sleep(100 * time.Millisecond) // let the queue reach the high watermark
	readAllPattern(t, client, 9, size)
	if err := recvT(t, closed, "OnClose"); !errors.Is(err, reactor.ErrPeerClosed) {
		t.Fatalf("OnClose reason %v, want ErrPeerClosed", err)
	}
	if st.maxOut > o.HighWatermark+64<<10 {
		t.Fatalf("half-closed write side queued %d bytes, above HighWatermark + one write", st.maxOut)
	}
}

// TestHalfCloseTakesQueuedBytes: bytes gnet still queued when the peer's FIN arrived are
// taken over by the half-closed write side, ahead of what is written after.
func TestHalfCloseTakesQueuedBytes(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	const first, second = 4 << 20, 1 << 20
	queued := make(chan int, 1)
	h := &hfuncs{
		data: func(c reactor.Conn, in reactor.View) {
			in.Skip(in.Len())
			_ = c.Write(pattern(4, 0, first)) // the client does not read yet: gnet queues most
			queued <- c.Outbound()
		},
		peerClose: func(c reactor.Conn) bool {
			_ = c.Write(pattern(4, first, second))
			_ = c.CloseWrite()
			return true
		},
	}
	addr, _ := listen(t, tr, h)
	client := dial(t, addr)
	_ = client.SetReadBuffer(16 << 10)
	if _, err := client.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	if q := recvT(t, queued, "the first write"); q == 0 {
		t.Fatal("gnet queued nothing; the test needs a backlog")
	}
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	readAllPattern(t, client, 4, first+second)
}

// TestPausedPeerFinWaitsForResume: this side sent FIN, reading is paused, then the peer
// sends bytes and its FIN. A paused connection has an empty epoll interest mask, which Linux
// treats as a disabled item: not even the hang-up is reported, so bytes and FIN wait in the
// kernel. On resume every byte is delivered before OnPeerClose.
func TestPausedPeerFinWaitsForResume(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	const size = 256 << 10
	conns := make(chan reactor.Conn, 1)
	var got bytes.Buffer
	peerClosed := make(chan int, 1)
	closed := make(chan error, 1)
	h := &hfuncs{
		open: func(c reactor.Conn) {
			c.PauseRead(true)
			_ = c.CloseWrite()
			conns <- c
		},
		data: func(c reactor.Conn, in reactor.View) {
			got.Write(in.Peek(-1))
			in.Skip(in.Len())
		},
		peerClose: func(c reactor.Conn) bool { peerClosed <- got.Len(); return true },
		close:     func(c reactor.Conn, err error) { closed <- err },
	}
	addr, _ := listen(t, tr, h)
	client := dial(t, addr)
	c := recvT(t, conns, "OnOpen")
	if n, err := io.Copy(io.Discard, client); err != nil || n != 0 {
		t.Fatalf("client expected the server's FIN: %d bytes, %v", n, err)
	}
	if _, err := client.Write(pattern(8, 0, size)); err != nil {
		t.Fatal(err)
	}
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the hang-up is seen while paused
	select {
	case n := <-peerClosed:
		t.Fatalf("OnPeerClose ran while paused (after %d bytes)", n)
	default:
	}
	onLoop(t, c, func() { c.PauseRead(false) })
	if n := recvT(t, peerClosed, "OnPeerClose after resuming"); n != size {
		t.Fatalf("OnPeerClose after %d bytes, want all %d", n, size)
	}
	if err := recvT(t, closed, "OnClose"); !errIsAny(err, nil, reactor.ErrPeerClosed) {
		t.Fatalf("OnClose reason %v", err)
	}
	if !bytes.Equal(got.Bytes(), pattern(8, 0, size)) {
		t.Fatal("bytes delivered after the hang-up are corrupted")
	}
}

func errIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if (t == nil && err == nil) || (t != nil && errors.Is(err, t)) {
			return true
		}
	}
	return false
}

// TestKeepPendingDrainsSocket: when gnet reports a peer's FIN while the connection is paused
// (possible after gnet re-arms read interest, or on a bare EPOLLHUP), keepPending saves gnet's
// buffered bytes and drains the socket, so nothing the peer sent is lost.
func TestKeepPendingDrainsSocket(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	const size = 48 << 10 // below the receive window: all of it and the FIN arrive
	conns := make(chan reactor.Conn, 1)
	h := &hfuncs{open: func(c reactor.Conn) { conns <- c }}
	addr, _ := listen(t, tr, h)
	client := dial(t, addr)
	c := recvT(t, conns, "OnOpen").(*conn)
	if _, err := client.Write(pattern(2, 0, 1000)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // delivered and consumed; what follows stays in the socket
	onLoop(t, c, func() { c.PauseRead(true) })
	if _, err := client.Write(pattern(2, 1000, size-1000)); err != nil {
		t.Fatal(err)
	}
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// keepPending runs once the FIN is in (gnet saw EOF or HUP): wait for that here.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var finIn bool
		onLoop(t, c, func() {
			pfd := []unix.PollFd{{Fd: int32(c.gc.Fd()), Events: unix.POLLRDHUP}}
			n, _ := unix.Poll(pfd, 0)
			finIn = n == 1 && pfd[0].Revents&unix.POLLRDHUP != 0
		})
		if finIn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the peer's FIN never reached the paused socket")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var kept []byte
	var left int
	onLoop(t, c, func() {
		if err := c.keepPending(); err != nil {
			t.Errorf("keepPending: %v", err)
		}
		if c.e != nil {
			kept = append(kept, c.e.pendIn...)
		}
		left, _ = unix.IoctlGetInt(c.gc.Fd(), unix.SIOCINQ)
	})
	if left != 0 {
		t.Fatalf("keepPending left %d bytes in the socket", left)
	}
	if !bytes.Equal(kept, pattern(2, 1000, size-1000)) {
		t.Fatalf("keepPending saved %d bytes, want the %d sent while paused", len(kept), size-1000)
	}
}

// TestTransportCloseHalfClosed: a half-closed connection (write side on a Go net.Conn) is
// closed by Transport.Close with ErrTransportClosed, exactly once.
func TestTransportCloseHalfClosed(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	kept := make(chan struct{}, 1)
	closed := make(chan error, 2)
	h := &hfuncs{
		peerClose: func(c reactor.Conn) bool { kept <- struct{}{}; return true },
		close:     func(c reactor.Conn, err error) { closed <- err },
	}
	addr, _ := listen(t, tr, h)
	client := dial(t, addr)
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	recvT(t, kept, "OnPeerClose")
	time.Sleep(20 * time.Millisecond)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recvT(t, closed, "OnClose"); !errors.Is(err, reactor.ErrTransportClosed) {
		t.Fatalf("OnClose reason %v, want ErrTransportClosed", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("second OnClose: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if n, err := io.Copy(io.Discard, client); err != nil || n != 0 {
		t.Fatalf("client after Transport.Close: %d bytes, %v; want EOF", n, err)
	}
}
