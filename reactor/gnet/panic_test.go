package gnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// The shared suite (reactortest "HandlerPanic") covers OnData, Exec and OnOpen of accepted
// connections. These tests cover the remaining paths that call code the backend does not own
// (dial completions, OnWritable, OnPeerClose, OnClose, the half-closed write side, Releasers),
// that each panic is logged exactly once through Options.Logger, and that the loop's dispatch
// bookkeeping is back at rest afterwards.

// logRec is one captured slog record.
type logRec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// recLog is a slog.Handler that keeps every record.
type recLog struct {
	mu   sync.Mutex
	recs []logRec
}

func (h *recLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *recLog) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *recLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recLog) WithGroup(string) slog.Handler      { return h }

// panics returns the records of recovered panics that happened in where.
func (h *recLog) panics(where string) []logRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRec
	for _, r := range h.recs {
		if r.msg == "reactor/gnet: recovered a panic" && r.attrs["in"] == where {
			out = append(out, r)
		}
	}
	return out
}

// expectLogged waits for exactly one panic record from where, with value and a stack.
func (h *recLog) expectLogged(t *testing.T, where, value string) logRec {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.panics(where)) == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a duplicate would arrive now
	recs := h.panics(where)
	if len(recs) != 1 {
		t.Fatalf("%d log records of a panic in %s, want exactly 1 (all records: %+v)", len(recs), where, h.recs)
	}
	r := recs[0]
	if r.level != slog.LevelError || r.attrs["panic"] != value || !strings.Contains(r.attrs["stack"], "panic_test.go") {
		t.Fatalf("panic record %+v: want level ERROR, panic=%q and a stack through panic_test.go", r, value)
	}
	return r
}

// panicFix is a transport with one loop whose listener serves its first connection as an
// echo bystander and every later one with the test's handler v.
type panicFix struct {
	t      *testing.T
	tr     *Transport
	logs   *recLog
	addr   string
	v      *hfuncs
	byID   atomic.Uint64
	by     reactor.Conn
	client *net.TCPConn
}

func newPanicFix(t *testing.T, o reactor.Options, v *hfuncs) *panicFix {
	t.Helper()
	f := &panicFix{t: t, logs: &recLog{}, v: v}
	o.Loops = 1
	o.Logger = slog.New(f.logs)
	f.tr = newTransport(t, o)
	opened := make(chan reactor.Conn, 1)
	h := &hfuncs{
		open: func(c reactor.Conn) {
			if f.byID.CompareAndSwap(0, c.ID()) {
				opened <- c
				return
			}
			v.OnOpen(c)
		},
		data: func(c reactor.Conn, in reactor.View) {
			if c.ID() == f.byID.Load() {
				_ = c.Write(in.Peek(-1))
				in.Skip(in.Len())
				return
			}
			v.OnData(c, in)
		},
		writable: func(c reactor.Conn) {
			if c.ID() != f.byID.Load() {
				v.OnWritable(c)
			}
		},
		peerClose: func(c reactor.Conn) bool {
			return c.ID() != f.byID.Load() && v.OnPeerClose(c)
		},
		close: func(c reactor.Conn, err error) {
			if c.ID() != f.byID.Load() {
				v.OnClose(c, err)
			}
		},
	}
	f.addr, _ = listen(t, f.tr, h)
	f.client = dial(t, f.addr)
	f.roundTrip("bystander up")
	f.by = recvT(t, opened, "the bystander's OnOpen")
	return f
}

