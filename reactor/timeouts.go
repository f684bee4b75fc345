package reactor

import "time"

// Timeouts implements Conn.SetIdleTimeout and Conn.SetReadTimeout for a backend on top of a
// Wheel: activity is recorded as a tick number read from the clock (one clock read per read or
// write event, never per byte), one timer per connection is armed for the nearest deadline
// and, when it fires, re-armed for the time left if there was activity meanwhile. Activity is
// stamped from the clock rather than from the wheel's position because the wheel may lag
// behind when its ticker is delayed, and a stale stamp would make a timeout fire early; a
// lagging wheel only makes timeouts fire late. Like the Wheel, it is used only from the owning
// executor.
type Timeouts struct {
	w         *Wheel
	idle      int64 // ticks; 0 = off
	read      int64
	lastRead  int64
	lastWrite int64
	timer     Timer
	expire    func(error) // called with ErrIdleTimeout or ErrReadTimeout
	fire      func()      // bound method value, allocated once
}

// Init binds t to a wheel and to the function that closes the connection on expiry.
func (t *Timeouts) Init(w *Wheel, expire func(error)) {
	t.w, t.expire = w, expire
	t.lastRead, t.lastWrite = w.clockTick(), w.clockTick()
}

func (t *Timeouts) now() int64 { return t.w.clockTick() }

// Read records inbound activity.
func (t *Timeouts) Read() {
	if t.w != nil {
		t.lastRead = t.w.clockTick()
	}
}

// Wrote records outbound activity.
func (t *Timeouts) Wrote() {
	if t.w != nil {
		t.lastWrite = t.w.clockTick()
	}
}

// SetIdle sets the idle timeout (no read and no write for d); 0 disables.
func (t *Timeouts) SetIdle(d time.Duration) {
	t.idle = t.ticks(d)
	t.lastRead, t.lastWrite = t.now(), t.now() // a new timeout counts from now
	t.rearm()
}

// SetRead sets the read timeout (no read for d); 0 disables.
func (t *Timeouts) SetRead(d time.Duration) {
	t.read = t.ticks(d)
	t.lastRead = t.now()
	t.rearm()
}

// Stop disarms the timer (on close).
func (t *Timeouts) Stop() {
	if t.w != nil {
		t.w.Stop(&t.timer)
	}
}

func (t *Timeouts) ticks(d time.Duration) int64 {
	if d <= 0 || t.w == nil {
		return 0
	}
	n := int64((d + t.w.tick - 1) / t.w.tick)
	if n < 1 {
		n = 1
	}
	return n
}

// next returns the tick at which the earliest armed timeout is due, and which error it
// carries; ok is false when none is armed.
func (t *Timeouts) next() (due int64, err error, ok bool) {
	if t.idle > 0 {
		due, err, ok = max(t.lastRead, t.lastWrite)+t.idle, ErrIdleTimeout, true
	}
	if t.read > 0 {
		if d := t.lastRead + t.read; !ok || d < due {
			due, err, ok = d, ErrReadTimeout, true
		}
	}
	return due, err, ok
}

func (t *Timeouts) rearm() {
	if t.w == nil {
		return
	}
	due, _, ok := t.next()
	if !ok {
		t.w.Stop(&t.timer)
		return
	}
	if t.fire == nil {
		t.fire = t.onTimer
	}
	left := due - t.w.now
	if left < 1 {
		left = 1
	}
	t.w.Schedule(&t.timer, time.Duration(left)*t.w.tick, t.fire)
}

func (t *Timeouts) onTimer() {
	due, err, ok := t.next()
	if !ok {
		return
	}
	if due <= t.w.now {
		t.expire(err)
		return
	}
	t.rearm()
}
