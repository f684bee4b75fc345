package reactortest

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// BenchTimers measures a backend's Conn.Schedule and Conn.Unschedule from a callback, the way
// the stream manager arms a per-request timer. A backend's bench file calls it as
//
//	func BenchmarkTimers(b *testing.B) { reactortest.BenchTimers(b, New) }
//
// Sub-benchmarks:
//   - ScheduleUnschedule: arm and stop one timer (embedded in the caller's memory) inside an
//     Exec function; per op = one Schedule plus one Unschedule.
//   - AfterFuncStop: for comparison, what the stream manager did before: time.AfterFunc and
//     Timer.Stop (without the Exec hop the firing would need).
//   - Fire1000: arm 1,000 timers one tick (1 ms) ahead from an Exec function and wait until all
//     ran on the executor; per op = one batch, so ns/op is mostly the wait for the tick, and
//     allocs/op (divide by 1,000 for per timer) covers the executor's whole timer path: ticks,
//     hand-over to the executor, running the functions, plus the benchmark's own Exec.
func BenchTimers(b *testing.B, newTransport reactor.Factory) {
	tr, err := newTransport(reactor.Options{Loops: 1, TimerTick: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	conns := make(chan reactor.Conn, 1)
	ln, err := tr.Listen("127.0.0.1:0", &funcs{open: func(c reactor.Conn) { conns <- c }})
	if err != nil {
		b.Fatal(err)
	}
	cl, err := net.DialTimeout("tcp", ln.Addr().String(), stepTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var c reactor.Conn
	select {
	case c = <-conns:
	case <-time.After(stepTimeout):
		b.Fatal("no OnOpen")
	}
	onExec := func(fn func()) {
		done := make(chan struct{})
		if !c.Exec(func() {
			defer close(done)
			fn()
		}) {
			b.Fatal("Exec refused")
		}
		<-done
	}

	b.Run("ScheduleUnschedule", func(b *testing.B) {
		var tm reactor.Timer
		fn := func() {}
		b.ReportAllocs()
		b.ResetTimer()
		onExec(func() {
			for i := range b.N {
				c.Schedule(&tm, time.Second+time.Duration(i&1023)*time.Millisecond, fn)
				c.Unschedule(&tm)
			}
		})
	})

	b.Run("AfterFuncStop", func(b *testing.B) {
		fn := func() {}
		b.ReportAllocs()
		b.ResetTimer()
		onExec(func() {
			for i := range b.N {
				time.AfterFunc(time.Second+time.Duration(i&1023)*time.Millisecond, fn).Stop()
			}
		})
	})

	b.Run("Fire1000", func(b *testing.B) {
		const n = 1000
		timers := make([]reactor.Timer, n)
		var fired atomic.Int64
		fn := func() { fired.Add(1) }
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			onExec(func() {
				for k := range timers {
					c.Schedule(&timers[k], time.Millisecond, fn)
				}
			})
			for want := int64(i+1) * n; fired.Load() < want; {
				time.Sleep(100 * time.Microsecond)
			}
		}
	})
}
