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
