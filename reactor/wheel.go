package reactor

import (
	"math"
	"time"
)

// Wheel is a hashed timing wheel: O(1) arm and stop, expiry checked once per tick. It is not
// safe for concurrent use: each executor owns one and advances it from its own goroutine
// (gnet: the loop, via a ticker that Executes Advance; netpoll and stdnet: under a lock of
// the executor). Timeouts that depend on activity (idle, read) are best scheduled once and,
// when they fire, rescheduled for the remaining time instead of being moved on every byte.
//
// A wheel holds two kinds of timers:
//   - Schedule arms a timer relative to the wheel's own position (the tick Advance last
//     reached); its function runs inside Advance. Timeouts uses it.
//   - After arms a timer relative to the clock, for handler code (Conn.Schedule): it never
//     comes due before d has passed, and when it does Advance only queues it, in deadline
//     order; the executor takes it with PopDue and runs its function outside Advance (and
//     outside any lock that guards the wheel). Until PopDue hands it out it is still armed,
//     so Stop still prevents it from running.
//
// A wheel with nothing armed does no work: Advance then only moves its position to the clock.
type Wheel struct {
	tick   time.Duration
	slots  []timerList
	firing timerList // Schedule timers of the tick being processed, run one by one
	due    timerList // After timers that came due, in deadline order, for PopDue
	now    int64     // ticks since start
	start  time.Time
	count  int              // armed timers, including those on firing and due
	clock  func() time.Time // time.Now; tests substitute a fake
}

// Timer is an entry on a Wheel. The zero Timer is ready to use and may be embedded in the
// owner's struct, so arming it allocates nothing. A Timer is on at most one wheel: while it is
// armed it belongs to that wheel (arming or stopping it through another wheel panics), and it
// must not be copied.
type Timer struct {
	fn         func()
	due        int64 // absolute tick
	at         int64 // After: deadline in nanoseconds since the wheel's start; -1 for Schedule
	prev, next *Timer
	list       *timerList
}

type timerList struct {
	head Timer
	w    *Wheel
}

func (l *timerList) init(w *Wheel) { l.head.next, l.head.prev, l.w = &l.head, &l.head, w }

func (l *timerList) empty() bool { return l.head.next == &l.head }

// pushBack links t at the end of l.
func (l *timerList) pushBack(t *Timer) {
	t.list = l
	t.prev = l.head.prev
	t.next = &l.head
	l.head.prev.next = t
	l.head.prev = t
}

// unlink removes t from its list without touching the wheel's count.
func (t *Timer) unlink() {
	t.prev.next = t.next
	t.next.prev = t.prev
	t.prev, t.next, t.list = nil, nil, nil
}

// maxAfter bounds After's d so that deadlines cannot overflow (about 146 years).
const maxAfter = time.Duration(math.MaxInt64 / 2)

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
		w.slots[i].init(w)
	}
	w.firing.init(w)
	w.due.init(w)
	return w
}

// Tick is the wheel's resolution.
func (w *Wheel) Tick() time.Duration { return w.tick }

// Len is the number of armed timers (including After timers waiting for PopDue).
func (w *Wheel) Len() int { return w.count }

// Schedule (re)arms t to call fn after d (at least one tick), counted in ticks from the
// wheel's current position (on a wheel with nothing armed, first moved to the clock). fn runs
// inside Advance.
func (w *Wheel) Schedule(t *Timer, d time.Duration, fn func()) {
	w.Stop(t)
	if w.count == 0 {
		w.idleCatchUp(w.clock().Sub(w.start))
	}
	ticks := int64((d + w.tick - 1) / w.tick)
	if ticks < 1 {
		ticks = 1
	}
	w.arm(t, w.now+ticks, -1, fn)
}

// After (re)arms t to have fn run no earlier than d after now by the wheel's clock, and no
// earlier than one tick: at the first tick boundary at or past that deadline, once Advance
// has reached it, fn is queued for PopDue. Re-arming an armed t moves it. Timers that came due
// are handed out in the order of their deadlines (now + d), ties in the order they were armed.
func (w *Wheel) After(t *Timer, d time.Duration, fn func()) {
	w.Stop(t)
	now := w.clock().Sub(w.start)
	if w.count == 0 {
		w.idleCatchUp(now)
	}
	d = min(max(d, w.tick), maxAfter)
	at := int64(now + d)
	due := (at + int64(w.tick) - 1) / int64(w.tick)
	if due <= w.now { // only with a clock that went backwards
		due = w.now + 1
	}
	w.arm(t, due, at, fn)
}

