package reactor

import (
	"errors"
	"testing"
	"time"
)

func TestWheelFiresInOrderOfDeadline(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	start := w.start
	var fired []int
	timers := make([]Timer, 3)
	w.Schedule(&timers[0], 30*time.Millisecond, func() { fired = append(fired, 0) })
	w.Schedule(&timers[1], 10*time.Millisecond, func() { fired = append(fired, 1) })
	w.Schedule(&timers[2], 2*time.Second, func() { fired = append(fired, 2) }) // wraps the wheel
	w.Advance(start.Add(15 * time.Millisecond))
	if len(fired) != 1 || fired[0] != 1 {
		t.Fatalf("after 15ms fired %v, want [1]", fired)
	}
	if !w.Stop(&timers[0]) || w.Stop(&timers[0]) {
		t.Fatal("Stop must report armed once")
	}
	w.Advance(start.Add(700 * time.Millisecond)) // a full wheel turn: timer 2 must not fire early
	if len(fired) != 1 {
		t.Fatalf("stopped or future timers fired: %v", fired)
	}
	w.Advance(start.Add(2010 * time.Millisecond))
	if len(fired) != 2 || fired[1] != 2 || w.Len() != 0 {
		t.Fatalf("fired %v len %d", fired, w.Len())
	}
}

func TestWheelCallbackStopsNeighbour(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	var a, b Timer
	ran := 0
	w.Schedule(&a, 10*time.Millisecond, func() { ran++; w.Stop(&b) })
	w.Schedule(&b, 10*time.Millisecond, func() { ran++ })
	w.Advance(w.start.Add(20 * time.Millisecond))
	if ran != 1 || w.Len() != 0 {
		t.Fatalf("ran %d len %d", ran, w.Len())
	}
}

// fakeClock makes w's clock follow the times given to advance.
// It steps one tick at a time, as a timely ticker would.
func fakeClock(w *Wheel) func(time.Time) {
	now := w.start
	w.clock = func() time.Time { return now }
	return func(t time.Time) {
		for now.Before(t) {
			now = now.Add(w.tick)
			if now.After(t) {
				now = t
			}
			w.Advance(now)
		}
	}
}

func TestTimeoutsIdleExtendsOnActivity(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	advance := fakeClock(w)
	var got error
	var to Timeouts
	to.Init(w, func(err error) { got = err })
	to.SetIdle(50 * time.Millisecond)
	advance(w.start.Add(40 * time.Millisecond))
	to.Wrote() // activity at t=40ms pushes the deadline to ~90ms
	advance(w.start.Add(70 * time.Millisecond))
	if got != nil {
		t.Fatalf("expired early: %v", got)
	}
	advance(w.start.Add(100 * time.Millisecond))
	if !errors.Is(got, ErrIdleTimeout) {
		t.Fatalf("got %v, want idle timeout", got)
	}
}

func TestTimeoutsReadIgnoresWrites(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	advance := fakeClock(w)
	var got error
	var to Timeouts
	to.Init(w, func(err error) { got = err })
	to.SetRead(30 * time.Millisecond)
	to.SetIdle(time.Second)
	for ms := 10; ms <= 50; ms += 10 {
		to.Wrote()
		advance(w.start.Add(time.Duration(ms) * time.Millisecond))
	}
	if !errors.Is(got, ErrReadTimeout) {
		t.Fatalf("got %v, want read timeout", got)
	}
}

func TestBufferConsumeAndRelease(t *testing.T) {
	b := NewBuffer()
	b.AppendCopy([]byte("hello "))
	b.AppendOwned([]byte("world"), nil)
	if b.Len() != 11 {
		t.Fatalf("len %d", b.Len())
	}
	b.Consume(8)
	out := make([]byte, b.Len())
	b.CopyTo(out)
	if string(out) != "rld" {
		t.Fatalf("after consume: %q", out)
	}
	b.Release()
}

