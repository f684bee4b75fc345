package gnet

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// drainPoll is how often a loop with connections waiting for their outbound buffer to drain
// (congested, flushing before close, or waiting to send FIN) checks them. gnet has no
// write-completion callback; see the README's "Watermarks" section.
const drainPoll = time.Millisecond

// maxIOV is the most slices handed to one writev (Linux UIO_MAXIOV). gnet's Writev passes its
// argument to writev(2) as is and closes the connection on EINVAL.
const maxIOV = 1024

// Task kinds run from a loop's inbox.
const (
	opExec       uint8 = iota + 1 // run fn
	opFlushSends                  // write w's queued Send buffers
	opClose                       // Close requested from any goroutine
	opAbort                       // Abort requested from any goroutine
	opResume                      // redeliver buffered bytes after PauseRead(false)
	opTick                        // advance the timing wheel
	opWatch                       // check connections waiting for a drain
	opDialFail                    // report a failed dial to done (no-op if OnOpen ran)
	opDetached                    // progress report from a half-closed conn's writer
	opInterest                    // re-apply w's epoll interest
)

type task struct {
	op  uint8
	w   *conn
	fn  func()
	ds  *dialState
	err error
}

// Deferred operations, run when the loop leaves its outermost callback.
const (
	pendClose  uint8 = iota + 1 // close w's gnet connection
	pendNotify                  // call w's Handler.OnClose with err
)

type pending struct {
	op  uint8
	w   *conn
	err error
}

// loop is the per-event-loop state: the executor of every connection on one gnet loop.
// Fields above mu are owned by the loop goroutine (or, once the loop is dead, by whoever
// holds deadMu).
type loop struct {
	t     *Transport
	es    *engineState
	el    gnetv2.EventLoop
	id    int // ExecutorID: dense per transport, in order of first use
	epfd  int
	wheel *reactor.Wheel

	depth    int       // nesting of dispatches (callbacks, tasks) in progress
	draining bool      // exit is running deferred operations
	cur      *conn     // connection whose gnet OnOpen/OnTraffic is being dispatched
	curClose bool      // cur must be closed by returning gnet.Close
	deferred []pending // operations postponed until depth is 0
	watch    []*conn   // connections polled for their outbound drain
	view     view      // the View handed to OnData (valid only during the call)
	vec      [][]byte  // scratch iovec
	spare    []task

	mu    sync.Mutex
	inbox []task
	armed bool // an Execute of run is outstanding
	dead  bool // the gnet loop exited: tasks run inline under deadMu (see unlockDead)

	deadMu   sync.Mutex
	watching atomic.Bool // watch is non-empty (read by the clock goroutine)
	timers   atomic.Bool // the wheel holds timers (the clock posts ticks); set and cleared on the loop
	tickOut  atomic.Bool // an opTick is queued
	watchOut atomic.Bool // an opWatch is queued
	runnable gnetv2.RunnableFunc

	events    uint32        // onTraffic calls, to check yieldIfDue every 64
	lastYield time.Duration // when the loop last yielded, on the monotonic clock since clock0
	clock0    time.Time
}

// yieldIfDue yields the loop's goroutine to the scheduler when it last did more than 2 ms
// ago. A loop that never goes through the scheduler (it only ever leaves its P for
// epoll_wait and comes back on the fast path) looks stuck to Go's sysmon, which then
// preempts it with a signal every 10 ms and, having found work, polls every 20 us for the
// next millisecond: on a single CPU those wake-ups are context switches the loop pays for.
func (l *loop) yieldIfDue() {
	now := time.Since(l.clock0)
	if now-l.lastYield >= 2*time.Millisecond {
		l.lastYield = now
		runtime.Gosched()
	}
}

func newLoop(t *Transport, es *engineState, el gnetv2.EventLoop, epfd int) *loop {
	l := &loop{t: t, es: es, el: el, epfd: epfd, wheel: reactor.NewWheel(t.o.TimerTick, 512), clock0: time.Now()}
	l.runnable = l.run
	return l
}

// enter and exit bracket every dispatch into handler code. Operations that would call back
// into a handler (closing a connection, reporting OnClose) are deferred while depth > 0 and
// run when the outermost dispatch returns, so callbacks of one connection never nest.
func (l *loop) enter() { l.depth++ }

