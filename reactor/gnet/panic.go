package gnet

// Handler panics. gnet v2.9.7 recovers nothing: a panic on an event loop ends the process. The
// backend therefore wraps every call into code it does not own (handler callbacks, Exec
// functions, a dial's done, a Buffer's Releaser) in a guard that recovers, restores the loop's
// dispatch bookkeeping (depth, draining, cur) to what it was when the call began, logs the
// panic once and closes the offending connection with an error wrapping ErrHandlerPanic. The
// guards sit at the call sites, not around whole dispatches, so the backend code around them
// (a batch of loop tasks, the drain poll over many connections, the deferred operations run by
// loop.exit) always runs to completion. The gnet adapters and loop tasks have a second, outer
// guard for panics in the backend itself.

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	gnetv2 "github.com/panjf2000/gnet/v2"

	"github.com/strait-proxy/strait/reactor"
)

// ErrHandlerPanic is the close reason (wrapped, with the panic value and the stack) of a
// connection whose handler callback, Exec function or dial done panicked.
var ErrHandlerPanic = errors.New("reactor/gnet: handler panicked")

// mark is the loop's dispatch bookkeeping at the start of a guarded call.
type mark struct {
	depth    int
	draining bool
	cur      *conn
}

func (l *loop) mark() mark { return mark{depth: l.depth, draining: l.draining, cur: l.cur} }

func (l *loop) restore(m mark) { l.depth, l.draining, l.cur = m.depth, m.draining, m.cur }

// rescue is deferred around a call into handler code on the loop: after a panic it restores
// the bookkeeping saved in m and closes w (nil: the code belonged to no connection).
func (l *loop) rescue(w *conn, where string, m mark) {
	r := recover()
	if r == nil {
		return
	}
	l.restore(m)
	l.panicked(w, where, r, debug.Stack())
}

// panicked logs a recovered panic and closes w with it, discarding what w still queues.
// Loop-only; the close (and OnClose) happens when the current dispatch ends.
func (l *loop) panicked(w *conn, where string, r any, stack []byte) {
	err := l.t.recovered(w, l.id, where, r, stack)
	if w == nil || w.closed() {
		return
	}
	l.enter()
	w.beginClose(err, closeHard)
	l.exit()
}

// recovered logs a panic once, to Options.Logger or slog.Default(), and returns the close
// reason for its connection.
func (t *Transport) recovered(w *conn, executor int, where string, r any, stack []byte) error {
	logger := t.o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	attrs := []any{slog.String("in", where), slog.Int("executor", executor)}
	if w != nil {
		attrs = append(attrs, slog.Uint64("conn", w.id))
	}
	attrs = append(attrs, slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(stack)))
	logger.Error("reactor/gnet: recovered a panic", attrs...)
	return fmt.Errorf("%w in %s: %v\n%s", ErrHandlerPanic, where, r, stack)
}

// Guarded calls into handler code. Each runs on w's loop, inside a dispatch (depth > 0).

func (w *conn) callOpen() (ok bool) {
	defer w.l.rescue(w, "OnOpen", w.l.mark())
	w.h.OnOpen(w)
	return true
}

func (w *conn) callDone(done func(reactor.Conn, error)) {
	defer w.l.rescue(w, "Dial's done", w.l.mark())
	done(w, nil)
}

func (w *conn) callData(v reactor.View) {
	defer w.l.rescue(w, "OnData", w.l.mark())
	w.h.OnData(w, v)
}

func (w *conn) callWritable() {
	defer w.l.rescue(w, "OnWritable", w.l.mark())
	w.h.OnWritable(w)
}

func (w *conn) callPeerClose() (keep bool) {
	defer w.l.rescue(w, "OnPeerClose", w.l.mark())
	return w.h.OnPeerClose(w)
}

// callClose reports OnClose; w is already closed, so a panic is only logged.
func (w *conn) callClose(err error) {
	defer w.l.rescue(w, "OnClose", w.l.mark())
	w.h.OnClose(w, err)
}

// taskWhere names what a loop task runs, for the log and the close reason.
func taskWhere(op uint8) string {
	if op == opExec {
		return "an Exec function"
	}
	return "a loop task"
}

// rescueDone is deferred around a dial's done called with a failure: there is no connection
// to close. It may run on the runner as well as on a loop.
func (ds *dialState) rescueDone() {
	if r := recover(); r != nil {
		executor := -1
		if ds.near != nil {
			executor = ds.near.id
		}
		_ = ds.t.recovered(nil, executor, "Dial's done", r, debug.Stack())
	}
}

// release releases b. A Releaser is user code: a panic in one is logged, not propagated
// (the Buffer is not reused).
func (t *Transport) release(b *reactor.Buffer) {
	defer t.rescueRelease()
	b.Release()
}

func (t *Transport) releaseAll(bufs []*reactor.Buffer) {
	for _, b := range bufs {
		t.release(b)
	}
}

func (t *Transport) rescueRelease() {
	if r := recover(); r != nil {
		_ = t.recovered(nil, -1, "a Buffer's Releaser", r, debug.Stack())
	}
}

// Outer guards of the gnet adapters. gnet calls OnOpen and OnTraffic only from its own
// dispatch (never from inside one of ours), so the bookkeeping they start from is the idle
// one; OnClose may be nested (a close from loop.exit, a write error inside a handler), so it
// restores what it found.

// rescueOpen is deferred by events.OnOpen.
func (es *engineState) rescueOpen(gc gnetv2.Conn, act *gnetv2.Action) {
	r := recover()
	if r == nil {
		return
	}
	stack := debug.Stack()
	*act = gnetv2.Close
	w, ok := gc.Context().(*conn)
	if !ok {
		_ = es.t.recovered(nil, -1, "gnet OnOpen", r, stack)
		return
	}
	w.l.rescueDispatch(w, "gnet OnOpen", r, stack, act)
}

// rescueTraffic is deferred by events.OnTraffic.
func (l *loop) rescueTraffic(w *conn, act *gnetv2.Action) {
	if r := recover(); r != nil {
		l.rescueDispatch(w, "gnet OnTraffic", r, debug.Stack(), act)
	}
}

// rescueDispatch closes w, whose gnet OnOpen or OnTraffic dispatch panicked, by returning
// gnet.Close.
func (l *loop) rescueDispatch(w *conn, where string, r any, stack []byte, act *gnetv2.Action) {
	l.restore(mark{cur: w})
	l.curClose = false
	l.panicked(w, where, r, stack) // closing cur sets curClose
	l.cur = nil
	if l.curClose || w.closed() {
		*act = gnetv2.Close
	}
	l.curClose = false
}

// rescueClose is deferred by events.OnClose: w is finalized with the panic unless it was.
func (l *loop) rescueClose(w *conn, m mark) {
	r := recover()
	if r == nil {
		return
	}
	l.restore(m)
	err := l.t.recovered(w, l.id, "gnet OnClose", r, debug.Stack())
	w.flags &^= fInGnetClose
	w.finalize(w.reasonOr(err))
}
