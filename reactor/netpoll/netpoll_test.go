//go:build linux

package netpoll

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// A paused connection really stops reading: the client's 32 MiB cannot all leave it (TCP
// flow control), netpoll buffers no more than the read-ahead, nothing is closed; after the
// resume every byte arrives in order.
func TestPauseBackPressure(t *testing.T) {
	const total = 32 << 20
	o := reactor.Options{MaxReadBuffer: 1 << 20}
	tr := start(t, o, false)
	conns := make(chan *conn, 1)
	var off atomic.Int64
	var bad atomic.Int64
	bad.Store(-1)
	closed := newCloseRec()
	h := &fh{
		open: func(c reactor.Conn) {
			c.PauseRead(true)
			conns <- c.(*conn)
		},
		data: func(c reactor.Conn, in reactor.View) {
			p := in.Peek(-1)
			if string(p) != string(pattern(int(off.Load()), len(p))) && bad.Load() < 0 {
				bad.Store(off.Load())
			}
			off.Add(int64(len(p)))
			in.Skip(len(p))
		},
		close: closed.on,
	}
	addr := listen(t, tr, h)
	cl := dialTCP(t, addr)
	c := within(t, conns, 10*time.Second, "OnOpen")
	var written atomic.Int64
	werr := make(chan error, 1)
	go func() {
		for o := 0; o < total; o += 64 << 10 {
			if _, err := cl.Write(pattern(o, 64<<10)); err != nil {
				werr <- err
				return
			}
			written.Add(64 << 10)
		}
		werr <- nil
	}()
	// The client stalls once the kernel's buffers are full (how soon depends on the load).
	var stalled int64
	eventually(t, 30*time.Second, "the client to stall", func() bool {
		w := written.Load()
		time.Sleep(300 * time.Millisecond)
		stalled = written.Load()
		return stalled == w
	})
	if stalled >= total {
		t.Fatalf("the client wrote all %d bytes to a paused conn", stalled)
	}
	if n := c.nc.Reader().Len(); n > tr.readAhead+2*tr.readChunk {
		t.Fatalf("netpoll buffered %d bytes of a paused conn (read-ahead %d)", n, tr.readAhead)
	}
	if closed.n.Load() != 0 {
		t.Fatalf("paused conn closed: %v", <-closed.err)
	}
	t.Logf("paused: client stalled after %d bytes, netpoll holds %d", stalled, c.nc.Reader().Len())
	c.Exec(func() { c.PauseRead(false) })
	if err := within(t, werr, 60*time.Second, "the client's writes after the resume"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "all bytes delivered", func() bool { return off.Load() == total })
	if b := bad.Load(); b >= 0 {
		t.Fatalf("stream corrupted at byte %d", b)
	}
}

// Without the hooks (soft pause, the fallback when netpoll's layout is unknown) pausing only
// stops delivery: netpoll keeps reading, and the conn is closed with ErrReadBufferOverflow
// once MaxReadBuffer bytes wait.
func TestSoftPauseOverflows(t *testing.T) {
	o := reactor.Options{MaxReadBuffer: 256 << 10, TimerTick: 10 * time.Millisecond}
	tr := start(t, o, true)
	closed := newCloseRec()
	var delivered atomic.Int64
	h := &fh{
		open:  func(c reactor.Conn) { c.PauseRead(true) },
		data:  func(c reactor.Conn, in reactor.View) { delivered.Add(int64(in.Len())); in.Skip(in.Len()) },
		close: closed.on,
	}
	addr := listen(t, tr, h)
	cl := dialTCP(t, addr)
	go func() {
		for range 64 {
			if _, err := cl.Write(make([]byte, 64<<10)); err != nil {
				return
			}
		}
	}()
	err := within(t, closed.err, 20*time.Second, "OnClose of the overflowing paused conn")
	if !errors.Is(err, reactor.ErrReadBufferOverflow) {
		t.Fatalf("OnClose reason %v, want ErrReadBufferOverflow", err)
	}
	if n := delivered.Load(); n != 0 {
		t.Fatalf("%d bytes delivered while paused", n)
	}
}

// After the peer's FIN netpoll closes its connection; the dup keeps the write side: a 4 MiB
// reply to a slow reader goes out through the queue, CloseWrite ends it, OnClose reports
// ErrPeerClosed and no descriptor is left behind.
func TestHalfCloseWritesAfterNetpollClosed(t *testing.T) {
	const reply = 4 << 20
	tr := start(t, reactor.Options{}, false)
	before := openFDs(t)
	closed := newCloseRec()
	peerClosed := make(chan struct{}, 1)
	var off int
	var pump func(c reactor.Conn)
	pump = func(c reactor.Conn) {
		for off < reply && !c.Congested() {
			if err := c.Write(pattern(off, 64<<10)); err != nil {
				t.Errorf("Write after OnPeerClose: %v", err)
				return
			}
			off += 64 << 10
		}
		if off == reply {
			off++
			if err := c.CloseWrite(); err != nil {
				t.Errorf("CloseWrite: %v", err)
			}
		}
	}
	h := &fh{
		peerClose: func(c reactor.Conn) bool {
			peerClosed <- struct{}{}
			pump(c)
			return true
		},
		writable: pump,
		close:    closed.on,
	}
	addr := listen(t, tr, h)
	cl := dialTCP(t, addr)
	if _, err := cl.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := cl.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	within(t, peerClosed, 10*time.Second, "OnPeerClose")
	time.Sleep(300 * time.Millisecond) // let the queue fill while the client does not read
	if err := readAllExact(cl, reply, true); err != nil {
		t.Fatalf("client reading the reply: %v", err)
	}
	if err := within(t, closed.err, 10*time.Second, "OnClose"); !errors.Is(err, reactor.ErrPeerClosed) {
		t.Fatalf("OnClose reason %v, want ErrPeerClosed", err)
	}
	_ = cl.Close()
	eventually(t, 5*time.Second, "descriptors back to the baseline", func() bool {
		return openFDs(t) <= before+1 // the client's own socket until its cleanup
	})
}

