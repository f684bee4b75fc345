package reactortest

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

// 12. OnClose exactly once in every path (the monitor checks "once" in every test; these
// cover the paths not exercised elsewhere), Listener.Close and Transport.Close.
func (s *suite) testLifecycle(t *testing.T) {
	// Close(nil) flushes what is queued (1 MiB the client reads late), then closes; OnClose
	// gets nil; later Close and Abort calls change nothing.
	t.Run("LocalClose", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		p := newPattern(91)
		const size = 1 << 20
		closed := make(chan closeEvent, 2)
		h := &funcs{
			data: func(c reactor.Conn, in reactor.View) {
				in.Skip(in.Len())
				if err := c.Write(p.bytes(0, size)); err != nil {
					e.errorf("server Write: %v", err)
				}
				c.Close(nil)
				c.Close(errors.New("second Close"))
				c.Abort(errors.New("Abort after Close"))
				if err := c.Write([]byte("after close")); err == nil {
					e.errorf("Write after Close succeeded")
				}
			},
			close: func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} },
		}
		addr, _ := e.listen(h)
		c := e.dial(addr)
		if _, err := c.Write([]byte("close please")); err != nil {
			e.fatalf("client write: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		if got, err := readStream(c, p, size, true, nil); err != nil {
			e.fatalf("client reading the bytes queued before Close(nil): %v (received %d)", err, got)
		}
		ev := recv(e, closed, closeTimeout, "OnClose after Close(nil)")
		if ev.err != nil {
			e.fatalf("OnClose reason %s after Close(nil), want nil", describe(ev.err))
		}
	})

	t.Run("ListenerClose", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		addr, ln := e.listen(echo())
		c := e.dial(addr)
		e.roundTrip(c, []byte("before"), "round trip before Listener.Close")
		if err := ln.Close(); err != nil {
			e.fatalf("Listener.Close: %v", err)
		}
		opened := e.mon.totalOpened()
		time.Sleep(50 * time.Millisecond)
		if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			// Refusing outright is expected; a backend that still completes the handshake must
			// at least end the connection at once and never serve it.
			_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
			_, _ = nc.Write([]byte("anyone?"))
			b := make([]byte, 16)
			n, rerr := nc.Read(b)
			nc.Close()
			if rerr == nil || !(rerr == io.EOF || isReset(rerr)) {
				e.fatalf("after Listener.Close a new client connected and its read returned %d bytes, %v: "+
					"the port still accepts", n, rerr)
			}
		}
		if got := e.mon.totalOpened(); got != opened {
			e.fatalf("after Listener.Close the handler's OnOpen ran for %d new connection(s)", got-opened)
		}
		e.roundTrip(c, []byte("after"), "round trip on an established conn after Listener.Close")
		addr2, _ := e.listen(echo())
		e.roundTrip(e.dial(addr2), []byte("new listener"), "round trip through a new listener")
	})

	t.Run("TransportClose", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		closed := make(chan closeEvent, 8)
		h := echo()
		h.close = func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} }
		addr, _ := e.listen(h)
		var clients []*net.TCPConn
		for range 3 {
			c := e.dial(addr)
			e.roundTrip(c, []byte("hi"), "round trip before Transport.Close")
			clients = append(clients, c)
		}
		bl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.fatalf("listen: %v", err)
		}
		defer bl.Close()
		d := newDialRecorder()
		dh := d.handler()
		dh.close = h.close
		e.tr.Dial(nil, bl.Addr().String(), 0, e.mon.wrap(dh), d.done)
		peer, err := acceptWithin(bl, stepTimeout)
		if err != nil {
			e.fatalf("backend accept: %v", err)
		}
		defer peer.Close()
		if r := recv(e, d.result, stepTimeout, "Dial's done"); r.err != nil {
			e.fatalf("Dial: %v", r.err)
		}
		e.eventually(stepTimeout, "4 open conns", func() bool { return e.mon.openCount() == 4 })

		if err := e.tr.Close(); err != nil {
			e.fatalf("Transport.Close: %v", err)
		}
		for i := range 4 {
			ev := recv(e, closed, closeTimeout, "OnClose after Transport.Close")
			if !errors.Is(ev.err, reactor.ErrTransportClosed) {
				e.fatalf("conn %d (%d of 4) OnClose reason %s, want ErrTransportClosed", ev.c.ID(), i+1, describe(ev.err))
			}
		}
		for i, c := range clients {
			e.expectEnd(c, fmt.Sprintf("client %d after Transport.Close", i))
		}
		_ = peer.SetReadDeadline(time.Now().Add(closeTimeout))
		if _, err := io.Copy(io.Discard, peer); err != nil && !isReset(err) {
			e.fatalf("the dialed conn's peer: %v, want EOF or reset after Transport.Close", err)
		}
		if ln, err := e.tr.Listen("127.0.0.1:0", e.mon.wrap(echo())); err == nil {
			ln.Close()
			e.fatalf("Listen after Transport.Close succeeded")
		}
		d2 := newDialRecorder()
		e.tr.Dial(nil, bl.Addr().String(), 0, e.mon.wrap(d2.handler()), d2.done)
		if r := recv(e, d2.result, stepTimeout, "done of a Dial after Transport.Close"); r.err == nil {
			e.fatalf("Dial after Transport.Close succeeded")
		}
	})

	// A handler that ignores Congested: Write fails with ErrWriteBufferOverflow and the conn
	// closes with it.
	t.Run("WriteBufferOverflow", func(t *testing.T) {
		o := reactor.Options{HighWatermark: 64 << 10, LowWatermark: 16 << 10, MaxWriteBuffer: 256 << 10}
		e := s.start(t, o)
		writeErr := make(chan error, 1)
		closed := make(chan closeEvent, 1)
		h := &funcs{
			data: func(c reactor.Conn, in reactor.View) { // flood once the client is surely connected
				in.Skip(in.Len())
				chunk := make([]byte, 32<<10)
				var err error
				for i := 0; i < 1024 && err == nil; i++ { // up to 32 MiB: far past any socket buffer
					err = c.Write(chunk)
				}
				writeErr <- err
			},
			close: func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} },
		}
		addr, _ := e.listen(h)
		c := e.dial(addr) // never reads
		if _, err := c.Write([]byte("go")); err != nil {
			e.fatalf("client write: %v", err)
		}
		if err := recv(e, writeErr, stepTimeout, "the flooding OnData"); !errors.Is(err, reactor.ErrWriteBufferOverflow) {
			e.fatalf("writing 32 MiB to a client that does not read, ignoring Congested: Write returned %s, "+
				"want ErrWriteBufferOverflow", describe(err))
		}
		ev := recv(e, closed, closeTimeout, "OnClose after the write overflow")
		if !errors.Is(ev.err, reactor.ErrWriteBufferOverflow) {
			e.fatalf("OnClose reason %s, want ErrWriteBufferOverflow", describe(ev.err))
		}
	})

	// A handler that never consumes (and never pauses): the conn closes with
	// ErrReadBufferOverflow once MaxReadBuffer bytes are pending, and never held much more.
	t.Run("ReadBufferOverflow", func(t *testing.T) {
		o := reactor.Options{MaxReadBuffer: 256 << 10}
		e := s.start(t, o)
		var maxLen atomic.Int64
		closed := make(chan closeEvent, 1)
		h := &funcs{
			data: func(c reactor.Conn, in reactor.View) {
				if n := int64(in.Len()); n > maxLen.Load() {
					maxLen.Store(n)
				}
			},
			close: func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} },
		}
		addr, _ := e.listen(h)
		c := e.dial(addr)
		go func() { _ = writeStream(c, newPattern(92), 4<<20, 32<<10, nil) }()
		ev := recv(e, closed, stepTimeout, "OnClose after the unconsumed input passed MaxReadBuffer")
		if !errors.Is(ev.err, reactor.ErrReadBufferOverflow) {
			e.fatalf("OnClose reason %s, want ErrReadBufferOverflow", describe(ev.err))
		}
		if limit := int64(o.MaxReadBuffer + max(e.o.ReadBufferSize, 64<<10)); maxLen.Load() > limit {
			e.fatalf("a view held %d unconsumed bytes, MaxReadBuffer is %d", maxLen.Load(), o.MaxReadBuffer)
		}
	})
}