// TestTimeoutsNeverFireEarlyWhenTheWheelLags: activity stamped while the wheel's ticker is
// late must count from the real time, not from the wheel's stale position.
func TestTimeoutsNeverFireEarlyWhenTheWheelLags(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	now := w.start
	w.clock = func() time.Time { return now }
	var got error
	var to Timeouts
	to.Init(w, func(err error) { got = err })
	to.SetIdle(50 * time.Millisecond)
	now = w.start.Add(45 * time.Millisecond) // the wheel has not advanced: its ticker is late
	to.Read()
	w.Advance(now.Add(20 * time.Millisecond)) // 65ms: only 20ms after the read
	if got != nil {
		t.Fatalf("idle timeout fired 20ms after activity: %v", got)
	}
	now = w.start.Add(120 * time.Millisecond) // the clock moved on: 75ms after the read
	w.Advance(now)
	if !errors.Is(got, ErrIdleTimeout) {
		t.Fatalf("got %v", got)
	}
}

// TestTimeoutsCostNoClockReadPerEvent: Read and Wrote are plain stores; the clock is read
// only when the check timer fires.
func TestTimeoutsCostNoClockReadPerEvent(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	reads := 0
	w.clock = func() time.Time { reads++; return w.start }
	var to Timeouts
	to.Init(w, func(error) {})
	to.SetIdle(time.Second)
	before := reads
	for i := 0; i < 1000; i++ {
		to.Read()
		to.Wrote()
	}
	if reads != before {
		t.Fatalf("%d clock reads for 2,000 I/O events", reads-before)
	}
}

// afterClock gives w a fake clock at start+offset and returns a setter.
func afterClock(w *Wheel, offset time.Duration) (now func() time.Time, set func(time.Duration)) {
	cur := w.start.Add(offset)
	w.clock = func() time.Time { return cur }
	return func() time.Time { return cur }, func(d time.Duration) { cur = w.start.Add(d) }
}

// TestWheelAfterNeverEarly: whatever the phase of the clock within a tick, an After timer
// comes due no sooner than max(d, tick) after it was armed and, with Advance called often,
// less than one tick after that.
func TestWheelAfterNeverEarly(t *testing.T) {
	const tick = 10 * time.Millisecond
	for _, phase := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 9*time.Millisecond + 999*time.Microsecond} {
		for _, d := range []time.Duration{-time.Second, 0, time.Millisecond, tick, 15 * time.Millisecond, 95 * time.Millisecond, 10 * time.Second} {
			w := NewWheel(tick, 64)
			base := 37*tick + phase
			_, set := afterClock(w, base)
			w.Advance(w.start.Add(base))
			var tm Timer
			fired := 0
			w.After(&tm, d, func() { fired++ })
			want := max(d, tick)
			var at time.Duration
			for step := time.Duration(0); step <= want+3*tick; step += 100 * time.Microsecond {
				set(base + step)
				w.Advance(w.start.Add(base + step))
				if fn, ok := w.PopDue(); ok {
					fn()
					at = step
					break
				}
			}
			if fired != 1 {
				t.Fatalf("phase %v d %v: fired %d times", phase, d, fired)
			}
			if at < want || at >= want+tick {
				t.Fatalf("phase %v d %v: came due %v after arming, want in [%v, %v)", phase, d, at, want, want+tick)
			}
			if w.Len() != 0 || tm.Armed() {
				t.Fatalf("phase %v d %v: still armed after PopDue", phase, d)
			}
		}
	}
}

// TestWheelAfterDeadlineOrder: timers handed out by PopDue come in deadline order, also
// within one tick and across wheel turns; equal deadlines keep the order they were armed in.
func TestWheelAfterDeadlineOrder(t *testing.T) {
	const tick = 10 * time.Millisecond
	w := NewWheel(tick, 64)
	_, set := afterClock(w, 3*time.Millisecond)
	ds := []time.Duration{45, 41, 49, 41, 12, 700, 11, 43, 640, 19, 12, 47}
	timers := make([]Timer, len(ds))
	var got []int
	for i, d := range ds {
		w.After(&timers[i], d*time.Millisecond, func() { got = append(got, i) })
	}
	for ms := time.Duration(3); ms <= 760; ms++ {
		set(ms * time.Millisecond)
		w.Advance(w.start.Add(ms * time.Millisecond))
		if ms == 300 { // let some pile up before taking them
			continue
		}
		for fn, ok := w.PopDue(); ok; fn, ok = w.PopDue() {
			fn()
		}
	}
	want := []int{6, 4, 10, 9, 1, 3, 7, 0, 11, 2, 8, 5}
	if len(got) != len(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired %v, want %v", got, want)
		}
	}
}

