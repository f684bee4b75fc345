package reactortest

import (
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// timerTick is the wheel tick of the Timers group: small, so the group runs fast, and large
// enough that "within two ticks" means something on a loaded machine.
const timerTick = 10 * time.Millisecond

// 17. Conn.Schedule and Conn.Unschedule: timers on the executor's wheel. They fire on the
// executor (never overlapping a callback there, checked by the monitor and by -race on state
// shared with OnData), never before d, within d + 2 ticks (for most of them, on a loaded
// machine), in deadline order; Unschedule and re-Schedule take effect at once, even for a
// timer that came due while the executor was busy; a timer armed through one connection may be
// stopped or moved through another of the same executor; timers keep firing after every
// connection of the executor closed; a panicking timer function closes nothing; nothing fires
// after Transport.Close returned; and (outside -race builds) arming and stopping 10,000 timers
// from a callback allocates nothing.
func (s *suite) testTimers(t *testing.T) {
	cases := []subtest{
		{"OnExecutor", s.timersOnExecutor},
		{"Precision", s.timersPrecision},
		{"DeadlineOrder", s.timersDeadlineOrder},
		{"Unschedule", s.timersUnschedule},
		{"UnscheduleWhileDue", s.timersUnscheduleWhileDue},
		{"Reschedule", s.timersReschedule},
		{"AcrossConns", s.timersAcrossConns},
		{"AfterClose", s.timersAfterClose},
		{"Many", s.timersMany},
		{"Panic", s.timersPanic},
		{"TransportClose", s.timersTransportClose},
	}
	cases = append(cases, s.timerAllocCases()...)
	for _, tc := range cases {
		t.Run(tc.name, tc.fn)
	}
}

// subtest is a named subtest function.
type subtest struct {
	name string
	fn   func(*testing.T)
}

// enterTimer records that a timer function starts on executor eid: no callback of that
// executor may be running on another goroutine meanwhile. The result goes to exit.
func (m *monitor) enterTimer(eid int) *execRec {
	gid := goroutineID()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.execs == nil {
		m.execs = make(map[int]*execRec)
	}
	x := m.execs[eid]
	if x == nil {
		x = &execRec{}
		m.execs[eid] = x
	}
	if x.owner != 0 && x.owner != gid {
		m.violationLocked("a timer function ran on executor %d while %s of conn id %d was running there "+
			"on another goroutine", eid, x.cb, x.conn)
		return nil
	}
	if x.depth == 0 {
		x.conn, x.cb = 0, "a timer function"
	}
	x.owner = gid
	x.depth++
	return x
}

// timerServer serves echo (with the given extra OnData and OnClose hooks) and returns a
// function that connects a client and returns the server side once it round-tripped.
type timerServer struct {
	e      *env
	addr   string
	ln     reactor.Listener
	conns  chan reactor.Conn
	closed chan closeEvent
}

func (e *env) timerServer(data func(c reactor.Conn)) *timerServer {
	ts := &timerServer{e: e, conns: make(chan reactor.Conn, 64), closed: make(chan closeEvent, 64)}
	h := echo()
	echoData := h.data
	h.open = func(c reactor.Conn) { ts.conns <- c }
	h.data = func(c reactor.Conn, in reactor.View) {
		if data != nil {
			data(c)
		}
		echoData(c, in)
	}
	h.close = func(c reactor.Conn, err error) { ts.closed <- closeEvent{c: c, err: err, at: time.Now()} }
	ts.addr, ts.ln = e.listen(h)
	return ts
}

// accept opens a client connection and returns both ends.
func (ts *timerServer) accept() (reactor.Conn, *net.TCPConn) {
	ts.e.t.Helper()
	cl := ts.e.dial(ts.addr)
	ts.e.roundTrip(cl, []byte("open"), "the first round trip")
	return recv(ts.e, ts.conns, stepTimeout, "OnOpen"), cl
}

// onExecutor runs fn on c's executor (through Exec) and waits until it returned.
func (e *env) onExecutor(c reactor.Conn, fn func()) {
	e.t.Helper()
	done := make(chan struct{})
	if !c.Exec(func() {
		defer close(done)
		fn()
	}) {
		e.fatalf("Exec on open conn %d was refused", c.ID())
	}
	recv(e, done, stepTimeout, "an Exec function")
}

// firings records timer functions that ran: which one, when, and how often.
type firings struct {
	mu     sync.Mutex
	order  []int
	at     map[int]time.Time
	counts map[int]int
	ch     chan int
}

func newFirings() *firings {
	return &firings{at: map[int]time.Time{}, counts: map[int]int{}, ch: make(chan int, 1<<15)}
}

func (f *firings) fire(id int) {
	now := time.Now()
	f.mu.Lock()
	f.order = append(f.order, id)
	if f.counts[id] == 0 {
		f.at[id] = now
	}
	f.counts[id]++
	f.mu.Unlock()
	select {
	case f.ch <- id:
	default:
	}
}

func (f *firings) count(id int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[id]
}

func (f *firings) firedAt(id int) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at[id]
}

