//go:build linux

package netpoll

// This is the only file that reaches into unexported state of github.com/cloudwego/netpoll. It
// is written against the pinned v0.7.2 layout and checked twice: resolveLayout validates every
// field it uses by name and type through reflect before anything is touched (a mismatch makes
// the transport fall back to soft pause, see README.md), and layout_test.go fails loudly when
// the layout changes. What it reaches, and why:
//
//   - connection.operator (*FDOperator) and FDOperator.poll (*defaultPoll, its epoll fd): to
//     take the connection off netpoll's epoll instance while reading is paused and put it back
//     on resume. netpoll cannot pause reading (cloudwego/netpoll#422); with this, PauseRead
//     really stops reading and TCP flow control pushes back on the peer.
//   - FDOperator.state: the CAS flag netpoll's poller and connection.Release use to own an
//     operator; taking it lets us wrap the exported Inputs/InputAck hooks (to cap one read and
//     stop reading while the handler is far behind) of an operator that is already registered
//     (dialed connections) without a data race.
//   - connection.readTrigger: the channel a blocked Reader().Peek waits on, to wake our reader
//     task when a pause is lifted without new bytes arriving.
//   - connection.bookSize and connection.maxSize: the size of one read and of the next input
//     node netpoll allocates. netpoll grows them with what a connection buffers (up to 8 MiB
//     per node, two such nodes live at once for a slow consumer); we keep both at the read
//     chunk, so an input node never outgrows one read.
//
// The epoll registration data must be what netpoll's setOperator writes: the *FDOperator in
// normal builds, the fd under -race (netpoll keeps a map then); see race.go / norace.go.

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	np "github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"
)

// errWake is sent on a connection's readTrigger to end a blocking Peek early. Only our reader
// task ever waits on that channel (we never use netpoll's blocking reads otherwise).
var errWake = errors.New("reactor/netpoll: reader wake-up")

// layout holds the offsets resolved from the pinned netpoll version.
type layout struct {
	connOperator    uintptr // connection.operator
	connReadTrigger uintptr // connection.readTrigger
	connBookSize    uintptr // connection.bookSize
	connMaxSize     uintptr // connection.maxSize
	opPoll          uintptr // FDOperator.poll
	opState         uintptr // FDOperator.state
	pollFD          uintptr // defaultPoll.fd (resolved from the first poller seen)
	pollType        reflect.Type
}

var (
	layoutOnce sync.Once
	theLayout  layout
	layoutErr  error

	pollOnce sync.Once
	pollErr  error
)

// field returns the offset of t's field name after checking its type's string form.
func field(t reflect.Type, name, typ string) (uintptr, error) {
	f, ok := t.FieldByName(name)
	if !ok {
		return 0, fmt.Errorf("%s has no field %s", t, name)
	}
	if len(f.Index) != 1 {
		return 0, fmt.Errorf("%s.%s is promoted, want a direct field", t, name)
	}
	if got := f.Type.String(); got != typ {
		return 0, fmt.Errorf("%s.%s has type %s, want %s", t, name, got, typ)
	}
	return f.Offset, nil
}

// resolveLayout checks the static part of the layout once per process.
func resolveLayout() (*layout, error) {
	layoutOnce.Do(func() {
		layoutErr = func() error {
			tc := reflect.TypeOf(np.TCPConnection{})
			if tc.NumField() < 1 || tc.Field(0).Name != "connection" || !tc.Field(0).Anonymous ||
				tc.Field(0).Offset != 0 {
				return errors.New("netpoll.TCPConnection does not start with an embedded connection")
			}
			conn := tc.Field(0).Type
			var err error
			if theLayout.connOperator, err = field(conn, "operator", "*netpoll.FDOperator"); err != nil {
				return err
			}
			if theLayout.connReadTrigger, err = field(conn, "readTrigger", "chan error"); err != nil {
				return err
			}
			if theLayout.connBookSize, err = field(conn, "bookSize", "int"); err != nil {
				return err
			}
			if theLayout.connMaxSize, err = field(conn, "maxSize", "int"); err != nil {
				return err
			}
			op := reflect.TypeOf(np.FDOperator{})
			if theLayout.opPoll, err = field(op, "poll", "netpoll.Poll"); err != nil {
				return err
			}
			if theLayout.opState, err = field(op, "state", "int32"); err != nil {
				return err
			}
			return nil
		}()
		if layoutErr != nil {
			layoutErr = fmt.Errorf("%w: %v", ErrLayout, layoutErr)
		}
	})
	return &theLayout, layoutErr
}