// idleCatchUp moves the position of a wheel with nothing armed to the clock (now since the
// start): nothing can be missed, and the ticks the wheel did not advance through while idle
// need not be visited.
func (w *Wheel) idleCatchUp(now time.Duration) {
	if ct := int64(now / w.tick); ct > w.now {
		w.now = ct
	}
}

func (w *Wheel) arm(t *Timer, due, at int64, fn func()) {
	t.fn, t.due, t.at = fn, due, at
	w.slots[due%int64(len(w.slots))].pushBack(t)
	w.count++
}

// Stop disarms t; it reports whether t was armed (an After timer queued for PopDue counts as
// armed). It panics if t is armed on another wheel.
func (w *Wheel) Stop(t *Timer) bool {
	if t.list == nil {
		return false
	}
	if t.list.w != w {
		panic("reactor: Timer armed on another executor's wheel")
	}
	t.unlink()
	t.fn = nil
	w.count--
	return true
}

// clockTick is the tick the clock is at now (the wheel's own position may lag behind it).
func (w *Wheel) clockTick() int64 { return int64(w.clock().Sub(w.start) / w.tick) }

// Armed reports whether t is scheduled.
func (t *Timer) Armed() bool { return t.list != nil }

// Advance moves the wheel to now. Schedule timers that came due run inside it, in the order
// they were armed; After timers that came due are queued for PopDue. A callback may schedule
// or stop timers, including itself and timers due in the same tick. If a callback panics, the
// wheel stays consistent: the next Advance first runs the rest of that tick's timers.
func (w *Wheel) Advance(now time.Time) {
	w.runFiring()
	target := int64(now.Sub(w.start) / w.tick)
	for w.now < target {
		if w.count == 0 {
			w.now = target // nothing armed: nothing to visit
			return
		}
		w.now++
		w.collect(&w.slots[w.now%int64(len(w.slots))])
		w.runFiring()
	}
}

// collect moves the timers of slot l that are due at the current tick: Schedule timers to
// firing, After timers (sorted by deadline) to the end of due.
func (w *Wheel) collect(l *timerList) {
	var chain *Timer // After timers due now, linked through next
	var tail *Timer
	for t := l.head.next; t != &l.head; {
		next := t.next
		if t.due <= w.now {
			t.unlink()
			if t.at < 0 {
				w.firing.pushBack(t)
			} else {
				if tail == nil {
					chain = t
				} else {
					tail.next = t
				}
				tail = t
			}
		}
		t = next
	}
	if chain == nil {
		return
	}
	tail.next = nil
	for t := sortByAt(chain); t != nil; {
		next := t.next
		w.due.pushBack(t)
		t = next
	}
}

// runFiring runs the Schedule timers collected for the current tick. Each is disarmed before
// its callback runs, so the callback may re-arm it.
func (w *Wheel) runFiring() {
	for !w.firing.empty() {
		t := w.firing.head.next
		fn := t.fn
		w.Stop(t)
		fn()
	}
}

// Due reports whether After timers wait for PopDue.
func (w *Wheel) Due() bool { return !w.due.empty() }

// PopDue disarms the After timer with the earliest deadline among those that came due and
// returns its function, for the executor to run; ok is false when none waits. The function
// must be run without holding a lock that guards the wheel: it may arm and stop timers.
func (w *Wheel) PopDue() (fn func(), ok bool) {
	if w.due.empty() {
		return nil, false
	}
	t := w.due.head.next
	fn = t.fn
	w.Stop(t)
	return fn, true
}

// sortByAt sorts a nil-terminated chain linked through next by deadline, keeping the order
// of equal deadlines (a merge sort: no allocation, O(n log n); O(n) when already sorted).
func sortByAt(head *Timer) *Timer {
	sorted := true
	n := 0
	for t := head; t != nil; t = t.next {
		if t.next != nil && t.next.at < t.at {
			sorted = false
		}
		n++
	}
	if sorted {
		return head
	}
	return mergeSort(head, n)
}

func mergeSort(head *Timer, n int) *Timer {
	if n <= 1 {
		if head != nil {
			head.next = nil
		}
		return head
	}
	half := n / 2
	mid := head
	for range half - 1 {
		mid = mid.next
	}
	right := mid.next
	mid.next = nil
	a, b := mergeSort(head, half), mergeSort(right, n-half)
	var first Timer
	tail := &first
	for a != nil && b != nil {
		if b.at < a.at {
			tail.next, b = b, b.next
		} else {
			tail.next, a = a, a.next
		}
		tail = tail.next
	}
	if a != nil {
		tail.next = a
	} else {
		tail.next = b
	}
	return first.next
}