func (f *firings) snapshot() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.order...)
}

// timerFn returns a timer function for id, armed through c: it checks it runs alone on c's
// executor, records the firing, then runs then (may be nil).
func (e *env) timerFn(c reactor.Conn, f *firings, id int, then func()) func() {
	eid := c.ExecutorID()
	return func() {
		x := e.mon.enterTimer(eid)
		defer e.mon.exit(x)
		f.fire(id)
		if then != nil {
			then()
		}
	}
}

// waitFired waits until timer id fired.
func (e *env) waitFired(f *firings, id int, within time.Duration, what string) time.Time {
	e.t.Helper()
	e.eventually(within, what, func() bool { return f.count(id) > 0 })
	return f.firedAt(id)
}

// OnExecutor: timer functions run on the executor of the conn they were armed through, never
// while one of its callbacks runs elsewhere, and may use the conn's executor-bound methods.
// Two executors, two timer conns and two busy echo conns on each; every timer conn's timer
// re-arms itself from its own function and writes one byte per firing.
func (s *suite) timersOnExecutor(t *testing.T) {
	const loops, rounds = 2, 10
	e := s.start(t, reactor.Options{Loops: loops, TimerTick: timerTick})
	var shared [loops]int // per executor, touched by OnData and timer functions without locks
	ts := e.timerServer(func(c reactor.Conn) { shared[c.ExecutorID()]++ })
	type ticker struct {
		c  reactor.Conn
		tm reactor.Timer
		n  int
		fn func()
	}
	var busy, clients []*net.TCPConn
	var tickers []*ticker
	for range 2 * loops { // accepted round robin: two timer conns per executor
		c, cl := ts.accept()
		tk := &ticker{c: c}
		eid := c.ExecutorID()
		tk.fn = func() {
			x := e.mon.enterTimer(eid)
			defer e.mon.exit(x)
			shared[eid]++
			tk.n++
			if err := tk.c.Write([]byte{'t'}); err != nil {
				e.errorf("Write from a timer function on conn %d: %v", tk.c.ID(), err)
			}
			if tk.n < rounds {
				tk.c.Schedule(&tk.tm, timerTick, tk.fn)
			}
		}
		tickers = append(tickers, tk)
		clients = append(clients, cl)
	}
	for range 2 * loops { // and two busy echo conns per executor
		_, cl := ts.accept()
		busy = append(busy, cl)
	}
	for _, tk := range tickers {
		e.onExecutor(tk.c, func() { tk.c.Schedule(&tk.tm, timerTick, tk.fn) })
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, cl := range busy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := []byte(fmt.Sprintf("busy %d", i))
			got := make([]byte, len(msg))
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = cl.SetDeadline(time.Now().Add(stepTimeout))
				if _, err := cl.Write(msg); err != nil {
					e.errorf("busy client %d write: %v", i, err)
					return
				}
				if _, err := readFull(cl, got); err != nil || string(got) != string(msg) {
					e.errorf("busy client %d echo: %q, %v", i, got, err)
					return
				}
			}
		}()
	}
	for i, cl := range clients {
		got := make([]byte, rounds)
		_ = cl.SetReadDeadline(time.Now().Add(rounds*timerTick + stepTimeout))
		if _, err := readFull(cl, got); err != nil {
			close(stop)
			wg.Wait()
			e.fatalf("timer conn %d: reading the %d bytes its timer writes: %v (got %q)", i, rounds, err, got)
		}
		for _, b := range got {
			if b != 't' {
				close(stop)
				wg.Wait()
				e.fatalf("timer conn %d got %q, want %d bytes 't'", i, got, rounds)
			}
		}
	}
	close(stop)
	wg.Wait()
	for i, cl := range clients { // nothing more: each timer stopped re-arming after its rounds
		_ = cl.SetReadDeadline(time.Now().Add(5 * timerTick))
		var one [1]byte
		if n, _ := cl.Read(one[:]); n > 0 {
			e.fatalf("timer conn %d got byte %q after its timer's last round", i, one[0])
		}
	}
	for _, tk := range tickers {
		e.onExecutor(tk.c, func() {
			if tk.n != rounds || tk.tm.Armed() {
				e.errorf("conn %d: timer ran %d times (armed %v), want %d", tk.c.ID(), tk.n, tk.tm.Armed(), rounds)
			}
		})
	}
}

