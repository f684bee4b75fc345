package reactortest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// dialResult is what a Dial's done received.
type dialResult struct {
	c      reactor.Conn
	err    error
	opened bool // OnOpen had run when done was called
	at     time.Time
}

// dialRecorder is a handler plus a done function for one Dial.
type dialRecorder struct {
	opened atomic.Bool
	dones  atomic.Int32
	result chan dialResult
	data   chan []byte
}

func newDialRecorder() *dialRecorder {
	return &dialRecorder{result: make(chan dialResult, 2), data: make(chan []byte, 16)}
}

func (d *dialRecorder) handler() *funcs {
	return &funcs{
		open: func(c reactor.Conn) { d.opened.Store(true) },
		data: func(c reactor.Conn, in reactor.View) {
			d.data <- append([]byte(nil), in.Peek(-1)...)
			in.Skip(in.Len())
		},
	}
}

func (d *dialRecorder) done(c reactor.Conn, err error) {
	d.dones.Add(1)
	d.result <- dialResult{c: c, err: err, opened: d.opened.Load(), at: time.Now()}
}

// 9. Dialing: success, a closed port, and connect timeouts (explicit and the default).
func (s *suite) testDial(t *testing.T) {
	t.Run("Success", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		bl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.fatalf("listen: %v", err)
		}
		defer bl.Close()
		d := newDialRecorder()
		e.tr.Dial(nil, bl.Addr().String(), 0, e.mon.wrap(d.handler()), func(c reactor.Conn, err error) {
			d.done(c, err)
			if err == nil {
				if werr := c.Write([]byte("ping")); werr != nil { // done runs on c's executor
					e.errorf("Write from Dial's done: %v", werr)
				}
			}
		})
		peer, err := acceptWithin(bl, stepTimeout)
		if err != nil {
			e.fatalf("backend accept: %v", err)
		}
		defer peer.Close()
		r := recv(e, d.result, stepTimeout, "Dial's done")
		if r.err != nil || r.c == nil {
			e.fatalf("Dial to a listening port: done(%v, %s)", r.c, describe(r.err))
		}
		if !r.opened {
			e.fatalf("done ran before the handler's OnOpen")
		}
		_ = peer.SetDeadline(time.Now().Add(stepTimeout))
		got := make([]byte, 4)
		if _, err := io.ReadFull(peer, got); err != nil || string(got) != "ping" {
			e.fatalf("backend read %q, %v; want %q written from done", got, err, "ping")
		}
		if _, err := peer.Write([]byte("pong")); err != nil {
			e.fatalf("backend write: %v", err)
		}
		if b := recv(e, d.data, stepTimeout, "OnData on the dialed conn"); string(b) != "pong" {
			e.fatalf("dialed conn received %q, want %q", b, "pong")
		}
		if r.c.RemoteAddr() == nil || r.c.RemoteAddr().String() != bl.Addr().String() {
			e.fatalf("dialed conn RemoteAddr %v, want %v", r.c.RemoteAddr(), bl.Addr())
		}
		time.Sleep(50 * time.Millisecond)
		if n := d.dones.Load(); n != 1 {
			e.fatalf("done called %d times", n)
		}
	})

	t.Run("ClosedPort", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.fatalf("listen: %v", err)
		}
		addr := l.Addr().String()
		l.Close()
		d := newDialRecorder()
		e.tr.Dial(nil, addr, 0, e.mon.wrap(d.handler()), d.done)
		r := recv(e, d.result, stepTimeout, "Dial's done for a closed port")
		if r.err == nil {
			e.fatalf("Dial to a closed port reported success")
		}
		t.Logf("[%s] dial to a closed port: %v", e.name, r.err)
		time.Sleep(50 * time.Millisecond)
		if d.opened.Load() || e.mon.totalOpened() != 0 {
			e.fatalf("OnOpen ran for a failed dial")
		}
		if n := d.dones.Load(); n != 1 {
			e.fatalf("done called %d times", n)
		}
	})

	timeout := func(t *testing.T, o reactor.Options, arg, want time.Duration) {
		e := s.start(t, o)
		addr := e.blackhole()
		d := newDialRecorder()
		start := time.Now()
		e.tr.Dial(nil, addr, arg, e.mon.wrap(d.handler()), d.done)
		if took := time.Since(start); took > want/2 {
			e.fatalf("Dial blocked its caller for %v", took)
		}
		r := recv(e, d.result, want+stepTimeout, "Dial's done for a connect that cannot complete")
		took := r.at.Sub(start)
		if !errors.Is(r.err, reactor.ErrDialTimeout) {
			e.fatalf("Dial with a %v timeout to a port that drops SYNs: done(%v, %s) after %v, want ErrDialTimeout",
				want, r.c, describe(r.err), took)
		}
		if took < want*8/10 || took > want+5*time.Second {
			e.fatalf("connect timeout of %v reported after %v", want, took)
		}
		time.Sleep(50 * time.Millisecond)
		if d.opened.Load() || d.dones.Load() != 1 {
			e.fatalf("after a dial timeout: OnOpen ran %v, done called %d times", d.opened.Load(), d.dones.Load())
		}
	}
	t.Run("Timeout", func(t *testing.T) {
		timeout(t, reactor.Options{}, 300*time.Millisecond, 300*time.Millisecond)
	})
	t.Run("DefaultTimeout", func(t *testing.T) {
		timeout(t, reactor.Options{DialTimeout: 300 * time.Millisecond}, 0, 300*time.Millisecond)
	})
}

// blackhole returns the address of a listening socket whose accept queue is full, so the
// kernel drops new SYNs and a connect to it can only time out.
func (e *env) blackhole() string {
	e.t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		e.fatalf("socket: %v", err)
	}
	e.t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		e.fatalf("bind: %v", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		e.fatalf("listen: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		e.fatalf("getsockname: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr
			}
			e.fatalf("filling the accept queue of %s: %v", addr, err)
		}
		e.t.Cleanup(func() { c.Close() })
	}
	e.fatalf("could not fill the accept queue of %s", addr)
	return ""
}

func acceptWithin(l net.Listener, d time.Duration) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-time.After(d):
		l.Close()
		return nil, fmt.Errorf("no connection within %v", d)
	}
}
