package reactortest

import (
	"errors"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

const tick = 10 * time.Millisecond

// early is how much sooner than its duration a timeout may fire. Activity is recorded in
// wheel ticks and the wheel is advanced by a ticker that a loaded machine delays, so a
// timeout can legitimately fire a few ticks early; half the duration still proves that the
// duration (and postponing activity) was honoured.
func early(d time.Duration) time.Duration { return d / 2 }

// 10. Idle and read timeouts, on a wheel with a 10 ms tick.
func (s *suite) testTimeouts(t *testing.T) {
	o := reactor.Options{TimerTick: tick}

	// timed serves h with setup run in OnOpen and reports when each conn opened and closed.
	timed := func(e *env, h *funcs, setup func(c reactor.Conn)) (string, chan time.Time, chan closeEvent) {
		opened := make(chan time.Time, 1)
		closed := make(chan closeEvent, 1)
		h.open = func(c reactor.Conn) {
			opened <- time.Now()
			setup(c)
		}
		h.close = func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err, at: time.Now()} }
		addr, _ := e.listen(h)
		return addr, opened, closed
	}

	t.Run("Idle", func(t *testing.T) {
		e := s.start(t, o)
		const d = 150 * time.Millisecond
		addr, opened, closed := timed(e, echo(), func(c reactor.Conn) { c.SetIdleTimeout(d) })
		c := e.dial(addr)
		at := recv(e, opened, stepTimeout, "OnOpen")
		ev := recv(e, closed, d+closeTimeout, "the idle timeout")
		if !errors.Is(ev.err, reactor.ErrIdleTimeout) {
			e.fatalf("OnClose reason %s, want ErrIdleTimeout", describe(ev.err))
		}
		if took := ev.at.Sub(at); took < d-early(d) {
			e.fatalf("idle timeout of %v fired after %v", d, took)
		}
		e.expectEnd(c, "after the idle timeout")
	})

	t.Run("IdlePostponed", func(t *testing.T) {
		e := s.start(t, o)
		const d = 500 * time.Millisecond
		addr, _, closed := timed(e, echo(), func(c reactor.Conn) { c.SetIdleTimeout(d) })
		c := e.dial(addr)
		start := time.Now()
		var last time.Time
		for i := 0; time.Since(start) < 1200*time.Millisecond; i++ {
			e.roundTrip(c, []byte("keepalive"), "a round trip every 50 ms under an idle timeout of 500 ms")
			last = time.Now()
			select {
			case ev := <-closed:
				e.fatalf("closed with %s after %v although a round trip ran every 50 ms",
					describe(ev.err), ev.at.Sub(start))
			default:
			}
			time.Sleep(50 * time.Millisecond)
		}
		ev := recv(e, closed, d+closeTimeout, "the idle timeout after activity stopped")
		if !errors.Is(ev.err, reactor.ErrIdleTimeout) {
			e.fatalf("OnClose reason %s, want ErrIdleTimeout", describe(ev.err))
		}
		if took := ev.at.Sub(last); took < d-early(d) {
			e.fatalf("idle timeout of %v fired %v after the last activity", d, took)
		}
	})

	// Writes do not postpone a read timeout.
	t.Run("Read", func(t *testing.T) {
		e := s.start(t, o)
		const d = 200 * time.Millisecond
		stop := make(chan struct{})
		defer close(stop)
		addr, opened, closed := timed(e, echo(), func(c reactor.Conn) {
			c.SetReadTimeout(d)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if !c.Exec(func() { _ = c.Write([]byte{'w'}) }) {
						return
					}
				}
			}()
		})
		c := e.dial(addr)
		at := recv(e, opened, stepTimeout, "OnOpen")
		ev := recv(e, closed, d+closeTimeout, "the read timeout")
		if !errors.Is(ev.err, reactor.ErrReadTimeout) {
			e.fatalf("OnClose reason %s, want ErrReadTimeout", describe(ev.err))
		}
		if took := ev.at.Sub(at); took < d-early(d) {
			e.fatalf("read timeout of %v fired after %v", d, took)
		}
		got := e.expectEnd(c, "after the read timeout")
		if len(got) < 3 {
			e.fatalf("the server wrote %d bytes during the read timeout, want several", len(got))
		}
	})

	t.Run("Disabled", func(t *testing.T) {
		e := s.start(t, o)
		addr, _, closed := timed(e, echo(), func(c reactor.Conn) {
			c.SetIdleTimeout(50 * time.Millisecond)
			c.SetReadTimeout(50 * time.Millisecond)
			c.SetIdleTimeout(0)
			c.SetReadTimeout(0)
		})
		c := e.dial(addr)
		time.Sleep(400 * time.Millisecond)
		select {
		case ev := <-closed:
			e.fatalf("timeouts set to 0 still closed the conn: %s", describe(ev.err))
		default:
		}
		e.roundTrip(c, []byte("still here"), "round trip after timeouts were disabled")
		_ = c.Close()
		ev := recv(e, closed, closeTimeout, "OnClose after the client closed")
		if errIs(ev.err, reactor.ErrIdleTimeout, reactor.ErrReadTimeout) {
			e.fatalf("OnClose reason %s", describe(ev.err))
		}
	})
}