// Precision: a timer never fires before d has passed since Schedule was called and, for most
// timers, less than two ticks after that (the rest get a generous bound: the machine running
// the suite is shared).
func (s *suite) timersPrecision(t *testing.T) {
	const tick, n = 20 * time.Millisecond, 16
	e := s.start(t, reactor.Options{TimerTick: tick})
	ts := e.timerServer(nil)
	c, _ := ts.accept()
	f := newFirings()
	timers := make([]reactor.Timer, n)
	before := make([]time.Time, n)
	after := make([]time.Time, n)
	ds := make([]time.Duration, n)
	for i := range n {
		ds[i] = 100*time.Millisecond + time.Duration(i)*3*time.Millisecond
		fn := e.timerFn(c, f, i, nil)
		e.onExecutor(c, func() {
			before[i] = time.Now()
			c.Schedule(&timers[i], ds[i], fn)
			after[i] = time.Now()
		})
		time.Sleep(time.Duration(i%5) * time.Millisecond) // spread the arming over the tick's phases
	}
	within := 0
	var lates []time.Duration
	for i := range n {
		at := e.waitFired(f, i, ds[i]+stepTimeout, fmt.Sprintf("timer %d (d %v)", i, ds[i]))
		if took := at.Sub(before[i]); took < ds[i] {
			e.fatalf("timer %d with d %v fired %v after Schedule was called", i, ds[i], took)
		}
		late := at.Sub(after[i].Add(ds[i]))
		lates = append(lates, late)
		if late < 2*tick {
			within++
		}
		if late > 2*tick+time.Second {
			e.fatalf("timer %d with d %v fired %v after its deadline (tick %v)", i, ds[i], late, tick)
		}
	}
	sort.Slice(lates, func(i, j int) bool { return lates[i] < lates[j] })
	if within < n/2 {
		e.fatalf("only %d of %d timers fired within two ticks (%v) of their deadline; lateness %v",
			within, n, 2*tick, lates)
	}
	t.Logf("[%s] lateness past the deadline, tick %v: min %v, median %v, max %v",
		e.name, tick, lates[0], lates[n/2], lates[n-1])
	time.Sleep(3 * tick)
	for i := range n {
		if k := f.count(i); k != 1 {
			e.fatalf("timer %d fired %d times", i, k)
		}
	}
}

// DeadlineOrder: timers armed together (in a shuffled order, some within one tick of each
// other, two with equal d) fire in the order of their deadlines; equal deadlines in the order
// they were armed.
func (s *suite) timersDeadlineOrder(t *testing.T) {
	e := s.start(t, reactor.Options{TimerTick: timerTick})
	ts := e.timerServer(nil)
	c, _ := ts.accept()
	f := newFirings()
	ms := []int{57, 30, 45, 63, 33, 51, 45, 36, 60, 39, 42, 48, 54, 31}
	timers := make([]reactor.Timer, len(ms))
	fns := make([]func(), len(ms))
	for i := range ms {
		fns[i] = e.timerFn(c, f, i, nil)
	}
	var spread time.Duration // how long arming took: deadlines closer than that are not ordered
	e.onExecutor(c, func() {
		start := time.Now()
		for i, m := range ms {
			c.Schedule(&timers[i], time.Duration(m)*time.Millisecond, fns[i])
		}
		spread = time.Since(start)
	})
	e.eventually(stepTimeout, "every timer to fire", func() bool { return len(f.snapshot()) >= len(ms) })
	time.Sleep(3 * timerTick)
	order := f.snapshot()
	if len(order) != len(ms) {
		e.fatalf("%d firings for %d timers: %v", len(order), len(ms), order)
	}
	pos := map[int]int{}
	for p, id := range order {
		pos[id] = p
	}
	for p, i := range order {
		for _, j := range order[p+1:] {
			di, dj := time.Duration(ms[i])*time.Millisecond, time.Duration(ms[j])*time.Millisecond
			if di > dj+spread {
				e.fatalf("timer %d (d %v) fired before timer %d (d %v), armed within %v; order (by d): %v",
					i, di, j, dj, spread, msOf(order, ms))
			}
		}
	}
	if pos[2] > pos[6] {
		e.fatalf("of two timers with d 45ms, the one armed second fired first; order (by d): %v", msOf(order, ms))
	}
}