// TestWheelAfterStopWhileDue: a timer that came due but was not taken yet is still armed:
// Stop disarms it and PopDue no longer hands it out. Re-arming a due timer moves it.
func TestWheelAfterStopWhileDue(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	_, set := afterClock(w, 0)
	var a, b, c Timer
	ran := map[string]int{}
	w.After(&a, 20*time.Millisecond, func() { ran["a"]++ })
	w.After(&b, 20*time.Millisecond, func() { ran["b"]++ })
	w.After(&c, 20*time.Millisecond, func() { ran["c"]++ })
	set(30 * time.Millisecond)
	w.Advance(w.start.Add(30 * time.Millisecond))
	if !w.Due() || w.Len() != 3 {
		t.Fatalf("due %v len %d", w.Due(), w.Len())
	}
	if !w.Stop(&a) || w.Stop(&a) {
		t.Fatal("Stop of a due timer must report armed once")
	}
	w.After(&b, 50*time.Millisecond, func() { ran["b"]++ }) // moved: not due any more
	for fn, ok := w.PopDue(); ok; fn, ok = w.PopDue() {
		fn()
	}
	if ran["a"] != 0 || ran["b"] != 0 || ran["c"] != 1 || w.Len() != 1 {
		t.Fatalf("ran %v len %d", ran, w.Len())
	}
	set(90 * time.Millisecond)
	w.Advance(w.start.Add(90 * time.Millisecond))
	for fn, ok := w.PopDue(); ok; fn, ok = w.PopDue() {
		fn()
	}
	if ran["b"] != 1 || w.Len() != 0 {
		t.Fatalf("ran %v len %d", ran, w.Len())
	}
}

// TestWheelIdleCostsNothing: a wheel with nothing armed jumps to the clock instead of
// visiting the ticks it missed, and a timer armed after a long idle period is not early.
func TestWheelIdleCostsNothing(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	_, set := afterClock(w, 0)
	set(time.Hour)
	var tm Timer
	fired := false
	w.After(&tm, 10*time.Millisecond, func() { fired = true })
	if w.now != int64(time.Hour/(10*time.Millisecond)) {
		t.Fatalf("After on an idle wheel left its position at tick %d", w.now)
	}
	w.Advance(w.start.Add(time.Hour + 5*time.Millisecond))
	if w.Due() {
		t.Fatal("due 5ms after arming a 10ms timer")
	}
	w.Advance(w.start.Add(time.Hour + 10*time.Millisecond))
	if fn, ok := w.PopDue(); !ok {
		t.Fatal("not due after 10ms")
	} else {
		fn()
	}
	if !fired {
		t.Fatal("not fired")
	}
	w.Advance(w.start.Add(48 * time.Hour))
	if w.now != int64(48*time.Hour/(10*time.Millisecond)) {
		t.Fatalf("Advance of an empty wheel stopped at tick %d", w.now)
	}
	// Schedule (the timeouts' kind) on an idle wheel counts from the clock too.
	set(72 * time.Hour)
	ran := 0
	w.Schedule(&tm, 20*time.Millisecond, func() { ran++ })
	w.Advance(w.start.Add(72*time.Hour + 10*time.Millisecond))
	if ran != 0 {
		t.Fatal("a 2-tick Schedule on a wheel idle for a day fired after one tick")
	}
	w.Advance(w.start.Add(72*time.Hour + 20*time.Millisecond))
	if ran != 1 {
		t.Fatalf("ran %d, want 1", ran)
	}
}

