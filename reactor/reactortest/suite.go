// Package reactortest is the conformance suite every reactor.Transport backend must pass
// (reactor/gnet, reactor/netpoll and stdnet). It owns nothing but tests: Run drives a backend
// through real TCP sockets on 127.0.0.1, with the client side written on plain net.Conn, and
// asserts what a user of the transport would see: the bytes that arrive, the close reasons
// handlers receive, the memory a slow peer can pin.
//
// Who may call it: a backend's own test, as
//
//	func TestConformance(t *testing.T) {
//		reactortest.Run(t, func(t *testing.T, o reactor.Options) reactor.Transport {
//			tr, err := New(o)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { tr.Close() })
//			return tr
//		})
//	}
//
// Besides each test's own assertions, every handler the suite installs is wrapped by a monitor
// that checks the contract's invariants on every connection: OnOpen first and once, none
// after OnClose, a stable ExecutorID, no two callbacks of one executor running at the same
// time on different goroutines, and exactly one OnClose for every connection that was opened,
// at the latest once the transport is closed. Exec functions, and the two sides of the
// forwarding test, share unsynchronised state with callbacks, so run the suite with -race.
//
// Expectations the contract leaves implicit and the suite pins down:
//   - Transport.Close may be called more than once (newTransport's cleanup calls it again);
//     Listen and Dial after Close fail.
//   - Send always takes ownership: on a closed connection it returns an error wrapping
//     reactor.ErrClosed and the Buffer is released anyway.
//   - A peer reset surfaces as an OnClose error wrapping reactor.ErrPeerReset; Close(reason)
//     and Abort(reason) report reason (wrapped or as is) to OnClose.
//   - Once the peer's FIN was seen (OnPeerClose returned true) and the handler calls
//     CloseWrite, the connection closes by itself with nil or ErrPeerClosed.
//   - MaxConns refuses without calling OnOpen.
//   - A timer function (Conn.Schedule) runs on the executor like a callback: the monitor
//     checks it never overlaps one there.
//   - A panic in a handler callback or an Exec function closes only its connection, with a
//     non-nil OnClose reason whose text contains the panic value; the process survives and the
//     executor keeps serving its other connections.
package reactortest

import (
	"testing"

	"github.com/strait-proxy/strait/reactor"
)

// NewTransportFunc builds a fresh transport with the given options and registers its Close
// with t.Cleanup.
type NewTransportFunc func(t *testing.T, o reactor.Options) reactor.Transport

// Run runs every conformance test against transports made by newTransport. Each subtest makes
// its own transport.
func Run(t *testing.T, newTransport func(t *testing.T, o reactor.Options) reactor.Transport) {
	s := &suite{newTransport: newTransport}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Echo", s.testEcho},                         // 1
		{"Transfer", s.testTransfer},                 // 2
		{"SlowReader", s.testSlowReader},             // 3
		{"Forward", s.testForward},                   // 4
		{"HalfClose", s.testHalfClose},               // 5
		{"Reset", s.testReset},                       // 6
		{"CloseDuringWrite", s.testCloseDuringWrite}, // 7
		{"ManyConns", s.testManyConns},               // 8
		{"Dial", s.testDial},                         // 9
		{"Timeouts", s.testTimeouts},                 // 10
		{"ExecSend", s.testExecSend},                 // 11
		{"Lifecycle", s.testLifecycle},               // 12
		{"MaxConns", s.testMaxConns},                 // 13
		{"Executors", s.testExecutors},               // 14: fixed executor set, ExecutorID
		{"HandlerPanic", s.testHandlerPanic},         // 15: a panicking handler ends only its conn
		{"ResumeRedelivers", s.testResumeRedelivers}, // 16: pause + immediate resume re-delivers held bytes
		{"Timers", s.testTimers},                     // 17: Conn.Schedule / Unschedule on the executor's wheel
	} {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	newTransport NewTransportFunc
}