func msOf(order, ms []int) []int {
	out := make([]int, len(order))
	for i, id := range order {
		out[i] = ms[id]
	}
	return out
}

// Unschedule: it reports whether the timer was armed, and a stopped timer never fires,
// whether it is stopped in the callback that armed it or ticks later.
func (s *suite) timersUnschedule(t *testing.T) {
	e := s.start(t, reactor.Options{TimerTick: timerTick})
	ts := e.timerServer(nil)
	c, _ := ts.accept()
	f := newFirings()
	var a, b, fired reactor.Timer
	fa, fb, ff := e.timerFn(c, f, 0, nil), e.timerFn(c, f, 1, nil), e.timerFn(c, f, 2, nil)
	var res []bool
	e.onExecutor(c, func() {
		res = append(res, c.Unschedule(&a)) // never armed
		c.Schedule(&a, 4*timerTick, fa)
		c.Schedule(&b, 4*timerTick, fb)
		c.Schedule(&fired, 2*timerTick, ff)
		res = append(res, c.Unschedule(&b), c.Unschedule(&b))
	})
	time.Sleep(timerTick)
	e.onExecutor(c, func() { res = append(res, c.Unschedule(&a)) })
	e.waitFired(f, 2, stepTimeout, "the timer that was not stopped")
	time.Sleep(8 * timerTick)
	e.onExecutor(c, func() { res = append(res, c.Unschedule(&a), c.Unschedule(&fired)) })
	want := []bool{false, true, false, true, false, false}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		e.fatalf("Unschedule results %v, want %v (never armed; armed; again; armed a tick later; "+
			"after it was stopped; after it fired)", res, want)
	}
	if f.count(0) != 0 || f.count(1) != 0 {
		e.fatalf("stopped timers fired: %d and %d times", f.count(0), f.count(1))
	}
	if f.count(2) != 1 {
		e.fatalf("the timer that was not stopped fired %d times", f.count(2))
	}
}

// UnscheduleWhileDue: a timer that came due while the executor was busy, and whose function
// therefore waits, is still armed: Unschedule stops it (and reports true), a new Schedule
// moves it, and a timer function may stop another timer due in the same tick.
func (s *suite) timersUnscheduleWhileDue(t *testing.T) {
	e := s.start(t, reactor.Options{TimerTick: timerTick})
	ts := e.timerServer(nil)
	c, _ := ts.accept()
	f := newFirings()
	var a, b, x, y reactor.Timer
	fa, fb, fb2, fy := e.timerFn(c, f, 0, nil), e.timerFn(c, f, 1, nil), e.timerFn(c, f, 2, nil), e.timerFn(c, f, 4, nil)
	var stoppedA, stoppedY bool
	var moved time.Time
	fx := e.timerFn(c, f, 3, func() { stoppedY = c.Unschedule(&y) })
	e.onExecutor(c, func() {
		c.Schedule(&a, timerTick, fa)
		c.Schedule(&b, timerTick, fb)
		time.Sleep(5 * timerTick) // the executor is busy while both come due
		stoppedA = c.Unschedule(&a)
		moved = time.Now()
		c.Schedule(&b, 6*timerTick, fb2)
		c.Schedule(&x, timerTick, fx)
		c.Schedule(&y, timerTick, fy) // same deadline tick, armed after x: x runs first
	})
	at := e.waitFired(f, 2, stepTimeout, "the moved timer")
	e.waitFired(f, 3, stepTimeout, "the timer that stops its neighbour")
	time.Sleep(4 * timerTick)
	if !stoppedA {
		e.fatalf("Unschedule of a timer that came due while the executor was busy reported false")
	}
	if f.count(0) != 0 {
		e.fatalf("a timer stopped after it came due (before its function ran) fired")
	}
	if f.count(1) != 0 {
		e.fatalf("a timer moved after it came due fired with its old function")
	}
	if took := at.Sub(moved); took < 6*timerTick {
		e.fatalf("a timer moved to %v fired %v after the move", 6*timerTick, took)
	}
	if !stoppedY || f.count(4) != 0 {
		e.fatalf("a timer function stopping a timer due in the same tick: Unschedule %v, it fired %d times",
			stoppedY, f.count(4))
	}
	if f.count(2) != 1 || f.count(3) != 1 {
		e.fatalf("firings: moved timer %d, stopping timer %d, want 1 each", f.count(2), f.count(3))
	}
}

