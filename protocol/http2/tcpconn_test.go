package http2

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// tcpConn is a minimal reactor.Conn over a net.Conn for tests over real sockets (x/net's
// own HTTP/2 client and server, h2spec): one reader goroutine, an executor that is a mutex
// shared by the connections of one test, blocking writes. It implements the contract's
// rules the codec relies on (views valid during the callback, unconsumed bytes delivered
// again, Exec after the running callback), not a backend's performance.
type tcpConn struct {
	nc     net.Conn
	mu     *sync.Mutex // the executor
	decode func(in reactor.View) error
	onEOF  func()
	closed bool
	done   chan struct{}
}

var _ reactor.Conn = (*tcpConn)(nil)

func newTCPConn(nc net.Conn, mu *sync.Mutex) *tcpConn {
	return &tcpConn{nc: nc, mu: mu, done: make(chan struct{})}
}

// serve reads until the connection ends, calling decode under the executor lock.
func (c *tcpConn) serve() {
	defer close(c.done)
	var pending []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := c.nc.Read(buf)
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		pending = append(pending, buf[:n]...)
		if len(pending) > 0 {
			v := &fakeView{buf: pending}
			derr := c.decode(v)
			pending = append(pending[:0], pending[v.off:]...)
			if derr != nil {
				c.closeLocked()
				c.mu.Unlock()
				return
			}
		}
		if err != nil {
			if c.onEOF != nil && errors.Is(err, io.EOF) {
				c.onEOF()
			}
			c.closeLocked()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

func (c *tcpConn) closeLocked() {
	if !c.closed {
		c.closed = true
		_ = c.nc.Close()
	}
}

func (c *tcpConn) ID() uint64           { return 1 }
func (c *tcpConn) ExecutorID() int      { return 0 }
func (c *tcpConn) LocalAddr() net.Addr  { return c.nc.LocalAddr() }
func (c *tcpConn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

func (c *tcpConn) Write(p []byte) error {
	if c.closed {
		return reactor.ErrClosed
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.nc.Write(p)
	return err
}

func (c *tcpConn) Writev(bufs [][]byte) error {
	if c.closed {
		return reactor.ErrClosed
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	nb := net.Buffers(append([][]byte(nil), bufs...))
	_, err := nb.WriteTo(c.nc)
	return err
}

// Schedule runs fn on the executor after d (time.AfterFunc: fine for tests).
func (c *tcpConn) Schedule(t *reactor.Timer, d time.Duration, fn func()) {
	time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		fn()
	})
}

// Unschedule is not supported by this test connection: the codec arms no timers.
func (c *tcpConn) Unschedule(*reactor.Timer) bool { return false }

func (c *tcpConn) Outbound() int                { return 0 }
func (c *tcpConn) Congested() bool              { return false }
func (c *tcpConn) PauseRead(bool)               {}
func (c *tcpConn) CloseWrite() error            { return nil }
func (c *tcpConn) SetIdleTimeout(time.Duration) {}
func (c *tcpConn) SetReadTimeout(time.Duration) {}
func (c *tcpConn) Context() any                 { return nil }
func (c *tcpConn) SetContext(any)               {}

func (c *tcpConn) Send(b *reactor.Buffer) error {
	defer b.Release()
	return c.Writev(b.Bytes())
}

func (c *tcpConn) Exec(fn func()) bool {
	if c.closed {
		return false
	}
	go func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.closed {
			fn()
		}
	}()
	return true
}

// Close is called on the executor (with mu held) by the codec.
func (c *tcpConn) Close(error) { c.closeLocked() }
func (c *tcpConn) Abort(error) { c.closeLocked() }

// answerSink answers every request, once it is complete, with 200 and a small body; it
// consumes request bodies as they come. It is the h2spec and interop test server.
type answerSink struct {
	enc  protocol.Encoder
	body []byte
}

func (a *answerSink) answer(id protocol.StreamID) {
	h := protocol.NewHeaderList(protocol.Status, "200", "content-type", "text/plain")
	if a.enc.EncodeHeaders(id, h, false) == nil {
		_ = a.enc.EncodeData(id, [][]byte{a.body}, true)
	}
}

func (a *answerSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	h.Release()
	if end {
		a.answer(id)
	}
}

func (a *answerSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	in.Skip(n)
	if end {
		a.answer(id)
	}
}

func (a *answerSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	t.Release()
	a.answer(id)
}

func (a *answerSink) OnReset(protocol.StreamID, error) {}

// serveH2C listens on 127.0.0.1:0 and serves every connection with the server codec and an
// answerSink. It returns the address and a stop function.
func serveH2C(t testing.TB, cfg Config) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	codec := NewCodec(cfg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[*tcpConn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := newTCPConn(nc, new(sync.Mutex))
			sink := &answerSink{body: []byte("hello world\n")}
			c.mu.Lock()
			s := codec.NewServer(c, sink)
			sink.enc = s
			c.decode = s.Decode
			c.onEOF = s.(protocol.EOFHandler).OnEOF
			c.mu.Unlock()
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.serve()
			}()
		}
	}()
	return ln.Addr().String(), func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}