// resolvePoll checks the poller's dynamic type on the first connection.
func (l *layout) resolvePoll(p np.Poll) error {
	pollOnce.Do(func() {
		t := reflect.TypeOf(p)
		if t == nil || t.Kind() != reflect.Pointer || t.Elem().Name() != "defaultPoll" {
			pollErr = fmt.Errorf("%w: poller is %v, want *netpoll.defaultPoll", ErrLayout, t)
			return
		}
		off, err := field(t.Elem(), "fd", "int")
		if err != nil {
			pollErr = fmt.Errorf("%w: %v", ErrLayout, err)
			return
		}
		l.pollFD, l.pollType = off, t
	})
	if pollErr == nil && reflect.TypeOf(p) != l.pollType {
		return fmt.Errorf("%w: poller type changed to %T", ErrLayout, p)
	}
	return pollErr
}

// connBase returns the address of the netpoll connection struct behind nc: a *connection for
// accepted connections, a *TCPConnection (which embeds it at offset 0) for dialed ones.
func connBase(nc np.Connection) (unsafe.Pointer, error) {
	v := reflect.ValueOf(nc)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, fmt.Errorf("%w: connection is %T", ErrLayout, nc)
	}
	switch name := v.Type().Elem().Name(); name {
	case "connection", "TCPConnection":
		return v.UnsafePointer(), nil
	default:
		return nil, fmt.Errorf("%w: connection type %T", ErrLayout, nc)
	}
}

// hooks is our handle on one connection's netpoll internals.
type hooks struct {
	op      *np.FDOperator
	epfd    int        // the epoll instance of the poller the connection is registered with
	fd      int        // the connection's socket
	trigger chan error // connection.readTrigger
	// connection.bookSize and connection.maxSize: written only while the operator is owned
	// (inside Inputs, which netpoll's poller calls between FDOperator.do and done).
	bookSize, maxSize *int
	// py is the yield owed by the poller of epfd (see wrapInput).
	py *pollerYield
}

// pollerYield is what one netpoll poller owes the reader tasks its reads readied: a yield of
// its P, paid at its next read of a connection.
//
// netpoll's poller yields only when epoll_wait(0) finds nothing, and then blocks in
// epoll_wait(-1) through a system call that keeps its P. With one P (Strait's choice for
// netpoll) a task readied before that waits in the run queue until sysmon takes the P back,
// 10-20 ms once sysmon has backed off; and a poller kept busy by arriving events does not
// yield at all. Paying the yield at the next read runs those tasks at once. On one core,
// HTTP/1.1 proxying went from 21-29k to 30-33k req/s and its p99 from 4-20 ms to 4-5 ms at 64
// connections (wrk, A/B runs; see README.md).
//
// The yield is not paid inside the InputAck that readied the task: the poller owns that
// connection's operator until the read is handled, and a task that finishes meanwhile cannot
// take the operator in connection.Release to free its drained input node, so every idle
// connection kept one (4 KiB more per idle connection).
type pollerYield struct{ owed atomic.Bool }

// attach resolves the hooks of nc. It reads fields netpoll set before nc was handed to us
// (in OnPrepare or after DialConnection returned), so the reads do not race.
func attach(nc np.Connection, fd int) (*hooks, error) {
	l, err := resolveLayout()
	if err != nil {
		return nil, err
	}
	base, err := connBase(nc)
	if err != nil {
		return nil, err
	}
	op := *(**np.FDOperator)(unsafe.Add(base, l.connOperator))
	if op == nil || op.FD != fd {
		return nil, fmt.Errorf("%w: operator does not belong to fd %d", ErrLayout, fd)
	}
	p := *(*np.Poll)(unsafe.Add(unsafe.Pointer(op), l.opPoll))
	if err := l.resolvePoll(p); err != nil {
		return nil, err
	}
	pp := reflect.ValueOf(p).UnsafePointer()
	h := &hooks{
		op:       op,
		epfd:     *(*int)(unsafe.Add(pp, l.pollFD)),
		fd:       fd,
		trigger:  *(*chan error)(unsafe.Add(base, l.connReadTrigger)),
		bookSize: (*int)(unsafe.Add(base, l.connBookSize)),
		maxSize:  (*int)(unsafe.Add(base, l.connMaxSize)),
	}
	if h.trigger == nil || h.epfd <= 0 {
		return nil, fmt.Errorf("%w: connection not initialised", ErrLayout)
	}
	return h, nil
}