// Reschedule: Schedule on an armed timer moves it, earlier or later; the timer fires once,
// with the function of the last Schedule.
func (s *suite) timersReschedule(t *testing.T) {
	e := s.start(t, reactor.Options{TimerTick: timerTick})
	ts := e.timerServer(nil)
	c, _ := ts.accept()
	f := newFirings()
	var early, later reactor.Timer
	fOld, fEarly := e.timerFn(c, f, 0, nil), e.timerFn(c, f, 1, nil)
	fLater := e.timerFn(c, f, 2, nil)
	const far = 50 * timerTick
	var armed, movedLater time.Time
	e.onExecutor(c, func() {
		armed = time.Now()
		c.Schedule(&early, far, fOld)
		c.Schedule(&early, 2*timerTick, fEarly)
		c.Schedule(&later, 2*timerTick, fLater)
	})
	time.Sleep(timerTick / 2)
	e.onExecutor(c, func() {
		movedLater = time.Now()
		c.Schedule(&later, 20*timerTick, fLater)
	})
	at := e.waitFired(f, 1, stepTimeout, "the timer moved earlier")
	if took := at.Sub(armed); took >= far {
		e.fatalf("a timer moved from %v to %v fired after %v", far, 2*timerTick, took)
	}
	time.Sleep(5 * timerTick)
	if f.count(2) != 0 {
		e.fatalf("a timer moved from %v to %v fired after %v", 2*timerTick, 20*timerTick,
			f.firedAt(2).Sub(movedLater))
	}
	at = e.waitFired(f, 2, stepTimeout, "the timer moved later")
	if took := at.Sub(movedLater); took < 20*timerTick {
		e.fatalf("a timer moved to %v fired %v after the move", 20*timerTick, took)
	}
	if wait := time.Until(armed.Add(far + 3*timerTick)); wait > 0 {
		time.Sleep(wait) // past the first arming's deadline: it must not fire
	}
	if f.count(0) != 0 || f.count(1) != 1 || f.count(2) != 1 {
		e.fatalf("firings: old function %d, moved earlier %d, moved later %d; want 0, 1, 1",
			f.count(0), f.count(1), f.count(2))
	}
}

// AcrossConns: a timer armed through one conn is stopped, or moved, through another conn of
// the same executor: here an upstream dialed near the first one, with two executors.
func (s *suite) timersAcrossConns(t *testing.T) {
	e := s.start(t, reactor.Options{Loops: 2, TimerTick: timerTick})
	ts := e.timerServer(nil)
	a, _ := ts.accept()
	up := e.timerServer(nil)
	d := newDialRecorder()
	e.tr.Dial(a, up.addr, 0, e.mon.wrap(d.handler()), d.done)
	r := recv(e, d.result, stepTimeout, "Dial's done")
	if r.err != nil {
		e.fatalf("Dial near conn %d: %v", a.ID(), r.err)
	}
	u := r.c
	if u.ExecutorID() != a.ExecutorID() {
		e.fatalf("a conn dialed near conn %d (executor %d) has executor %d", a.ID(), a.ExecutorID(), u.ExecutorID())
	}
	f := newFirings()
	var stopped, moved reactor.Timer
	fStopped, fOld, fMoved := e.timerFn(a, f, 0, nil), e.timerFn(a, f, 1, nil), e.timerFn(u, f, 2, nil)
	var ok bool
	var movedAt time.Time
	e.onExecutor(a, func() {
		a.Schedule(&stopped, 5*timerTick, fStopped)
		a.Schedule(&moved, 60*timerTick, fOld)
	})
	e.onExecutor(u, func() {
		ok = u.Unschedule(&stopped)
		movedAt = time.Now()
		u.Schedule(&moved, 3*timerTick, fMoved)
	})
	if !ok {
		e.fatalf("Unschedule through conn %d of a timer armed through conn %d (same executor) reported false",
			u.ID(), a.ID())
	}
	at := e.waitFired(f, 2, stepTimeout, "the timer moved through the other conn")
	if took := at.Sub(movedAt); took < 3*timerTick || took >= 60*timerTick {
		e.fatalf("a timer moved through another conn to %v fired %v after the move", 3*timerTick, took)
	}
	time.Sleep(6 * timerTick)
	if f.count(0) != 0 || f.count(1) != 0 || f.count(2) != 1 {
		e.fatalf("firings: stopped %d, old arming %d, moved %d; want 0, 0, 1", f.count(0), f.count(1), f.count(2))
	}
	var again bool
	e.onExecutor(a, func() { again = a.Unschedule(&stopped) || a.Unschedule(&moved) })
	if again {
		e.fatalf("Unschedule through conn %d of timers already stopped or fired reported true", a.ID())
	}
}

