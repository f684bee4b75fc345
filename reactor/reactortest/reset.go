package reactortest

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// 6. Abrupt resets by either peer.
func (s *suite) testReset(t *testing.T) {
	// The client closes with SO_LINGER 0: the server's OnClose reports ErrPeerReset.
	t.Run("ByPeer", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		closed := make(chan closeEvent, 1)
		h := echo()
		h.close = func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} }
		addr, _ := e.listen(h)
		c := e.dial(addr)
		e.roundTrip(c, []byte("before the reset"), "round trip")
		if err := c.SetLinger(0); err != nil {
			e.fatalf("client SetLinger(0): %v", err)
		}
		_ = c.Close()
		ev := recv(e, closed, closeTimeout, "OnClose after the client's reset")
		if !errors.Is(ev.err, reactor.ErrPeerReset) {
			e.fatalf("OnClose reason %s after a peer reset, want an error wrapping ErrPeerReset", describe(ev.err))
		}
	})

	// The server queues 1 MiB the client does not read, then Aborts: the client sees
	// ECONNRESET, not an orderly end, and OnClose reports Abort's reason.
	t.Run("Abort", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		errAbort := errors.New("reactortest: abort requested")
		closed := make(chan closeEvent, 1)
		h := &funcs{
			data: func(c reactor.Conn, in reactor.View) {
				in.Skip(in.Len())
				if err := c.Write(make([]byte, 1<<20)); err != nil {
					e.errorf("server Write before Abort: %v", err)
				}
				c.Abort(errAbort)
				c.Abort(errors.New("second Abort")) // no-op
				c.Close(errors.New("Close after Abort"))
			},
			close: func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} },
		}
		addr, _ := e.listen(h)
		c := e.dial(addr)
		if _, err := c.Write([]byte("abort")); err != nil {
			e.fatalf("client write: %v", err)
		}
		ev := recv(e, closed, closeTimeout, "OnClose after Abort")
		if !errors.Is(ev.err, errAbort) {
			e.fatalf("OnClose reason %s, want Abort's reason %q", describe(ev.err), errAbort)
		}
		time.Sleep(50 * time.Millisecond)
		_ = c.SetReadDeadline(time.Now().Add(closeTimeout))
		n, err := io.Copy(io.Discard, c)
		if !errors.Is(err, syscall.ECONNRESET) {
			e.fatalf("after Abort the client read %d bytes and then %v, want ECONNRESET", n, describe(err))
		}
	})
}

// 7. Close, Abort, Send and Exec race from several goroutines while a large write is in
// progress: no panic, one OnClose with one of the reasons given, every sent Buffer released,
// and the conn keeps failing safely afterwards.
func (s *suite) testCloseDuringWrite(t *testing.T) {
	o := reactor.Options{HighWatermark: 256 << 10, LowWatermark: 64 << 10, CloseFlushTimeout: 300 * time.Millisecond}
	e := s.start(t, o)
	p := newPattern(71)
	conns := make(chan reactor.Conn, 1)
	closed := make(chan closeEvent, 1)
	h := &funcs{
		open: func(c reactor.Conn) {
			st := newStreamer(p, 32<<20, 64<<10, nil)
			c.SetContext(st)
			st.pump(c)
			conns <- c
		},
		writable: func(c reactor.Conn) { c.Context().(*streamer).pump(c) },
		close:    func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err, at: time.Now()} },
	}
	addr, _ := e.listen(h)
	client := e.dial(addr)
	clientDone := make(chan error, 1)
	go func() { // a slow reader, so the server's write stays in progress
		buf := make([]byte, 16<<10)
		for {
			if _, err := client.Read(buf); err != nil {
				clientDone <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	c := recv(e, conns, stepTimeout, "OnOpen")
	time.Sleep(100 * time.Millisecond)

	// Senders and Exec callers run first; the closers join them a little later.
	errA, errB := errors.New("reactortest: Close A"), errors.New("reactortest: Abort B")
	var released, sendOK, sends atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 5000 {
			sends.Add(1)
			if c.Send(ownedBuffer(make([]byte, 4<<10), &released)) != nil {
				return
			}
			sendOK.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		for range 5000 {
			if !c.Exec(func() { _ = c.Write([]byte("x")) }) {
				return
			}
		}
	}()
	time.Sleep(5 * time.Millisecond)
	start := time.Now()
	wg.Add(3)
	go func() { defer wg.Done(); c.Close(errA) }()
	go func() { defer wg.Done(); time.Sleep(time.Millisecond); c.Abort(errB) }()
	go func() { defer wg.Done(); c.Close(nil) }()
	wg.Wait()
	ev := recv(e, closed, o.CloseFlushTimeout+closeTimeout, "OnClose after concurrent Close/Abort")
	if !errIs(ev.err, nil, errA, errB) {
		e.fatalf("OnClose reason %s, want one of the reasons given to Close or Abort", describe(ev.err))
	}
	t.Logf("[%s] closed %v after the racing calls, reason %v, %d of %d Sends accepted",
		e.name, ev.at.Sub(start).Round(time.Millisecond), ev.err, sendOK.Load(), sends.Load())
	e.eventually(closeTimeout, "every Buffer given to Send to be released", func() bool {
		return released.Load() == sends.Load()
	})

	// After OnClose: everything fails safely.
	if c.Exec(func() { e.errorf("an Exec function ran after OnClose") }) {
		e.fatalf("Exec returned true after OnClose")
	}
	var late atomic.Int64
	if err := c.Send(ownedBuffer([]byte("late"), &late)); !errors.Is(err, reactor.ErrClosed) {
		e.fatalf("Send after OnClose returned %s, want an error wrapping ErrClosed", describe(err))
	}
	e.eventually(closeTimeout, "a Buffer refused by Send after close to be released", func() bool {
		return late.Load() == 1
	})
	c.Close(nil)
	c.Abort(nil)
	if err := recv(e, clientDone, closeTimeout, "the client to see the connection end"); err != io.EOF && !isReset(err) {
		e.fatalf("client read ended with %v, want EOF or a reset", err)
	}
	time.Sleep(20 * time.Millisecond) // an Exec that wrongly runs late reports itself
}