func (f *panicFix) roundTrip(msg string) {
	f.t.Helper()
	if _, err := f.client.Write([]byte(msg)); err != nil {
		f.t.Fatalf("bystander write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(f.client, got); err != nil || string(got) != msg {
		f.t.Fatalf("bystander round trip: got %q, %v; want %q", got, err, msg)
	}
}

// healthy checks that the bystander still round-trips and that the loop's dispatch
// bookkeeping is at rest: inside a task, depth 1, not draining, no gnet dispatch, nothing
// deferred.
func (f *panicFix) healthy(step string) {
	f.t.Helper()
	f.roundTrip("still here after " + step)
	l := f.by.(*conn).l
	var depth, deferred int
	var draining, curClose bool
	var cur *conn
	onLoop(f.t, f.by, func() {
		depth, draining, cur, curClose, deferred = l.depth, l.draining, l.cur, l.curClose, len(l.deferred)
	})
	if depth != 1 || draining || cur != nil || curClose || deferred != 0 {
		f.t.Fatalf("after %s the loop's bookkeeping is depth %d (want 1 inside a task), draining %v, cur %v, "+
			"curClose %v, %d deferred", step, depth, draining, cur, curClose, deferred)
	}
}

// closeRec counts OnClose calls of the test's connections.
type closeRec struct {
	mu  sync.Mutex
	n   map[uint64]int
	evs chan closeEv
}

type closeEv struct {
	c   reactor.Conn
	err error
}

func newCloseRec() *closeRec { return &closeRec{n: map[uint64]int{}, evs: make(chan closeEv, 16)} }

func (r *closeRec) onClose(c reactor.Conn, err error) {
	r.mu.Lock()
	r.n[c.ID()]++
	r.mu.Unlock()
	r.evs <- closeEv{c, err}
}

// panicClose waits for one OnClose whose reason is a recovered panic in where with value.
func (r *closeRec) panicClose(t *testing.T, where, value string) closeEv {
	t.Helper()
	ev := recvT(t, r.evs, "OnClose after the panic in "+where)
	if !errors.Is(ev.err, ErrHandlerPanic) || !strings.Contains(ev.err.Error(), "in "+where+": "+value) ||
		!strings.Contains(ev.err.Error(), "panic_test.go") {
		t.Fatalf("OnClose reason %v: want an error wrapping ErrHandlerPanic naming %q, %q and a stack", ev.err, where, value)
	}
	return ev
}

func (r *closeRec) once(t *testing.T) {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, n := range r.n {
		if n != 1 {
			t.Fatalf("conn %d got OnClose %d times", id, n)
		}
	}
}

// expectEnd reads c until EOF or a reset.
func expectEnd(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("peer of the panicked conn: %v, want EOF or a reset", err)
	}
}

// TestPanicLoggedOnceAndReported: the close reason wraps ErrHandlerPanic with the value and
// the stack, and the panic is logged once to Options.Logger, or to slog.Default() without one.
func TestPanicLoggedOnceAndReported(t *testing.T) {
	const value = "boom in OnData"
	closes := newCloseRec()
	v := &hfuncs{data: func(reactor.Conn, reactor.View) { panic(value) }, close: closes.onClose}
	f := newPanicFix(t, reactor.Options{}, v)
	victim := dial(t, f.addr)
	if _, err := victim.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	ev := closes.panicClose(t, "OnData", value)
	expectEnd(t, victim)
	rec := f.logs.expectLogged(t, "OnData", value)
	if rec.attrs["conn"] != fmt.Sprint(ev.c.ID()) || rec.attrs["executor"] != "0" {
		t.Fatalf("panic record %+v: want conn=%d executor=0", rec.attrs, ev.c.ID())
	}
	closes.once(t)
	f.healthy("a panic in OnData")

	t.Run("DefaultLogger", func(t *testing.T) {
		logs := &recLog{}
		old := slog.Default()
		slog.SetDefault(slog.New(logs))
		defer slog.SetDefault(old)
		tr := newTransport(t, reactor.Options{})
		addr, _ := listen(t, tr, &hfuncs{open: func(reactor.Conn) { panic("boom in OnOpen") }})
		expectEnd(t, dial(t, addr))
		logs.expectLogged(t, "OnOpen", "boom in OnOpen")
	})
}