// AfterClose: a timer keeps its executor's wheel moving after every connection on it closed
// (and its listener with them); its function runs on the executor, and may still arm and stop
// timers through the closed conn.
func (s *suite) timersAfterClose(t *testing.T) {
	e := s.start(t, reactor.Options{Loops: 1, TimerTick: timerTick})
	ts := e.timerServer(nil)
	c, cl := ts.accept()
	f := newFirings()
	var tm, other reactor.Timer
	var stoppedOther bool
	fOther := e.timerFn(c, f, 1, nil)
	var fn func()
	fn = e.timerFn(c, f, 0, func() {
		if f.count(0) == 1 {
			stoppedOther = c.Unschedule(&other)
			c.Schedule(&tm, 3*timerTick, fn) // once more, through the closed conn
		}
	})
	e.onExecutor(c, func() {
		c.Schedule(&tm, 8*timerTick, fn)
		c.Schedule(&other, 20*timerTick, fOther)
	})
	_ = cl.Close()
	recv(e, ts.closed, closeTimeout, "OnClose after the client closed")
	if err := ts.ln.Close(); err != nil {
		e.fatalf("Listener.Close: %v", err)
	}
	if e.mon.openCount() != 0 {
		e.fatalf("%d conns still open", e.mon.openCount())
	}
	e.eventually(stepTimeout, "a timer armed through a closed conn to fire twice", func() bool { return f.count(0) >= 2 })
	time.Sleep(25 * timerTick)
	if !stoppedOther || f.count(1) != 0 {
		e.fatalf("a timer function stopping a timer through a closed conn: Unschedule %v, it fired %d times",
			stoppedOther, f.count(1))
	}
	if f.count(0) != 2 {
		e.fatalf("the timer fired %d times, want 2", f.count(0))
	}
}

// Many: 10,000 timers armed from callbacks on two executors, half of them stopped again; the
// other half fire exactly once each, on their own executor, in deadline order.
func (s *suite) timersMany(t *testing.T) {
	const per = 5000
	e := s.start(t, reactor.Options{Loops: 2, TimerTick: timerTick})
	ts := e.timerServer(nil)
	type entry struct {
		tm reactor.Timer
		d  time.Duration
		fn func()
	}
	f := newFirings()
	var conns []reactor.Conn
	var all [][]entry
	for k := range 2 {
		c, _ := ts.accept()
		conns = append(conns, c)
		es := make([]entry, per)
		for i := range es {
			es[i].d = time.Duration(1+(i*7919)%20) * timerTick
			es[i].fn = e.timerFn(c, f, k*per+i, nil)
		}
		all = append(all, es)
	}
	spreads := make([]time.Duration, 2)
	for k, c := range conns {
		es := all[k]
		e.onExecutor(c, func() {
			start := time.Now()
			for i := range es {
				c.Schedule(&es[i].tm, es[i].d, es[i].fn)
			}
			for i := 1; i < per; i += 2 {
				if !c.Unschedule(&es[i].tm) {
					e.errorf("Unschedule of armed timer %d on conn %d reported false", i, c.ID())
				}
			}
			spreads[k] = time.Since(start)
		})
	}
	e.eventually(stepTimeout+20*timerTick, "5,000 timers to fire", func() bool { return len(f.snapshot()) >= per })
	time.Sleep(4 * timerTick)
	order := f.snapshot()
	if len(order) != per {
		e.fatalf("%d firings, want %d", len(order), per)
	}
	last := []time.Duration{0, 0}
	for _, id := range order {
		k, i := id/per, id%per
		if i%2 == 1 {
			e.fatalf("stopped timer %d of conn %d fired", i, conns[k].ID())
		}
		if n := f.count(id); n != 1 {
			e.fatalf("timer %d of conn %d fired %d times", i, conns[k].ID(), n)
		}
		d := all[k][i].d
		if d+spreads[k] < last[k] {
			e.fatalf("conn %d: a timer with d %v fired after one with d %v (armed within %v)",
				conns[k].ID(), d, last[k], spreads[k])
		}
		last[k] = max(last[k], d)
	}
}

