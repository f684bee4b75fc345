//go:build linux

package netpoll

import (
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	np "github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// TestLayoutPinned fails loudly when the netpoll this package links is not the one layout.go
// was written against. If it fails after a netpoll upgrade: re-read connection.go,
// connection_impl.go, fd_operator.go, poll_default_linux*.go and connection_reactor.go of the
// new version, check every assumption listed at the top of layout.go, then update the
// expected values here.
func TestLayoutPinned(t *testing.T) {
	// Test binaries carry no module versions in their build info: take the version from the
	// path netpoll was compiled from (…/github.com/cloudwego/netpoll@v0.7.2/…).
	fn := runtime.FuncForPC(reflect.ValueOf(np.NewLinkBuffer).Pointer())
	if fn == nil {
		t.Fatal("cannot locate netpoll's source")
	}
	file, _ := fn.FileLine(fn.Entry())
	if !strings.Contains(file, "github.com/cloudwego/netpoll@v0.7.2/") {
		t.Fatalf("layout.go is written against netpoll v0.7.2, linked %s: re-verify it", file)
	}
	l, err := resolveLayout()
	if err != nil {
		t.Fatalf("netpoll internals changed: %v", err)
	}
	if unsafe.Sizeof(uintptr(0)) == 8 {
		want := layout{connOperator: 200, connReadTrigger: 232, connBookSize: 312, connMaxSize: 304, opPoll: 64, opState: 96}
		got := layout{connOperator: l.connOperator, connReadTrigger: l.connReadTrigger,
			connBookSize: l.connBookSize, connMaxSize: l.connMaxSize, opPoll: l.opPoll, opState: l.opState}
		if got != want {
			t.Fatalf("netpoll v0.7.2 offsets moved: got %+v, want %+v", got, want)
		}
	}
}

// TestLayoutDropsReadInterest checks the hooks on real connections, accepted and dialed:
// while paused, bytes stay in the kernel (netpoll's buffer stays empty); on resume they are
// delivered.
func TestLayoutDropsReadInterest(t *testing.T) {
	tr := start(t, reactor.Options{}, false)
	opened := make(chan *conn, 2)
	got := make(chan int, 16)
	h := &fh{
		open: func(c reactor.Conn) {
			c.PauseRead(true)
			opened <- c.(*conn)
		},
		data: func(c reactor.Conn, in reactor.View) {
			got <- in.Len()
			in.Skip(in.Len())
		},
	}
	addr := listen(t, tr, h)

	check := func(t *testing.T, c *conn, peer net.Conn) {
		if c.hk == nil {
			t.Fatal("connection has no netpoll hooks: layout.go could not attach")
		}
		if c.hk.op.FD != c.fd || c.hk.epfd <= 0 {
			t.Fatalf("hooks point at fd %d / epoll %d, conn fd %d", c.hk.op.FD, c.hk.epfd, c.fd)
		}
		if _, err := peer.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the bytes in the kernel's receive queue", func() bool {
			n, err := unix.IoctlGetInt(c.fd, unix.SIOCINQ)
			return err == nil && n == 1000
		})
		time.Sleep(50 * time.Millisecond)
		if n := c.nc.Reader().Len(); n != 0 {
			t.Fatalf("netpoll read %d bytes of a paused connection", n)
		}
		select {
		case n := <-got:
			t.Fatalf("OnData(%d bytes) while paused", n)
		default:
		}
		c.Exec(func() { c.PauseRead(false) })
		if n := within(t, got, 10*time.Second, "OnData after the resume"); n != 1000 {
			t.Fatalf("OnData got %d bytes, want 1000", n)
		}
	}

	t.Run("Accepted", func(t *testing.T) {
		peer := dialTCP(t, addr)
		c := within(t, opened, 10*time.Second, "OnOpen")
		check(t, c, peer)
	})

	t.Run("Dialed", func(t *testing.T) {
		bl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer bl.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			if c, err := bl.Accept(); err == nil {
				accepted <- c
			}
		}()
		done := make(chan error, 1)
		tr.Dial(nil, bl.Addr().String(), 0, h, func(_ reactor.Conn, err error) { done <- err })
		if err := within(t, done, 10*time.Second, "Dial"); err != nil {
			t.Fatal(err)
		}
		peer := within(t, accepted, 10*time.Second, "accept")
		defer peer.Close()
		c := within(t, opened, 10*time.Second, "OnOpen of the dialed conn")
		check(t, c, peer)
	})
}
