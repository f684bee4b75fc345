package reactortest

import (
	"errors"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// 5. Half-close in each direction.
func (s *suite) testHalfClose(t *testing.T) {
	// The client sends a request and shuts down its write side; the server sees every byte,
	// then OnPeerClose, keeps its write side open, streams a 1 MiB reply and half-closes.
	t.Run("PeerCloseWrite", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		reqP, respP := newPattern(61), newPattern(62)
		const reqSize, respSize = 256 << 10, 1 << 20
		type state struct {
			v  *verifier
			st *streamer
		}
		atPeerClose := make(chan int64, 1)
		closed := make(chan closeEvent, 1)
		h := &funcs{
			open: func(c reactor.Conn) { c.SetContext(&state{v: newVerifier(reqP)}) },
			data: func(c reactor.Conn, in reactor.View) { c.Context().(*state).v.consume(in) },
			peerClose: func(c reactor.Conn) bool {
				st := c.Context().(*state)
				if st.v.bad >= 0 {
					e.errorf("request byte %d corrupted", st.v.bad)
				}
				atPeerClose <- st.v.off
				st.st = newStreamer(respP, respSize, 64<<10, func(c reactor.Conn) {
					if err := c.CloseWrite(); err != nil {
						e.errorf("CloseWrite after the reply: %v", err)
					}
				})
				st.st.pump(c)
				return true
			},
			writable: func(c reactor.Conn) {
				if st := c.Context().(*state); st.st != nil {
					st.st.pump(c)
				}
			},
			close: func(c reactor.Conn, err error) {
				if st := c.Context().(*state); st.st != nil && st.st.err != nil {
					e.errorf("reply after OnPeerClose: %v", st.st.err)
				}
				closed <- closeEvent{c: c, err: err}
			},
		}
		addr, _ := e.listen(h)
		c := e.dial(addr)
		if err := writeStream(c, reqP, reqSize, 32<<10, nil); err != nil {
			e.fatalf("%v", err)
		}
		if err := c.CloseWrite(); err != nil {
			e.fatalf("client CloseWrite: %v", err)
		}
		if n := recv(e, atPeerClose, stepTimeout, "OnPeerClose after the client's FIN"); n != reqSize {
			e.fatalf("OnPeerClose ran after %d request bytes were delivered, want all %d", n, reqSize)
		}
		if got, err := readStream(c, respP, respSize, true, nil); err != nil {
			e.fatalf("reply written after OnPeerClose returned true: %v (received %d)", err, got)
		}
		// Both directions are finished: the connection must go away without the client's help.
		ev := recv(e, closed, closeTimeout, "OnClose once both directions were shut down")
		if !errIs(ev.err, nil, reactor.ErrPeerClosed) {
			e.fatalf("OnClose reason %s, want nil or ErrPeerClosed", describe(ev.err))
		}
	})

	// The peer sends its bytes and its FIN while the handler has reading paused: nothing is
	// delivered until the resume, then every byte arrives before OnPeerClose.
	t.Run("PeerCloseWhilePaused", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		p := newPattern(65)
		const size = 64 << 10
		type state struct {
			resumed bool
			v       *verifier
		}
		conns := make(chan reactor.Conn, 1)
		atPeerClose := make(chan *verifier, 1)
		h := &funcs{
			open: func(c reactor.Conn) {
				c.SetContext(&state{v: newVerifier(p)})
				c.PauseRead(true)
				conns <- c
			},
			data: func(c reactor.Conn, in reactor.View) {
				st := c.Context().(*state)
				if !st.resumed {
					e.errorf("OnData while reading was paused")
				}
				st.v.consume(in)
			},
			peerClose: func(c reactor.Conn) bool {
				st := c.Context().(*state)
				if !st.resumed {
					e.errorf("OnPeerClose while reading was paused: it must wait for the resume")
				}
				atPeerClose <- st.v
				return false
			},
		}
		addr, _ := e.listen(h)
		client := e.dial(addr)
		c := recv(e, conns, stepTimeout, "OnOpen")
		if err := writeStream(client, p, size, 16<<10, nil); err != nil {
			e.fatalf("%v", err)
		}
		if err := client.CloseWrite(); err != nil {
			e.fatalf("client CloseWrite: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the FIN is there; a backend that reads it must hold it
		select {
		case <-atPeerClose:
			e.fatalf("OnPeerClose ran while reading was paused")
		default:
		}
		if !c.Exec(func() {
			c.Context().(*state).resumed = true
			c.PauseRead(false)
		}) {
			e.fatalf("Exec refused on an open, paused conn")
		}
		v := recv(e, atPeerClose, stepTimeout, "OnPeerClose after the resume")
		if v.off != size || v.bad >= 0 {
			e.fatalf("at OnPeerClose the handler had %d of %d bytes (first bad byte %d): OnPeerClose overtook data",
				v.off, size, v.bad)
		}
		e.expectEnd(client, "after OnPeerClose returned false")
	})

	// OnPeerClose returning false closes the connection with ErrPeerClosed.
	t.Run("PeerCloseRefused", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		got := make(chan string, 1)
		closed := make(chan closeEvent, 1)
		h := &funcs{
			open: func(c reactor.Conn) { c.SetContext(new([]byte)) },
			data: func(c reactor.Conn, in reactor.View) {
				b := c.Context().(*[]byte)
				*b = append(*b, in.Peek(-1)...)
				in.Skip(in.Len())
			},
			peerClose: func(c reactor.Conn) bool {
				got <- string(*c.Context().(*[]byte))
				return false
			},
			close: func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} },
		}
		addr, _ := e.listen(h)
		c := e.dial(addr)
		if _, err := c.Write([]byte("last words")); err != nil {
			e.fatalf("client write: %v", err)
		}
		_ = c.CloseWrite()
		if s := recv(e, got, stepTimeout, "OnPeerClose"); s != "last words" {
			e.fatalf("before OnPeerClose the handler got %q, want %q", s, "last words")
		}
		ev := recv(e, closed, closeTimeout, "OnClose after OnPeerClose returned false")
		if !errors.Is(ev.err, reactor.ErrPeerClosed) {
			e.fatalf("OnClose reason %s, want ErrPeerClosed", describe(ev.err))
		}
		if rest := e.expectEnd(c, "after OnPeerClose returned false"); len(rest) != 0 {
			e.fatalf("client got %d unexpected bytes", len(rest))
		}
	})

	// The server queues 512 KiB and half-closes while the client is not reading: the bytes
	// are flushed before the FIN, and the client can still send afterwards.
	t.Run("LocalCloseWrite", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		outP, inP := newPattern(63), newPattern(64)
		const outSize, inSize = 512 << 10, 64 << 10
		received := make(chan *verifier, 1)
		closed := make(chan closeEvent, 1)
		h := &funcs{
			open: func(c reactor.Conn) {
				c.SetContext(newVerifier(inP))
				if err := c.Write(outP.bytes(0, outSize)); err != nil {
					e.errorf("server Write: %v", err)
				}
				if err := c.CloseWrite(); err != nil {
					e.errorf("server CloseWrite: %v", err)
				}
			},
			data: func(c reactor.Conn, in reactor.View) {
				v := c.Context().(*verifier)
				v.consume(in)
				if v.off == inSize {
					received <- v
				}
			},
			peerClose: func(c reactor.Conn) bool { return false },
			close:     func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} },
		}
		addr, _ := e.listen(h)
		c := e.dial(addr)
		time.Sleep(200 * time.Millisecond)
		if got, err := readStream(c, outP, outSize, true, nil); err != nil {
			e.fatalf("client reading what the server wrote before CloseWrite: %v (received %d)", err, got)
		}
		if err := writeStream(c, inP, inSize, 16<<10, nil); err != nil {
			e.fatalf("client sending after the server's CloseWrite: %v", err)
		}
		v := recv(e, received, stepTimeout, "the server receiving the client's bytes after its own CloseWrite")
		if v.bad >= 0 {
			e.fatalf("byte %d the client sent after the server's CloseWrite was corrupted", v.bad)
		}
		_ = c.Close()
		ev := recv(e, closed, closeTimeout, "OnClose after the client closed")
		if !errIs(ev.err, nil, reactor.ErrPeerClosed) {
			e.fatalf("OnClose reason %s, want nil or ErrPeerClosed", describe(ev.err))
		}
	})
}
