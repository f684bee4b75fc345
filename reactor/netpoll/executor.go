//go:build linux

package netpoll

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// drainBatch is how many queued functions one drain runs before it lets waiting reader tasks
// take the executor and reschedules itself.
const drainBatch = 64

// task is a queued function; c (may be nil) is the connection a panic is charged to.
type task struct {
	c  *conn
	fn func()
}

// executor is one serialization domain: mu is held while any callback or Exec function of its
// connections runs. Reader tasks take mu directly to deliver OnOpen/OnData; everything else is
// queued and drained by a pooled goroutine. Each executor also owns a timing wheel (guarded by
// tmu, advanced by a ticker goroutine) and a write poller.
type executor struct {
	id int
	t  *transport
	mu sync.Mutex

	qmu       sync.Mutex
	q         []task
	head      int
	scheduled bool // a drain is queued or running and will see every task pushed meanwhile
	drainFn   func()

	tmu   sync.Mutex
	wheel *reactor.Wheel
	// armed mirrors wheel.Len() > 0 (written under tmu) so that the ticker skips an executor
	// with nothing armed without taking tmu. dueOut: a runTimers task is queued. stopped (under
	// mu): Transport.Close is over, timers no longer run.
	armed      atomic.Bool
	dueOut     atomic.Bool
	stopped    bool
	runTimerFn func()

	wp       *writePoller
	quit     chan struct{}
	tickDone chan struct{}
	stopOnce sync.Once
}

func newExecutor(t *transport, id int) (*executor, error) {
	e := &executor{
		id:       id,
		t:        t,
		wheel:    reactor.NewWheel(t.o.TimerTick, 512),
		quit:     make(chan struct{}),
		tickDone: make(chan struct{}),
	}
	e.drainFn = e.drain
	e.runTimerFn = e.runTimers
	wp, err := newWritePoller(t)
	if err != nil {
		return nil, err
	}
	e.wp = wp
	go e.tick()
	return e, nil
}

// submit queues fn to run on the executor.
func (e *executor) submit(c *conn, fn func()) {
	e.qmu.Lock()
	sched := e.pushLocked(task{c: c, fn: fn})
	e.qmu.Unlock()
	if sched {
		e.t.run(e.drainFn)
	}
}

// pushLocked appends a task; it reports whether the caller must schedule a drain.
func (e *executor) pushLocked(tk task) bool {
	if e.head > 1024 && e.head*2 > len(e.q) { // compact a queue that never ran empty
		n := copy(e.q, e.q[e.head:])
		clear(e.q[n:])
		e.q, e.head = e.q[:n], 0
	}
	e.q = append(e.q, tk)
	if e.scheduled {
		return false
	}
	e.scheduled = true
	return true
}

// drain runs queued tasks under the executor lock, at most drainBatch at a time.
func (e *executor) drain() {
	e.mu.Lock()
	for i := 0; ; i++ {
		e.qmu.Lock()
		if e.head == len(e.q) {
			clear(e.q)
			e.q, e.head, e.scheduled = e.q[:0], 0, false
			e.qmu.Unlock()
			e.mu.Unlock()
			return
		}
		if i == drainBatch {
			e.qmu.Unlock()
			e.mu.Unlock()
			e.t.run(e.drainFn)
			return
		}
		tk := e.q[e.head]
		e.q[e.head] = task{}
		e.head++
		e.qmu.Unlock()
		e.call(tk.c, tk.fn)
	}
}

// call runs fn (on the executor) and turns a panic into closing the connection it belongs to.
func (e *executor) call(c *conn, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			e.t.panicked(c, r)
		}
	}()
	fn()
}

// tick advances the wheel while it holds timers. Expired timeouts close their connection
// through the runner, from here; Conn.Schedule timers that came due wait in the wheel (still
// armed, so Unschedule still stops them) until a runTimers task takes them on the executor.
func (e *executor) tick() {
	defer close(e.tickDone)
	tk := time.NewTicker(e.t.o.TimerTick)
	defer tk.Stop()
	for {
		select {
		case <-e.quit:
			return
		case now := <-tk.C:
			if !e.armed.Load() {
				continue // nothing armed: no lock, no work
			}
			e.tmu.Lock()
			e.wheel.Advance(now)
			due := e.wheel.Due()
			e.armed.Store(e.wheel.Len() > 0)
			e.tmu.Unlock()
			if due && e.dueOut.CompareAndSwap(false, true) {
				e.submit(nil, e.runTimerFn)
			}
		}
	}
}

// schedule arms t on the wheel (Conn.Schedule). Executor.
func (e *executor) schedule(t *reactor.Timer, d time.Duration, fn func()) {
	e.tmu.Lock()
	e.wheel.After(t, d, fn)
	e.armed.Store(true)
	e.tmu.Unlock()
}

// unschedule disarms t (Conn.Unschedule). Executor.
func (e *executor) unschedule(t *reactor.Timer) bool {
	e.tmu.Lock()
	ok := e.wheel.Stop(t)
	e.tmu.Unlock()
	return ok
}

// runTimers runs the Conn.Schedule timers that came due, in deadline order, on the executor
// (a queued task: mu is held). tmu is held only to take each one, so a timer function may arm
// and stop timers; a panic in one is logged and closes nothing.
func (e *executor) runTimers() {
	e.dueOut.Store(false)
	for !e.stopped {
		e.tmu.Lock()
		fn, ok := e.wheel.PopDue()
		e.tmu.Unlock()
		if !ok {
			return
		}
		e.call(nil, fn)
	}
}

// stop ends the ticker and the write poller (Transport.Close, after the connections). Timer
// functions queued but not yet run are dropped.
func (e *executor) stop() {
	e.stopOnce.Do(func() {
		close(e.quit)
		<-e.tickDone
		e.mu.Lock()
		e.stopped = true
		e.mu.Unlock()
		e.wp.stop()
	})
}