// A reset while half-closed (the peer aborts after its FIN) is noticed without a write, from
// the write poller, and reported as ErrPeerReset.
func TestHalfCloseThenReset(t *testing.T) {
	tr := start(t, reactor.Options{}, false)
	closed := newCloseRec()
	peerClosed := make(chan struct{}, 1)
	h := &fh{
		peerClose: func(c reactor.Conn) bool { peerClosed <- struct{}{}; return true },
		close:     closed.on,
	}
	addr := listen(t, tr, h)
	cl := dialTCP(t, addr)
	if err := cl.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	within(t, peerClosed, 10*time.Second, "OnPeerClose")
	_ = cl.SetLinger(0)
	_ = cl.Close()
	if err := within(t, closed.err, 10*time.Second, "OnClose"); !errors.Is(err, reactor.ErrPeerReset) {
		t.Fatalf("OnClose reason %v, want ErrPeerReset", err)
	}
}

// Detach hands out netpoll's own memory (no copy) and keeps it valid after OnData returned and
// the reader released its buffer, until the Buffer is released.
func TestDetachIsZeroCopy(t *testing.T) {
	tr := start(t, reactor.Options{}, false)
	type res struct {
		b    *reactor.Buffer
		same bool
	}
	out := make(chan res, 1)
	detached := false // only the first 1000 bytes are detached; the rest is consumed
	h := &fh{data: func(c reactor.Conn, in reactor.View) {
		if detached {
			in.Skip(in.Len())
			return
		}
		if in.Len() < 1000 {
			return
		}
		detached = true
		p := in.Peek(1000)
		first := &p[0]
		b := in.Detach(1000)
		out <- res{b: b, same: &b.Bytes()[0][0] == first}
	}}
	addr := listen(t, tr, h)
	cl := dialTCP(t, addr)
	if _, err := cl.Write(pattern(0, 1000)); err != nil {
		t.Fatal(err)
	}
	r := within(t, out, 10*time.Second, "OnData")
	defer r.b.Release()
	if !r.same {
		t.Fatal("Detach copied the bytes instead of referencing netpoll's buffer")
	}
	if _, err := cl.Write(pattern(1000, 50000)); err != nil { // reuse pressure on the nodes
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	got := make([]byte, r.b.Len())
	r.b.CopyTo(got)
	if string(got) != string(pattern(0, 1000)) {
		t.Fatal("detached bytes changed after OnData returned")
	}
}

// A handler panic closes only its connection, with ErrPanic, and OnClose still runs once.
func TestHandlerPanic(t *testing.T) {
	tr := start(t, reactor.Options{}, false)
	closed := newCloseRec()
	h := &fh{
		data:  func(c reactor.Conn, in reactor.View) { panic("boom") },
		close: closed.on,
	}
	addr := listen(t, tr, h)
	cl := dialTCP(t, addr)
	if _, err := cl.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := within(t, closed.err, 10*time.Second, "OnClose"); !errors.Is(err, ErrPanic) {
		t.Fatalf("OnClose reason %v, want ErrPanic", err)
	}
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(cl); err != nil && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the panicking conn was not closed")
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := closed.n.Load(); n != 1 {
		t.Fatalf("OnClose ran %d times", n)
	}
	// The transport still serves.
	echo := &fh{data: func(c reactor.Conn, in reactor.View) { _ = c.Write(in.Peek(-1)); in.Skip(in.Len()) }}
	c2 := dialTCP(t, listen(t, tr, echo))
	if _, err := c2.Write([]byte("still alive")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "still alive" {
		t.Fatalf("echo after a panic: %q %v", buf, err)
	}
}

// netpoll's settings are process-wide: a second New with other Loops and ReadBufferSize
// succeeds, keeps the first values for netpoll and still gets its own executors.
func TestSecondNewSharesProcessSettings(t *testing.T) {
	a := start(t, reactor.Options{Loops: 1}, false)
	loops, size := process.loops, process.bufSize
	b := start(t, reactor.Options{Loops: 3, ReadBufferSize: 1 << 10}, false)
	if process.loops != loops || process.bufSize != size {
		t.Fatalf("a second New changed netpoll's process settings to %d loops, %d bytes",
			process.loops, process.bufSize)
	}
	if len(a.execs) != 1 || len(b.execs) != 3 {
		t.Fatalf("executors: %d and %d, want 1 and 3", len(a.execs), len(b.execs))
	}
}