// wrapInput replaces the operator's Inputs and InputAck with versions that cap one read at
// chunk bytes and call after once a read was accounted. registered says whether the operator
// is already on a poller: then the operator is taken with netpoll's own CAS flag first, exactly
// as connection.Release does, so the poller never sees a half-written hook.
func (h *hooks) wrapInput(registered bool, chunk int, after func()) bool {
	state := (*int32)(unsafe.Add(unsafe.Pointer(h.op), theLayout.opState))
	if registered {
		for !atomic.CompareAndSwapInt32(state, 1, 2) {
			if atomic.LoadInt32(state) == 0 { // freed: the connection is already gone
				return false
			}
			runtime.Gosched()
		}
		defer atomic.StoreInt32(state, 1)
	}
	inputs, ack := h.op.Inputs, h.op.InputAck
	if inputs == nil || ack == nil {
		return false
	}
	py := h.py
	h.op.Inputs = func(vs [][]byte) [][]byte {
		if py != nil && py.owed.Load() {
			py.owed.Store(false)
			runtime.Gosched()
		}
		// netpoll allocates a new input node of maxSize and reads bookSize into it; both grow
		// with what the connection buffers (and Release raises maxSize). Keep them at one
		// chunk: nodes stay one read long however far behind the handler is.
		*h.bookSize = min(*h.bookSize, chunk)
		*h.maxSize = min(*h.maxSize, chunk)
		rs := inputs(vs)
		if len(rs) > 0 && len(rs[0]) > chunk {
			rs[0] = rs[0][:chunk] // bookAck trims the node to what was really read
		}
		return rs
	}
	h.op.InputAck = func(n int) error {
		err := ack(n)
		if n > 0 {
			after()
			if py != nil {
				py.owed.Store(true)
			}
		}
		return err
	}
	return true
}

// setReadInterest adds the connection to, or removes it from, netpoll's epoll instance. On is
// exactly netpoll's PollReadable registration (EPOLLIN|EPOLLRDHUP|EPOLLERR, level triggered,
// the event data netpoll's poller expects). Off removes it: merely masking EPOLLIN is not
// enough, because EPOLLHUP (reported whatever the mask) would make netpoll close the
// connection without reading what is still in the socket. The caller guarantees the fd is
// still netpoll's (see conn.imu). We never use netpoll's writer, so netpoll itself never
// modifies this registration after adding it, except to remove it on close (see quiet).
func (h *hooks) setReadInterest(on bool) error {
	if !on {
		return unix.EpollCtl(h.epfd, unix.EPOLL_CTL_DEL, h.fd, nil)
	}
	return h.add(unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLERR)
}

// quiet registers a removed connection again without read interest, so netpoll's own removal
// when we close it finds the registration it expects.
func (h *hooks) quiet() error { return h.add(unix.EPOLLERR) }

func (h *hooks) add(events uint32) error {
	ev := unix.EpollEvent{Events: events}
	if raceEnabled {
		ev.Fd = int32(h.fd)
	} else {
		p := uint64(uintptr(unsafe.Pointer(h.op)))
		ev.Fd, ev.Pad = int32(uint32(p)), int32(uint32(p>>32))
	}
	return unix.EpollCtl(h.epfd, unix.EPOLL_CTL_ADD, h.fd, &ev)
}

// wake makes a Peek blocked on the connection return errWake. A trigger already pending is
// replaced: the waiter re-checks the connection's state after every wake-up anyway.
func (h *hooks) wake() {
	for range 4 {
		select {
		case h.trigger <- errWake:
			return
		default:
		}
		select {
		case <-h.trigger:
		default:
		}
	}
}