// 13. MaxConns: connections past the cap are closed at once, without OnOpen; a slot freed by
// a close is usable again.
func (s *suite) testMaxConns(t *testing.T) {
	e := s.start(t, reactor.Options{MaxConns: 2})
	addr, _ := e.listen(echo())
	a, b := e.dial(addr), e.dial(addr)
	e.roundTrip(a, []byte("a"), "round trip on conn 1 of 2")
	e.roundTrip(b, []byte("b"), "round trip on conn 2 of 2")
	e.eventually(stepTimeout, "2 open conns", func() bool { return e.mon.openCount() == 2 })

	over, err := net.DialTimeout("tcp", addr, stepTimeout)
	if err == nil {
		_ = over.SetDeadline(time.Now().Add(closeTimeout))
		_, _ = over.Write([]byte("over"))
		n, rerr := over.Read(make([]byte, 8))
		over.Close()
		if rerr == nil || !(rerr == io.EOF || isReset(rerr)) {
			e.fatalf("a third conn with MaxConns 2: read returned %d bytes, %v; want it closed at once", n, rerr)
		}
	}
	if n := e.mon.totalOpened(); n != 2 {
		e.fatalf("with MaxConns 2 the handler's OnOpen ran %d times", n)
	}
	e.roundTrip(a, []byte("a2"), "round trip on conn 1 after the cap was hit")

	_ = b.Close()
	e.eventually(closeTimeout, "the closed conn to free its slot", func() bool { return e.mon.openCount() == 1 })
	time.Sleep(20 * time.Millisecond) // OnClose may run just before the slot is counted free
	c := e.dial(addr)
	e.roundTrip(c, []byte("c"), "round trip on a conn made after a slot was freed")
}