// TestPanicInDial: OnOpen of a dialed connection panics (done gets the failure, OnClose still
// runs once since OnOpen ran), done panics after a success (the new conn is closed), and done
// panics after a failure, on near's loop and on the runner (logged, nothing to close).
func TestPanicInDial(t *testing.T) {
	closes := newCloseRec()
	f := newPanicFix(t, reactor.Options{}, &hfuncs{})
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	accept := func() net.Conn {
		t.Helper()
		_ = backend.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		c, err := backend.Accept()
		if err != nil {
			t.Fatalf("backend accept: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("OnOpen", func(t *testing.T) {
		type result struct {
			c   reactor.Conn
			err error
		}
		dones := make(chan result, 2)
		h := &hfuncs{open: func(reactor.Conn) { panic("boom in a dialed OnOpen") }, close: closes.onClose}
		f.tr.Dial(f.by, backend.Addr().String(), 0, h, func(c reactor.Conn, err error) { dones <- result{c, err} })
		peer := accept()
		r := recvT(t, dones, "Dial's done")
		if r.c != nil || !errors.Is(r.err, ErrHandlerPanic) {
			t.Fatalf("done(%v, %v) after OnOpen panicked, want (nil, ErrHandlerPanic)", r.c, r.err)
		}
		closes.panicClose(t, "OnOpen", "boom in a dialed OnOpen")
		expectEnd(t, peer)
		f.logs.expectLogged(t, "OnOpen", "boom in a dialed OnOpen")
		select {
		case r := <-dones:
			t.Fatalf("done called twice, second time with (%v, %v)", r.c, r.err)
		case <-time.After(50 * time.Millisecond):
		}
		closes.once(t)
		f.healthy("a panic in a dialed OnOpen")
	})

	t.Run("DoneAfterSuccess", func(t *testing.T) {
		h := &hfuncs{close: closes.onClose}
		f.tr.Dial(f.by, backend.Addr().String(), 0, h, func(c reactor.Conn, err error) {
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			panic("boom in done")
		})
		peer := accept()
		closes.panicClose(t, "Dial's done", "boom in done")
		expectEnd(t, peer)
		f.logs.expectLogged(t, "Dial's done", "boom in done")
		f.healthy("a panic in a successful dial's done")
	})

	t.Run("DoneAfterFailure", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closedPort := l.Addr().String()
		l.Close()
		for i, near := range []reactor.Conn{f.by, nil} { // near's loop, then the runner
			value := fmt.Sprintf("boom in failed done %d", i)
			called := make(chan struct{}, 1)
			f.tr.Dial(near, closedPort, 0, &hfuncs{}, func(c reactor.Conn, err error) {
				called <- struct{}{}
				panic(value)
			})
			recvT(t, called, "done of a dial to a closed port")
			deadline := time.Now().Add(10 * time.Second)
			for {
				recs := f.logs.panics("Dial's done")
				found := 0
				for _, r := range recs {
					if r.attrs["panic"] == value {
						found++
					}
				}
				if found == 1 {
					break
				}
				if found > 1 || time.Now().After(deadline) {
					t.Fatalf("%d log records of the panic %q, want 1", found, value)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		f.healthy("panics in failed dials' done")
	})
}

// TestPanicInOnWritable: OnWritable runs from the drain poll, which walks every watched
// connection; a panic closes that connection only.
func TestPanicInOnWritable(t *testing.T) {
	closes := newCloseRec()
	wrote := make(chan struct{}, 1)
	v := &hfuncs{
		data: func(c reactor.Conn, in reactor.View) {
			in.Skip(in.Len())
			for !c.Congested() {
				if err := c.Write(make([]byte, 64<<10)); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
			wrote <- struct{}{}
		},
		writable: func(reactor.Conn) { panic("boom in OnWritable") },
		close:    closes.onClose,
	}
	f := newPanicFix(t, reactor.Options{HighWatermark: 256 << 10, LowWatermark: 64 << 10}, v)
	victim := dial(t, f.addr)
	_ = victim.SetReadBuffer(32 << 10)
	if _, err := victim.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	recvT(t, wrote, "the victim to become congested")
	f.roundTrip("while the victim is congested")
	go func() { _, _ = io.Copy(io.Discard, victim) }() // drain: OnWritable follows
	closes.panicClose(t, "OnWritable", "boom in OnWritable")
	f.logs.expectLogged(t, "OnWritable", "boom in OnWritable")
	closes.once(t)
	f.healthy("a panic in OnWritable")
}

// TestPanicInOnPeerClose: the peer's FIN reaches OnPeerClose inside gnet's OnClose; a panic
// there closes the connection.
func TestPanicInOnPeerClose(t *testing.T) {
	closes := newCloseRec()
	v := &hfuncs{peerClose: func(reactor.Conn) bool { panic("boom in OnPeerClose") }, close: closes.onClose}
	f := newPanicFix(t, reactor.Options{}, v)
	victim := dial(t, f.addr)
	if _, err := victim.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := victim.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	closes.panicClose(t, "OnPeerClose", "boom in OnPeerClose")
	expectEnd(t, victim)
	f.logs.expectLogged(t, "OnPeerClose", "boom in OnPeerClose")
	closes.once(t)
	f.healthy("a panic in OnPeerClose")
}

// TestPanicInOnClose: two connections closed in one dispatch get their OnClose from the same
// run of deferred operations; the first one's OnClose panics, the second still runs.
func TestPanicInOnClose(t *testing.T) {
	errBoth := errors.New("closed together")
	var mu sync.Mutex
	var first uint64
	got := make(chan closeEv, 4)
	conns := make(chan reactor.Conn, 2)
	v := &hfuncs{
		open: func(c reactor.Conn) { conns <- c },
		close: func(c reactor.Conn, err error) {
			got <- closeEv{c, err}
			mu.Lock()
			defer mu.Unlock()
			if c.ID() == first {
				panic("boom in OnClose")
			}
		},
	}
	f := newPanicFix(t, reactor.Options{}, v)
	ca, cb := dial(t, f.addr), dial(t, f.addr)
	a := recvT(t, conns, "OnOpen a").(*conn)
	b := recvT(t, conns, "OnOpen b").(*conn)
	mu.Lock()
	first = a.ID()
	mu.Unlock()
	onLoop(t, f.by, func() {
		a.beginClose(errBoth, closeHard)
		b.beginClose(errBoth, closeHard)
	})
	for range 2 {
		if ev := recvT(t, got, "OnClose"); !errors.Is(ev.err, errBoth) {
			t.Fatalf("conn %d OnClose reason %v, want %v", ev.c.ID(), ev.err, errBoth)
		}
	}
	expectEnd(t, ca)
	expectEnd(t, cb)
	f.logs.expectLogged(t, "OnClose", "boom in OnClose")
	select {
	case ev := <-got:
		t.Fatalf("an extra OnClose for conn %d", ev.c.ID())
	case <-time.After(50 * time.Millisecond):
	}
	f.healthy("a panic in OnClose")
}

// TestPanicHalfClosed: panics on connections whose peer sent FIN: the owed OnData delivered
// after a resume (the bytes kept when the FIN came while paused), an Exec function and
// OnWritable on a half-closed write side served by its writer goroutine.
func TestPanicHalfClosed(t *testing.T) {
	t.Run("PendingOnData", func(t *testing.T) {
		closes := newCloseRec()
		conns := make(chan reactor.Conn, 1)
		v := &hfuncs{
			open: func(c reactor.Conn) {
				c.PauseRead(true)
				conns <- c
			},
			data:  func(reactor.Conn, reactor.View) { panic("boom in a pending OnData") },
			close: closes.onClose,
		}
		f := newPanicFix(t, reactor.Options{}, v)
		victim := dial(t, f.addr)
		c := recvT(t, conns, "OnOpen")
		if _, err := victim.Write([]byte("kept while paused")); err != nil {
			t.Fatal(err)
		}
		if err := victim.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the FIN is seen while paused
		onLoop(t, c, func() { c.PauseRead(false) })
		closes.panicClose(t, "OnData", "boom in a pending OnData")
		expectEnd(t, victim)
		f.logs.expectLogged(t, "OnData", "boom in a pending OnData")
		closes.once(t)
		f.healthy("a panic in a pending OnData")
	})

	t.Run("Exec", func(t *testing.T) {
		closes := newCloseRec()
		kept := make(chan reactor.Conn, 1)
		v := &hfuncs{
			peerClose: func(c reactor.Conn) bool { kept <- c; return true },
			close:     closes.onClose,
		}
		f := newPanicFix(t, reactor.Options{}, v)
		victim := dial(t, f.addr)
		if err := victim.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c := recvT(t, kept, "OnPeerClose").(*conn)
		var detached bool
		onLoop(t, c, func() {
			detached = c.flags&fDetached != 0
			_ = c.Write([]byte("half-closed write side"))
		})
		if !detached {
			t.Fatal("the write side did not move off gnet")
		}
		got := make([]byte, len("half-closed write side"))
		if _, err := io.ReadFull(victim, got); err != nil {
			t.Fatal(err)
		}
		c.Exec(func() { panic("boom in a half-closed Exec") })
		closes.panicClose(t, "an Exec function", "boom in a half-closed Exec")
		expectEnd(t, victim)
		f.logs.expectLogged(t, "an Exec function", "boom in a half-closed Exec")
		closes.once(t)
		f.tr.mu.Lock()
		left := len(f.tr.detached)
		f.tr.mu.Unlock()
		if left != 0 {
			t.Fatalf("%d half-closed connections still registered after the panic", left)
		}
		f.healthy("a panic in a half-closed conn's Exec")
	})

	t.Run("OnWritable", func(t *testing.T) {
		closes := newCloseRec()
		congested := make(chan struct{}, 1)
		v := &hfuncs{
			peerClose: func(c reactor.Conn) bool {
				c.Exec(func() { // after gnet closed its side: the writes go to the writer goroutine
					for !c.Congested() {
						if err := c.Write(make([]byte, 64<<10)); err != nil {
							t.Errorf("write: %v", err)
							return
						}
					}
					congested <- struct{}{}
				})
				return true
			},
			writable: func(reactor.Conn) { panic("boom in a half-closed OnWritable") },
			close:    closes.onClose,
		}
		f := newPanicFix(t, reactor.Options{HighWatermark: 256 << 10, LowWatermark: 64 << 10}, v)
		victim := dial(t, f.addr)
		_ = victim.SetReadBuffer(32 << 10)
		if err := victim.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		recvT(t, congested, "the half-closed write side to become congested")
		go func() { _, _ = io.Copy(io.Discard, victim) }()
		closes.panicClose(t, "OnWritable", "boom in a half-closed OnWritable")
		f.logs.expectLogged(t, "OnWritable", "boom in a half-closed OnWritable")
		closes.once(t)
		f.healthy("a panic in a half-closed OnWritable")
	})
}

// panicky is a Releaser that panics.
type panicky struct{ released *atomic.Int32 }

func (p panicky) Release() error {
	p.released.Add(1)
	panic("boom in Release")
}

// TestPanicInReleaser: a Buffer's Releaser runs on the loop after the write; its panic is
// logged and the bytes still arrive.
func TestPanicInReleaser(t *testing.T) {
	conns := make(chan reactor.Conn, 1)
	f := newPanicFix(t, reactor.Options{}, &hfuncs{open: func(c reactor.Conn) { conns <- c }})
	victim := dial(t, f.addr)
	c := recvT(t, conns, "OnOpen")
	var released atomic.Int32
	b := reactor.NewBuffer()
	b.AppendOwned([]byte("sent anyway"), panicky{&released})
	if err := c.Send(b); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("sent anyway"))
	if _, err := io.ReadFull(victim, got); err != nil || string(got) != "sent anyway" {
		t.Fatalf("client got %q, %v", got, err)
	}
	f.logs.expectLogged(t, "a Buffer's Releaser", "boom in Release")
	if n := released.Load(); n != 1 {
		t.Fatalf("Release called %d times", n)
	}
	f.healthy("a panic in a Releaser")
}
