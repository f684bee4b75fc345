package reactor

import "time"

// Wheel is a hashed timing wheel: O(1) schedule and stop, expiry checked once per tick. It is
// not safe for concurrent use: each executor owns one and advances it from its own goroutine
// (gnet: the loop, via a ticker that Executes Advance; netpoll and stdnet: under the executor's
// lock). Timeouts that depend on activity (idle, read) are best scheduled once and, when they
// fire, rescheduled for the remaining time instead of being moved on every byte.
type Wheel struct {
	tick  time.Duration
	slots []timerList
	pos   int   // slot of the current tick
	now   int64 // ticks since start
	start time.Time
	count int
	clock func() time.Time // time.Now; tests substitute a fake
}

// Timer is an entry on a Wheel. The zero Timer is ready to use; a Timer is on at most one wheel.
type Timer struct {
	fn         func()
	due        int64 // absolute tick
	prev, next *Timer
	list       *timerList
}

type timerList struct{ head Timer }

func (l *timerList) init() { l.head.next, l.head.prev = &l.head, &l.head }

// NewWheel returns a wheel with the given tick and number of slots (rounded up to 64).
func NewWheel(tick time.Duration, slots int) *Wheel {
	if tick <= 0 {
		tick = DefaultTimerTick
	}
	if slots < 64 {
		slots = 64
	}
	w := &Wheel{tick: tick, slots: make([]timerList, slots), start: time.Now(), clock: time.Now}
	for i := range w.slots {
		w.slots[i].init()
	}
	return w
}

// Tick is the wheel's resolution.
func (w *Wheel) Tick() time.Duration { return w.tick }

// Len is the number of scheduled timers.
func (w *Wheel) Len() int { return w.count }

// Schedule (re)arms t to call fn after d (at least one tick). fn runs inside Advance.
func (w *Wheel) Schedule(t *Timer, d time.Duration, fn func()) {
	w.Stop(t)
	ticks := int64((d + w.tick - 1) / w.tick)
	if ticks < 1 {
		ticks = 1
	}
	t.fn = fn
	t.due = w.now + ticks
	l := &w.slots[t.due%int64(len(w.slots))]
	t.list = l
	t.prev = l.head.prev
	t.next = &l.head
	l.head.prev.next = t
	l.head.prev = t
	w.count++
}

// Stop disarms t; it reports whether t was armed.
func (w *Wheel) Stop(t *Timer) bool {
	if t.list == nil {
		return false
	}
	t.prev.next = t.next
	t.next.prev = t.prev
	t.prev, t.next, t.list = nil, nil, nil
	w.count--
	return true
}

// clockTick is the tick the clock is at now (the wheel's own position may lag behind it).
func (w *Wheel) clockTick() int64 { return int64(w.clock().Sub(w.start) / w.tick) }

// Armed reports whether t is scheduled.
func (t *Timer) Armed() bool { return t.list != nil }

// Advance moves the wheel to now and runs every timer that came due, in no particular order.
// A callback may schedule or stop timers, including itself.
func (w *Wheel) Advance(now time.Time) {
	target := int64(now.Sub(w.start) / w.tick)
	for w.now < target {
		w.now++
		l := &w.slots[w.now%int64(len(w.slots))]
		for t := l.head.next; t != &l.head; {
			next := t.next
			if t.due <= w.now {
				w.Stop(t)
				t.fn()
				// t.fn may have stopped next; restart the scan from the head in that case.
				if next.list != l && next != &l.head {
					next = l.head.next
				}
			}
			t = next
		}
	}
}