func (l *loop) exit() {
	l.depth--
	if l.depth > 0 || l.draining {
		return
	}
	l.draining = true
	for i := 0; i < len(l.deferred); i++ {
		p := l.deferred[i]
		l.deferred[i] = pending{}
		switch p.op {
		case pendClose:
			l.doClose(p.w)
		case pendNotify:
			l.notify(p.w, p.err)
		}
	}
	l.deferred = l.deferred[:0]
	l.draining = false
}

// post queues a task for the loop. Any goroutine.
func (l *loop) post(tk task) {
	l.mu.Lock()
	if l.dead {
		l.inbox = append(l.inbox, tk)
		l.mu.Unlock()
		if l.deadMu.TryLock() {
			l.unlockDead()
		}
		return
	}
	l.inbox = append(l.inbox, tk)
	if l.armed {
		l.mu.Unlock()
		return
	}
	l.armed = true
	l.mu.Unlock()
	// On error the engine is shutting down; the tasks stay in the inbox and kill runs them.
	_ = l.el.Execute(context.Background(), l.runnable)
}

// run drains the inbox on the loop.
func (l *loop) run(context.Context) error {
	for round := 0; round < 8; round++ {
		l.mu.Lock()
		if len(l.inbox) == 0 {
			l.armed = false
			l.mu.Unlock()
			return nil
		}
		batch := l.inbox
		l.inbox = l.spare[:0]
		l.mu.Unlock()
		for i := range batch {
			l.runTask(&batch[i])
			batch[i] = task{}
		}
		l.spare = batch[:0]
	}
	// Let I/O events in between long bursts of tasks.
	_ = l.el.Execute(context.Background(), l.runnable)
	return nil
}

// kill marks the loop dead after its gnet goroutine exited and runs what was left queued.
func (l *loop) kill() {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		return
	}
	l.dead = true
	l.mu.Unlock()
	// The clock keeps posting ticks while timers are armed: a dead loop runs its tasks inline
	// (under deadMu), so Conn.Schedule timers armed on it still fire until Transport.Close.
	l.watching.Store(false)
	l.deadMu.Lock()
	l.unlockDead()
}

// unlockDead runs the tasks queued on a dead loop, then releases deadMu, which the caller
// holds. A dead loop's tasks run on whichever goroutine holds deadMu: post only queues when
// it finds deadMu taken (by another goroutine, or by its own, further up the stack, when a
// task posts a task), and the holder runs what was queued before it lets go, so tasks never
// nest and a task posting to its own dead loop cannot deadlock.
func (l *loop) unlockDead() {
	for {
		for {
			l.mu.Lock()
			batch := l.inbox
			l.inbox = nil
			l.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i := range batch {
				l.runTask(&batch[i])
			}
		}
		l.deadMu.Unlock()
		// A post that found deadMu taken while this goroutine was letting go left its task.
		l.mu.Lock()
		more := len(l.inbox) > 0
		l.mu.Unlock()
		if !more || !l.deadMu.TryLock() {
			return
		}
	}
}

func (l *loop) isDead() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dead
}

func (l *loop) runTask(tk *task) {
	l.enter()
	defer l.exit()
	// This guard covers Exec functions (a panic closes the conn whose Exec queued the function);
	// the other tasks guard their handler calls themselves (panic.go), this catches the rest.
	defer l.rescue(tk.w, taskWhere(tk.op), l.mark())
	switch tk.op {
	case opExec:
		tk.fn()
	case opFlushSends:
		tk.w.flushSends()
	case opClose:
		tk.w.closeRequested(false)
	case opAbort:
		tk.w.closeRequested(true)
	case opResume:
		tk.w.resume()
	case opTick:
		l.tickOut.Store(false)
		l.wheel.Advance(time.Now())
		l.runTimers()
		if l.wheel.Len() == 0 {
			l.timers.Store(false) // nothing armed: the clock stops posting ticks
		}
	case opWatch:
		l.watchOut.Store(false)
		l.checkWatch()
	case opDialFail:
		tk.ds.fail(tk.err)
	case opDetached:
		tk.w.detachedProgress()
	case opInterest:
		if w := tk.w; !w.closed() && w.flags&fDetached == 0 {
			l.setInterest(w)
		}
	}
}

// runTimers runs the Conn.Schedule timers that came due, in deadline order, each under its own
// guard: a panic is logged and closes nothing (a timer belongs to the loop, not to a
// connection). Loop task.
func (l *loop) runTimers() {
	for {
		fn, ok := l.wheel.PopDue()
		if !ok {
			return
		}
		l.callTimer(fn)
	}
}

