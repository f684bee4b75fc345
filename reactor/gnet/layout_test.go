package gnet

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// TestLayout is the guard for layout.go: it fails loudly when the gnet module is not the
// v2.9.7 whose unexported fields the backend reads, and checks every accessor against what
// the kernel says about live objects.
func TestLayout(t *testing.T) {
	lay, err := probeLayout()
	if err != nil {
		t.Fatalf("gnet layout probe: %v (is go.mod still on github.com/panjf2000/gnet/v2 v2.9.7?)", err)
	}
	if lay.pollerFDOff != 0 {
		t.Errorf("netpoll.Poller.fd at offset %d, v2.9.7 has it first", lay.pollerFDOff)
	}

	const loops = 3
	tr := newTransport(t, reactor.Options{Loops: loops})
	conns := make(chan reactor.Conn, 1)
	addr, ln := listen(t, tr, &hfuncs{open: func(c reactor.Conn) { conns <- c }})
	es := ln.(*listener).es

	// Event loops: as many as configured, each with its own epoll instance.
	if got := len(es.loopList()); got != loops {
		t.Fatalf("layout.eventLoops found %d loops, want %d", got, loops)
	}
	seen := map[int]bool{}
	for i, l := range es.loopList() {
		if l.id != i {
			t.Errorf("loop %d has ExecutorID %d", i, l.id)
		}
		if kind := fdKind(t, l.epfd); kind != "anon_inode:[eventpoll]" {
			t.Fatalf("loop %d: layout.epollFD gave fd %d, which is %q, not an epoll instance", i, l.epfd, kind)
		}
		if seen[l.epfd] {
			t.Fatalf("two loops share epoll fd %d", l.epfd)
		}
		seen[l.epfd] = true
	}

	// The listener fd is the bound socket.
	sa, err := unix.Getsockname(es.lnFD)
	if err != nil {
		t.Fatalf("getsockname(listener fd %d): %v", es.lnFD, err)
	}
	if got := sockaddrToTCP(sa).String(); got != addr {
		t.Fatalf("layout.listenerFDs gave a socket bound to %s, the listener is %s", got, addr)
	}

	// The connection is registered in its loop's epoll set, with the interest the backend sets.
	client := dial(t, addr)
	c := recvT(t, conns, "OnOpen").(*conn)
	fd := c.gc.Fd()
	if ev, ok := epollEvents(t, c.l.epfd, fd); !ok || ev&unix.EPOLLIN == 0 {
		t.Fatalf("fd %d not in its loop's epoll set with EPOLLIN (found %v, events %#x)", fd, ok, ev)
	}
	onLoop(t, c, func() { c.PauseRead(true) })
	if ev, ok := epollEvents(t, c.l.epfd, fd); !ok || ev&(unix.EPOLLIN|unix.EPOLLOUT) != 0 {
		t.Fatalf("after PauseRead(true) the epoll interest is %#x (registered %v), want none", ev, ok)
	}
	onLoop(t, c, func() { c.PauseRead(false) })
	if ev, _ := epollEvents(t, c.l.epfd, fd); ev&unix.EPOLLIN == 0 {
		t.Fatalf("after PauseRead(false) the epoll interest is %#x, want EPOLLIN", ev)
	}

	// The outbound view agrees with gnet and yields the queued bytes, in order: they are the
	// tail of the stream written so far.
	_ = client.SetReadBuffer(4 << 10)
	var queued, written int
	var tail []byte
	onLoop(t, c, func() {
		for c.gc.OutboundBuffered() == 0 && written < 256<<20 {
			if err := c.Write(pattern(7, written, 64<<10)); err != nil {
				t.Errorf("Write: %v", err)
				return
			}
			written += 64 << 10
		}
		queued = c.gc.OutboundBuffered()
		ob, err := lay.outbound(c.gc)
		if err != nil {
			t.Errorf("layout.outbound: %v", err)
			return
		}
		if ob.Buffered() != queued {
			t.Errorf("layout.outbound holds %d bytes, gnet reports %d", ob.Buffered(), queued)
		}
		b, err := takeOutbound(lay, c.gc)
		if err != nil || b == nil {
			t.Errorf("takeOutbound: %v, %v", b, err)
			return
		}
		for _, p := range b.Bytes() {
			tail = append(tail, p...)
		}
		b.Release()
		if n := c.gc.OutboundBuffered(); n != 0 {
			t.Errorf("after takeOutbound gnet still holds %d bytes", n)
		}
	})
	if queued == 0 || len(tail) != queued {
		t.Fatalf("takeOutbound: gnet queued %d bytes, took %d", queued, len(tail))
	}
	if !bytes.Equal(tail, pattern(7, written-queued, queued)) {
		t.Fatalf("takeOutbound: the %d bytes taken are not the tail of the stream", queued)
	}
}

// TestLayoutRejectsForeignValues checks that the accessors refuse values of other types
// instead of reading through them.
func TestLayoutRejectsForeignValues(t *testing.T) {
	lay, err := probeLayout()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lay.epollFD(nil); err == nil {
		t.Fatal("epollFD(nil) succeeded")
	}
	if _, err := lay.outbound(nil); err == nil {
		t.Fatal("outbound(nil) succeeded")
	}
	if _, err := lay.listenerFDs(gnetv2.Engine{}); err == nil {
		t.Fatal("listenerFDs(empty engine) succeeded")
	}
	if _, err := field(reflect.TypeOf(0), "x", reflect.Int); err == nil {
		t.Fatal("field() on a non-struct succeeded")
	}
}

// fdKind is what /proc/self/fd/N links to.
func fdKind(t *testing.T, fd int) string {
	t.Helper()
	s, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatalf("readlink fd %d: %v", fd, err)
	}
	return s
}

// epollEvents reads the interest mask registered for fd in the epoll instance epfd from
// /proc/self/fdinfo ("tfd: <fd> events: <hex> ...").
func epollEvents(t *testing.T, epfd, fd int) (uint32, bool) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/self/fdinfo/%d", epfd))
	if err != nil {
		t.Fatalf("fdinfo of epoll fd %d: %v", epfd, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[0] != "tfd:" || fields[2] != "events:" {
			continue
		}
		if n, _ := strconv.Atoi(fields[1]); n != fd {
			continue
		}
		ev, err := strconv.ParseUint(fields[3], 16, 32)
		if err != nil {
			t.Fatalf("fdinfo events %q: %v", fields[3], err)
		}
		return uint32(ev), true
	}
	return 0, false
}