// Panic: a timer function that panics is logged; no conn closes for it and later timers fire.
func (s *suite) timersPanic(t *testing.T) {
	logs := newLogCapture()
	e := s.start(t, reactor.Options{Loops: 1, TimerTick: timerTick, Logger: slog.New(logs)})
	ts := e.timerServer(nil)
	c, cl := ts.accept()
	const value = "reactortest: deliberate panic in a timer function"
	f := newFirings()
	var p, q reactor.Timer
	fp := e.timerFn(c, f, 0, func() { panic(value) })
	fq := e.timerFn(c, f, 1, nil)
	e.onExecutor(c, func() {
		c.Schedule(&p, 2*timerTick, fp)
		c.Schedule(&q, 4*timerTick, fq)
	})
	e.waitFired(f, 1, stepTimeout, "the timer armed after the panicking one")
	e.roundTrip(cl, []byte("after the panic"), "a round trip after a timer function panicked")
	select {
	case ev := <-ts.closed:
		e.fatalf("conn %d closed after a timer function panicked: %s", ev.c.ID(), describe(ev.err))
	default:
	}
	e.eventually(stepTimeout, "the panic to be logged", func() bool { return logs.mentions(value) > 0 })
	if f.count(0) != 1 || f.count(1) != 1 {
		e.fatalf("firings %d and %d, want 1 each", f.count(0), f.count(1))
	}
}

// TransportClose: timers still armed when Transport.Close returns never fire.
func (s *suite) timersTransportClose(t *testing.T) {
	e := s.start(t, reactor.Options{Loops: 1, TimerTick: timerTick})
	ts := e.timerServer(nil)
	c, _ := ts.accept()
	f := newFirings()
	timers := make([]reactor.Timer, 3)
	e.onExecutor(c, func() {
		for i := range timers {
			c.Schedule(&timers[i], time.Duration(3+i)*timerTick, e.timerFn(c, f, i, nil))
		}
	})
	if err := e.tr.Close(); err != nil {
		e.fatalf("Transport.Close: %v", err)
	}
	closed := time.Now()
	time.Sleep(10 * timerTick)
	for i := range timers {
		if f.count(i) > 0 && f.firedAt(i).After(closed) {
			e.fatalf("timer %d fired %v after Transport.Close returned", i, f.firedAt(i).Sub(closed))
		}
	}
}

// readFull reads len(p) bytes.
func readFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// NoAllocs: arming and stopping 10,000 timers from a callback allocates nothing (the Timers
// live in the caller's memory, the function is made once). Only in builds without -race.
func (s *suite) timersNoAllocs(t *testing.T) {
	const n = 10000
	e := s.start(t, reactor.Options{Loops: 1, TimerTick: timerTick})
	ts := e.timerServer(nil)
	c, _ := ts.accept()
	timers := make([]reactor.Timer, n)
	var fired atomic.Int32
	fn := func() { fired.Add(1) }
	var allocs float64
	var bad int
	e.onExecutor(c, func() {
		allocs = testing.AllocsPerRun(5, func() {
			for i := range timers {
				c.Schedule(&timers[i], time.Second+time.Duration(i)*time.Millisecond, fn)
			}
			for i := range timers {
				if !c.Unschedule(&timers[i]) {
					bad++
				}
			}
		})
	})
	if bad != 0 {
		e.fatalf("Unschedule reported %d armed timers as not armed", bad)
	}
	// An allocation per Schedule or Unschedule would show as 10,000 or more per run; the
	// margin absorbs allocations by the transport's other goroutines during the measurement.
	if allocs > 10 {
		e.fatalf("%v allocations per %d Schedule + %d Unschedule calls, want none", allocs, n, n)
	}
	t.Logf("[%s] %v allocations per %d Schedule + %d Unschedule calls", e.name, allocs, n, n)
	time.Sleep(3 * timerTick)
	if k := fired.Load(); k != 0 {
		e.fatalf("%d stopped timers fired", k)
	}
}
