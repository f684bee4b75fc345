package gnet

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// TestListenerCloseReleasesPort: gnet cannot stop one listener without its engine; the
// backend swaps the listening socket for a placeholder. The port is free at once (connects
// are refused, the address can be bound again), established connections keep working, and
// the engine stops when its last connection is gone.
func TestListenerCloseReleasesPort(t *testing.T) {
	tr := newTransport(t, reactor.Options{Loops: 2})
	echo := &hfuncs{data: func(c reactor.Conn, in reactor.View) {
		_ = c.Write(in.Peek(-1))
		in.Skip(in.Len())
	}}
	addr, ln := listen(t, tr, echo)
	es := ln.(*listener).es
	client := dial(t, addr)
	roundTrip(t, client, "before")

	if err := ln.Close(); err != nil {
		t.Fatalf("Listener.Close: %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("second Listener.Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect after Listener.Close: %v, want ECONNREFUSED", err)
	}
	roundTrip(t, client, "after close")

	// The same port can be bound again, by this transport, while the old engine still serves.
	ln2, err := tr.Listen(addr, echo)
	if err != nil {
		t.Fatalf("Listen on the released %s: %v", addr, err)
	}
	defer ln2.Close()
	roundTrip(t, dial(t, addr), "through the new listener")
	roundTrip(t, client, "old conn, new listener up")

	select {
	case <-es.runDone:
		t.Fatal("the old engine stopped while it still had a connection")
	default:
	}
	_ = client.Close()
	select {
	case <-es.runDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the old engine did not stop after its last connection closed")
	}
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("%s: write: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := c.Read(got); err != nil || string(got) != msg {
		t.Fatalf("%s: read %q, %v", msg, got, err)
	}
}

// TestListenErrors: a bad or taken address fails Listen and leaves nothing running.
func TestListenErrors(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := tr.Listen(l.Addr().String(), &hfuncs{}); err == nil {
		t.Fatal("Listen on a taken port succeeded")
	}
	if _, err := tr.Listen("not an address", &hfuncs{}); err == nil {
		t.Fatal("Listen on a malformed address succeeded")
	}
	tr.mu.Lock()
	n := len(tr.engines)
	tr.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d engines left after failed Listens", n)
	}
}
