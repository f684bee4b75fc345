package reactortest

import (
	"context"
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

// panicSite is where the victim's handler code panics.
type panicSite string

const (
	panicInData panicSite = "OnData"
	panicInExec panicSite = "Exec"
	panicInOpen panicSite = "OnOpen"
)

// panicRounds is how many connections panic, one after another, on the same executor: a
// backend whose bookkeeping survives the first panic but not the second fails here.
const panicRounds = 2

// 15. A panic in handler code (OnData, an Exec function, OnOpen) must not crash the process:
// the connection it belongs to is closed (its peer sees EOF or a reset; OnClose runs once with
// a non-nil reason that names the panic value), and another connection on the same executor
// keeps round-tripping while it happens and afterwards, as does a connection opened later.
func (s *suite) testHandlerPanic(t *testing.T) {
	for _, site := range []panicSite{panicInData, panicInExec, panicInOpen} {
		t.Run(string(site), func(t *testing.T) { s.panicCase(t, site) })
	}
}

func (s *suite) panicCase(t *testing.T, site panicSite) {
	logs := newLogCapture()
	e := s.start(t, reactor.Options{Loops: 1, Logger: slog.New(logs)})
	value := fmt.Sprintf("reactortest: deliberate panic in %s", site)

	opened := make(chan reactor.Conn, 2*panicRounds+4)
	closed := make(chan closeEvent, 2*panicRounds+4)
	var closesMu sync.Mutex
	closes := map[uint64]int{}
	var panicOpen atomic.Bool
	h := echo()
	echoData := h.data
	h.open = func(c reactor.Conn) {
		opened <- c
		if panicOpen.CompareAndSwap(true, false) {
			panic(value)
		}
	}
	h.data = func(c reactor.Conn, in reactor.View) {
		if p := in.Peek(1); len(p) == 1 && p[0] == '!' { // the victim's trigger; echoes never start with '!'
			panic(value)
		}
		echoData(c, in)
	}
	h.close = func(c reactor.Conn, err error) {
		closesMu.Lock()
		closes[c.ID()]++
		closesMu.Unlock()
		closed <- closeEvent{c: c, err: err, at: time.Now()}
	}
	addr, _ := e.listen(h)

	goodClient := e.dial(addr)
	e.roundTrip(goodClient, []byte("good conn, before"), "round trip on the bystander conn")
	good := recv(e, opened, stepTimeout, "OnOpen of the bystander conn")
	sameExecutor := func(c reactor.Conn, what string) {
		e.t.Helper()
		if c.ExecutorID() != good.ExecutorID() {
			e.fatalf("with Loops 1, %s has ExecutorID %d and the bystander %d", what, c.ExecutorID(), good.ExecutorID())
		}
	}

	busy := keepBusy(goodClient)
	defer func() { // on a failure: unblock a round trip stuck on a broken backend
		_ = goodClient.SetDeadline(time.Now())
		_, _ = busy.stop()
	}()
	e.eventually(stepTimeout, "the bystander's first round trips", func() bool { return busy.count() >= 3 })

	for round := range panicRounds {
		var victimClient *net.TCPConn
		var victim reactor.Conn
		ranAfter := make(chan struct{}, 1)
		switch site {
		case panicInData, panicInExec:
			victimClient = e.dial(addr)
			e.roundTrip(victimClient, []byte("victim, still fine"), "round trip on the victim before its panic")
			victim = recv(e, opened, stepTimeout, "OnOpen of the victim")
			sameExecutor(victim, "the victim")
			if site == panicInData {
				if _, err := victimClient.Write([]byte("!")); err != nil {
					e.fatalf("victim client write: %v", err)
				}
				break
			}
			// The panicking function and one for the bystander are queued back to back: the
			// executor must go on with the queue after the panic.
			if !victim.Exec(func() { panic(value) }) {
				e.fatalf("Exec refused on the open victim conn")
			}
			if !good.Exec(func() { ranAfter <- struct{}{} }) {
				e.fatalf("Exec refused on the open bystander conn")
			}
		case panicInOpen:
			panicOpen.Store(true)
			victimClient = e.dial(addr)
			victim = recv(e, opened, stepTimeout, "OnOpen of the victim")
			sameExecutor(victim, "the victim")
		}

		ev := recv(e, closed, closeTimeout, fmt.Sprintf("OnClose of the conn whose %s panicked (round %d)", site, round+1))
		if ev.c.ID() != victim.ID() {
			e.fatalf("after a panic in %s of conn %d, conn %d was closed instead (reason %s)",
				site, victim.ID(), ev.c.ID(), describe(ev.err))
		}
		if ev.err == nil {
			e.fatalf("OnClose of the conn whose %s panicked got a nil reason", site)
		}
		if !strings.Contains(ev.err.Error(), value) {
			e.fatalf("OnClose reason %s after a panic in %s does not name the panic value %q",
				describe(ev.err), site, value)
		}
		if rest := e.expectEnd(victimClient, fmt.Sprintf("the victim client after the panic in %s", site)); len(rest) != 0 {
			e.fatalf("the victim client received %q after the panic in %s", clip(rest), site)
		}
		if site == panicInExec {
			recv(e, ranAfter, stepTimeout, "the bystander's Exec function queued right after the panicking one")
		}
		if victim.Exec(func() {}) {
			e.fatalf("Exec returned true on the victim after its OnClose")
		}
		// The bystander kept round-tripping while the victim panicked and keeps doing so.
		n := busy.count()
		e.eventually(stepTimeout, "the bystander's round trips after the panic", func() bool {
			return busy.count() >= n+3 || busy.failed()
		})
		if err := busy.err(); err != nil {
			e.fatalf("the bystander's round trips failed around the panic in %s: %v", site, err)
		}
	}
	if n, err := busy.stop(); err != nil {
		e.fatalf("the bystander's round trips failed around the panics in %s: %v", site, err)
	} else {
		t.Logf("[%s] the bystander made %d round trips during the test", e.name, n)
	}
	e.roundTrip(goodClient, []byte("good conn, after"), "round trip on the bystander after the panics")

	fresh := e.dial(addr)
	e.roundTrip(fresh, []byte("a conn opened after the panics"), "round trip on a conn opened after the panics")
	sameExecutor(recv(e, opened, stepTimeout, "OnOpen of the conn opened after the panics"), "a conn opened after the panics")

	time.Sleep(50 * time.Millisecond) // a second OnClose would come now
	closesMu.Lock()
	for id, n := range closes {
		if n != 1 {
			e.t.Errorf("[%s] conn %d got OnClose %d times", e.name, id, n)
		}
	}
	if len(closes) != panicRounds {
		e.t.Errorf("[%s] %d conns got OnClose, want the %d victims only", e.name, len(closes), panicRounds)
	}
	closesMu.Unlock()
	t.Logf("[%s] %d log record(s) mention the panic value (Options.Logger)", e.name, logs.mentions(value))
}

// busyClient round-trips on a client connection from its own goroutine until stopped.
type busyClient struct {
	n      atomic.Int64
	bad    atomic.Bool
	mu     sync.Mutex
	first  error
	quit   chan struct{}
	exited chan struct{}
	once   sync.Once
}

// keepBusy starts round trips of short messages on c.
func keepBusy(c net.Conn) *busyClient {
	b := &busyClient{quit: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(b.exited)
		got := make([]byte, 64)
		for i := 0; ; i++ {
			select {
			case <-b.quit:
				return
			default:
			}
			msg := []byte(fmt.Sprintf("busy %d", i))
			_ = c.SetDeadline(time.Now().Add(stepTimeout))
			if _, err := c.Write(msg); err != nil {
				b.fail(fmt.Errorf("round trip %d: write: %w", i, err))
				return
			}
			if _, err := io.ReadFull(c, got[:len(msg)]); err != nil {
				b.fail(fmt.Errorf("round trip %d: read: %w", i, err))
				return
			}
			if string(got[:len(msg)]) != string(msg) {
				b.fail(fmt.Errorf("round trip %d: sent %q, got %q back", i, msg, got[:len(msg)]))
				return
			}
			b.n.Add(1)
		}
	}()
	return b
}

func (b *busyClient) fail(err error) {
	b.mu.Lock()
	b.first = err
	b.mu.Unlock()
	b.bad.Store(true)
}

func (b *busyClient) count() int64 { return b.n.Load() }
func (b *busyClient) failed() bool { return b.bad.Load() }

func (b *busyClient) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first
}

// stop ends the round trips (the one in progress completes, bounded by its deadline) and
// returns how many succeeded and the first error.
func (b *busyClient) stop() (int64, error) {
	b.once.Do(func() { close(b.quit) })
	<-b.exited
	return b.count(), b.err()
}

// logCapture is a slog.Handler that keeps every record's text, so a backend's logging of a
// recovered panic stays out of the test output and can be inspected.
type logCapture struct {
	store *logStore
	attrs []slog.Attr
}

type logStore struct {
	mu    sync.Mutex
	lines []string
}

func newLogCapture() *logCapture { return &logCapture{store: &logStore{}} }

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	h.store.mu.Lock()
	h.store.lines = append(h.store.lines, sb.String())
	h.store.mu.Unlock()
	return nil
}

func (h *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCapture{store: h.store, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *logCapture) WithGroup(string) slog.Handler { return h }

// mentions counts the records whose text contains s.
func (h *logCapture) mentions(s string) int {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	n := 0
	for _, l := range h.store.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}
