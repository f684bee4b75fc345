package stdnet

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// executor is one of the transport's Options.Loops serialization domains. Handler callbacks,
// Exec functions and timer expiries of its connections run with mu held; Exec functions and
// internal events wait in a FIFO that one pooled goroutine at a time drains under mu.
type executor struct {
	t  *Transport
	id int

	mu    sync.Mutex     // held while a callback, task or timer of the executor runs
	wheel *reactor.Wheel // idle and read timeouts and Conn.Schedule timers; guarded by mu
	armed atomic.Bool    // mirrors wheel.Len() > 0 (written under mu): the ticker skips the executor otherwise

	qmu     sync.Mutex // guards the fields below and every member's conn.dead
	q       []task
	spare   []task
	running bool // a drain is scheduled or running
	drainFn func()
}

// task is an Exec function or an internal event; owner, when set, is the connection a panic
// is charged to.
type task struct {
	owner *conn
	fn    func()
}

func newExecutor(t *Transport, id int) *executor {
	e := &executor{t: t, id: id, wheel: reactor.NewWheel(t.o.TimerTick, wheelSlots)}
	e.drainFn = e.drain
	return e
}

// exec queues fn. When check is set and already closed (its OnClose is queued or done), fn is
// dropped and exec returns false. Never blocks.
func (e *executor) exec(check, owner *conn, fn func()) bool {
	e.qmu.Lock()
	if check != nil && check.dead {
		e.qmu.Unlock()
		return false
	}
	e.q = append(e.q, task{owner: owner, fn: fn})
	start := !e.running
	e.running = true
	e.qmu.Unlock()
	if start {
		e.t.run(e.drainFn)
	}
	return true
}

// closeConn marks c dead, so Exec refuses new functions, and queues its OnClose behind the
// functions already accepted.
func (e *executor) closeConn(c *conn) {
	e.qmu.Lock()
	c.dead = true
	e.qmu.Unlock()
	e.exec(nil, c, c.onClosed)
}

func (e *executor) drain() {
	for {
		e.qmu.Lock()
		batch := e.q
		if len(batch) == 0 {
			e.running = false
			e.qmu.Unlock()
			return
		}
		e.q, e.spare = e.spare[:0], nil
		e.qmu.Unlock()

		e.mu.Lock()
		for i := range batch {
			runTask(batch[i])
			batch[i] = task{}
		}
		e.mu.Unlock()

		e.qmu.Lock()
		if e.spare == nil {
			e.spare = batch[:0]
		}
		e.qmu.Unlock()
	}
}

// advance moves the wheel to now and runs what came due: expired timeouts close their
// connection, then Conn.Schedule timers run in deadline order. Ticker goroutine.
func (e *executor) advance(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.wheel.Advance(now)
	for !e.t.timersOff.Load() {
		fn, ok := e.wheel.PopDue()
		if !ok {
			break
		}
		e.runTimer(fn)
	}
	e.armed.Store(e.wheel.Len() > 0)
}

// runTimer runs a timer function; a panic is logged and closes nothing (the timer belongs to
// the executor, not to a connection).
func (e *executor) runTimer(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			e.t.o.Log().Error("stdnet: recovered a panic in a timer function",
				"executor", e.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

func runTask(tk task) {
	defer func() {
		if r := recover(); r != nil && tk.owner != nil {
			tk.owner.terminate(fmt.Errorf("%w in an executor task: %v\n%s", ErrHandlerPanic, r, debug.Stack()))
		}
	}()
	tk.fn()
}
