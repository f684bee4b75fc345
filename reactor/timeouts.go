package reactor

import "time"

// Timeouts implements Conn.SetIdleTimeout and Conn.SetReadTimeout for a backend on top of a
// Wheel, without reading the clock on the I/O path: Read and Wrote only set a flag. One timer
// per connection fires every quarter of the shorter timeout; when it finds a flag set it
// stamps the activity with the clock (one clock read per check, not per event) and clears the
// flag, and when the stamp is older than a timeout the connection expires.
//
// A stamp is taken at the check after the activity, never before it, so a timeout never fires
// early, even when the wheel lags behind the clock and catches up in a burst; it fires at most
// a quarter period (plus the wheel's lag) late. Like the Wheel, Timeouts is used only from the
// owning executor.
type Timeouts struct {
	w          *Wheel
	idle, read int64 // ticks; 0 = off
	lastRead   int64 // clock tick of the last check that saw a read
	lastAny    int64 // clock tick of the last check that saw a read or a write
	readSeen   bool  // a read since the last check
	wroteSeen  bool  // a write since the last check
	timer      Timer
	expire     func(error) // called with ErrIdleTimeout or ErrReadTimeout
	fire       func()      // bound method value, allocated once
}

// Init binds t to a wheel and to the function that closes the connection on expiry.
func (t *Timeouts) Init(w *Wheel, expire func(error)) {
	t.w, t.expire = w, expire
	now := w.clockTick()
	t.lastRead, t.lastAny = now, now
}

// Read records inbound activity. It costs a store.
func (t *Timeouts) Read() { t.readSeen = true }

// Wrote records outbound activity. It costs a store.
func (t *Timeouts) Wrote() { t.wroteSeen = true }

// SetIdle sets the idle timeout (no read and no write for d); 0 disables. A new timeout counts
// from now.
func (t *Timeouts) SetIdle(d time.Duration) {
	t.idle = t.ticks(d)
	if t.w != nil {
		t.lastAny = t.w.clockTick()
	}
	t.rearm()
}

// SetRead sets the read timeout (no read for d); 0 disables. It counts from now.
func (t *Timeouts) SetRead(d time.Duration) {
	t.read = t.ticks(d)
	if t.w != nil {
		t.lastRead = t.w.clockTick()
	}
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

// period is the check interval: a quarter of the shorter armed timeout, at least one tick.
func (t *Timeouts) period() int64 {
	p := t.idle
	if t.read > 0 && (p == 0 || t.read < p) {
		p = t.read
	}
	return max(p/4, 1)
}

func (t *Timeouts) rearm() {
	if t.w == nil {
		return
	}
	if t.idle == 0 && t.read == 0 {
		t.w.Stop(&t.timer)
		return
	}
	if t.fire == nil {
		t.fire = t.onTimer
	}
	t.w.Schedule(&t.timer, time.Duration(t.period())*t.w.tick, t.fire)
}

func (t *Timeouts) onTimer() {
	now := t.w.clockTick()
	if t.readSeen {
		t.lastRead = now
		t.lastAny = now
	} else if t.wroteSeen {
		t.lastAny = now
	}
	t.readSeen, t.wroteSeen = false, false
	switch {
	case t.read > 0 && now-t.lastRead >= t.read:
		t.expire(ErrReadTimeout)
	case t.idle > 0 && now-t.lastAny >= t.idle:
		t.expire(ErrIdleTimeout)
	default:
		t.rearm()
	}
}