// TestWheelCallbackMovesNeighbourInSlot: a callback that re-arms a neighbour into the same
// slot (one wheel turn later) must not make the scan skip the other timers due there.
func TestWheelCallbackMovesNeighbourInSlot(t *testing.T) {
	const tick = 10 * time.Millisecond
	w := NewWheel(tick, 64)
	timers := make([]Timer, 4)
	ran := make([]int, 4)
	turn := 64 * tick
	w.Schedule(&timers[0], tick, func() {
		ran[0]++
		w.Schedule(&timers[1], turn, func() { ran[1]++ })
	})
	for i := 1; i < 4; i++ {
		w.Schedule(&timers[i], tick, func() { ran[i]++ })
	}
	w.Advance(w.start.Add(tick))
	if ran[0] != 1 || ran[1] != 0 || ran[2] != 1 || ran[3] != 1 || w.Len() != 1 {
		t.Fatalf("ran %v len %d", ran, w.Len())
	}
	w.Advance(w.start.Add(tick + turn))
	if ran[1] != 1 || w.Len() != 0 {
		t.Fatalf("moved timer: ran %v len %d", ran, w.Len())
	}
}

// TestWheelPanickingCallback: a callback that panics leaves the wheel consistent; the next
// Advance runs the rest of the tick's timers.
func TestWheelPanickingCallback(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 64)
	var a, b Timer
	ran := 0
	w.Schedule(&a, 10*time.Millisecond, func() { panic("boom") })
	w.Schedule(&b, 10*time.Millisecond, func() { ran++ })
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the callback's panic did not reach Advance's caller")
			}
		}()
		w.Advance(w.start.Add(10 * time.Millisecond))
	}()
	if ran != 0 || w.Len() != 1 || !b.Armed() {
		t.Fatalf("after the panic: ran %d len %d", ran, w.Len())
	}
	w.Advance(w.start.Add(10 * time.Millisecond))
	if ran != 1 || w.Len() != 0 {
		t.Fatalf("after the next Advance: ran %d len %d", ran, w.Len())
	}
}

func TestWheelForeignTimerPanics(t *testing.T) {
	w1, w2 := NewWheel(10*time.Millisecond, 64), NewWheel(10*time.Millisecond, 64)
	var tm Timer
	w1.After(&tm, time.Second, func() {})
	defer func() {
		if recover() == nil {
			t.Fatal("stopping a timer through another wheel did not panic")
		}
		if !w1.Stop(&tm) || w1.Len() != 0 || w2.Len() != 0 {
			t.Fatal("the owning wheel lost the timer")
		}
	}()
	w2.After(&tm, time.Second, func() {})
}

// TestWheelAfterNoAllocs: arming and stopping a Timer embedded in the caller's memory
// allocates nothing.
func TestWheelAfterNoAllocs(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 512)
	timers := make([]Timer, 1000)
	fn := func() {}
	allocs := testing.AllocsPerRun(20, func() {
		for i := range timers {
			w.After(&timers[i], time.Duration(i)*time.Millisecond, fn)
		}
		for i := range timers {
			w.Stop(&timers[i])
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per 1000 After+Stop", allocs)
	}
}

func BenchmarkWheelAfterStop(b *testing.B) {
	w := NewWheel(DefaultTimerTick, 512)
	var tm Timer
	fn := func() {}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w.After(&tm, time.Duration(i%1000)*time.Millisecond, fn)
		w.Stop(&tm)
	}
}

// BenchmarkWheelAfterFire: arm 1000 timers with spread deadlines, advance until all came
// due and run them; per op = per timer.
func BenchmarkWheelAfterFire(b *testing.B) {
	const n = 1000
	w := NewWheel(10*time.Millisecond, 512)
	now := w.start
	w.clock = func() time.Time { return now }
	timers := make([]Timer, n)
	fired := 0
	fn := func() { fired++ }
	b.ReportAllocs()
	for b.Loop() {
		for i := range timers {
			w.After(&timers[i], time.Duration((i*7919)%n)*time.Millisecond, fn)
		}
		now = now.Add(time.Second + 20*time.Millisecond)
		w.Advance(now)
		for f, ok := w.PopDue(); ok; f, ok = w.PopDue() {
			f()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/timer")
	if fired != b.N*n {
		b.Fatalf("fired %d of %d", fired, b.N*n)
	}
}