func (l *loop) callTimer(fn func()) {
	defer l.rescue(nil, "a timer function", l.mark())
	fn()
}

// closeNow closes w's gnet connection, at once or when the current dispatch ends.
func (l *loop) closeNow(w *conn) {
	if l.depth > 0 {
		l.deferred = append(l.deferred, pending{op: pendClose, w: w})
		return
	}
	l.doClose(w)
}

func (l *loop) doClose(w *conn) {
	switch {
	case w.closed():
	case w.flags&fInGnetClose != 0:
		// gnet is closing it right now; peerEOF finishes the job.
	case w.flags&fDetached != 0:
		w.finalize(w.reasonOr(reactor.ErrClosed))
	case w == l.cur:
		l.curClose = true
	default:
		// Synchronous: gnet calls OnClose, which finalizes w.
		_ = l.el.Close(w.gc)
		if !w.closed() { // gnet considered it stale
			w.finalize(w.reasonOr(reactor.ErrClosed))
		}
	}
}

// notify reports OnClose to w's handler, now or when the current dispatch ends.
func (l *loop) notify(w *conn, err error) {
	if l.depth > 0 {
		l.deferred = append(l.deferred, pending{op: pendNotify, w: w, err: err})
		return
	}
	l.enter()
	w.callClose(err)
	l.exit()
}

// setInterest sets w's epoll interest, undoing gnet's own re-arming of EPOLLIN (ModReadWrite
// when a write hits EAGAIN, ModRead when its outbound buffer drained):
//   - open: EPOLLIN, plus EPOLLOUT while gnet holds outbound bytes (what gnet itself does);
//   - closing: EPOLLOUT only, to flush;
//   - paused: nothing. A paused connection's outbound bytes are flushed by the drain poll
//     (pollDrain calls gc.Flush and then this), never by an EPOLLOUT event, because gnet
//     re-arms EPOLLIN as soon as the buffer empties and the next epoll_wait would read.
func (l *loop) setInterest(w *conn) {
	var ev uint32
	switch {
	case w.flags&fClosing != 0:
		if w.gc.OutboundBuffered() > 0 {
			ev = unix.EPOLLOUT
		}
	case w.flags&fPaused != 0:
		if w.gc.OutboundBuffered() > 0 {
			l.addWatch(w)
		}
	default:
		ev = unix.EPOLLIN | unix.EPOLLPRI
		if w.gc.OutboundBuffered() > 0 {
			ev |= unix.EPOLLOUT
		}
	}
	fd := w.gc.Fd()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)}); err != nil {
		w.beginClose(err, closeHard)
	}
}

// addWatch makes the loop poll w until it no longer waits for a drain.
func (l *loop) addWatch(w *conn) {
	if w.flags&fWatched != 0 {
		return
	}
	w.flags |= fWatched
	l.watch = append(l.watch, w)
	if !l.watching.Load() {
		l.watching.Store(true)
		l.t.kickClock()
	}
}

// checkWatch runs on the loop every drainPoll while some connection waits for a drain.
func (l *loop) checkWatch() {
	var now time.Time
	keep := l.watch[:0]
	for _, w := range l.watch {
		if w.pollDrain(&now) {
			keep = append(keep, w)
		} else {
			w.flags &^= fWatched
		}
	}
	clear(l.watch[len(keep):])
	l.watch = keep
	if len(keep) == 0 {
		l.watching.Store(false)
	}
}

// postTick and postWatch are called by the clock goroutine; at most one of each is queued.
func (l *loop) postTick() {
	if l.timers.Load() && l.tickOut.CompareAndSwap(false, true) {
		l.post(task{op: opTick})
	}
}

func (l *loop) postWatch() {
	if l.watching.Load() && l.watchOut.CompareAndSwap(false, true) {
		l.post(task{op: opWatch})
	}
}

// writev writes vec through gnet in chunks of at most maxIOV slices. gnet trims the slices
// of a chunk in place after a partial write, so vec must be scratch space.
func (l *loop) writev(w *conn, vec [][]byte) error {
	for len(vec) > 0 {
		n := min(len(vec), maxIOV)
		if _, err := w.gc.Writev(vec[:n]); err != nil {
			return err
		}
		vec = vec[n:]
	}
	return nil
}
