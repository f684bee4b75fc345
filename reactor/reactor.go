// Package reactor owns Strait's event model: the Transport, Conn and Handler contract that every
// I/O backend implements (reactor/gnet, reactor/netpoll and the classic stdnet package), the
// owned Buffer type that crosses goroutines, watermarks, and the timing wheel each executor
// owns for idle and read timeouts and for handler timers (Conn.Schedule).
//
// Who may call it: pipeline/ and protocol/ program against these interfaces only; cmd/strait is
// the one place that picks a concrete backend. Backends never import each other.
//
// # Executors
//
// Every Conn belongs to an executor: a serialization domain in which its Handler callbacks and
// every function passed to Exec run one at a time. Connections dialed "near" another connection
// (Transport.Dial with a non-nil near) share that connection's executor, so a handler running for
// one of them may call executor-bound methods on the other directly: this is how a proxy forwards
// bytes from the downstream's read view to the upstream's write side without a copy or a hop.
// Executors are a fixed set per transport, Options.Loops of them (per listener engine on gnet):
// each accepted connection is assigned to one (round robin), and a connection dialed with a nil
// near is assigned the same way. On gnet the executor is the event loop; on netpoll and stdnet
// it is a mutex plus a FIFO queue drained by pooled goroutines, while each connection still has
// its own reader (netpoll's task, stdnet's goroutine) that takes the executor's lock only to run
// callbacks. Conn.ExecutorID identifies the executor, so handlers can keep per-executor state
// (upstream connection pools) that is only ever touched from that executor, without locks.
//
// # Buffer ownership
//
//   - A View passed to Handler.OnData is valid only until OnData returns. Bytes that must outlive
//     it are taken with View.Detach, which returns an owned *Buffer.
//   - Conn.Write and Conn.Writev send or copy before they return: the caller may reuse or
//     release its slices immediately, and they may alias a View.
//   - Conn.Send takes ownership of a *Buffer and releases it once the bytes have left user
//     space or the connection closed.
//
// # Back-pressure
//
// Outbound bytes a Conn could not hand to the kernel are queued; when the queue grows past the
// transport's high watermark, Congested reports true until it drains below the low watermark,
// at which point Handler.OnWritable runs. A forwarding handler stops consuming its source while
// the destination is congested and pauses the source with PauseRead. Backends that cannot stop
// reading from the socket (gnet, netpoll) keep buffering but stop delivering; when a paused
// connection's unconsumed inbound bytes exceed Options.MaxReadBuffer it is closed with
// ErrReadBufferOverflow, so memory stays bounded either way.
//
// # Timers
//
// Conn.Schedule arms a Timer on the timing wheel of the connection's executor, the same wheel
// that runs idle and read timeouts; handler code uses it for per-request deadlines (route,
// per-try and stream idle timeouts) instead of time.AfterFunc plus Exec, which costs
// allocations and a goroutine hop per request. The rules:
//   - The timer belongs to the executor, not to the connection: fn runs on the executor,
//     serialized with every callback and Exec function there, even if the connection it was
//     armed through closed meanwhile. A timer armed through one connection may be moved or
//     stopped through any connection with the same ExecutorID; while it is armed it must not
//     be touched through a connection of another executor (a detected misuse panics).
//   - Resolution is Options.TimerTick. fn runs no earlier than d, and no earlier than one
//     tick, after Schedule was called; on an executor that keeps up it runs less than two ticks
//     after that. Timers of one executor fire in the order of their deadlines (the time of
//     the Schedule call plus d); equal deadlines fire in the order they were armed.
//   - Unschedule, or a new Schedule, takes effect at once: once it returned the old arming
//     never fires, even if it came due and was waiting for the executor.
//   - fn may Schedule and Unschedule timers, itself included. A panic in fn is recovered and
//     logged (Options.Logger); no connection is closed for it.
//   - Arming and stopping allocate nothing when t lives in the caller's memory and fn is a
//     function value made once (a method value stored at setup, not a new closure per call).
//   - An executor with nothing armed does no timer work: its wheel only moves while timers
//     are armed, whether or not any of its connections is active.
//   - Timers still armed when Transport.Close returns never fire.
package reactor

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// Sentinel errors shared by every backend. Backends wrap them with %w.
var (
	// ErrClosed is returned by operations on a closed connection or transport.
	ErrClosed = errors.New("reactor: connection closed")
	// ErrIdleTimeout is the close reason when no byte was read or written for the idle timeout.
	ErrIdleTimeout = errors.New("reactor: idle timeout")
	// ErrReadTimeout is the close reason when no byte was read for the read timeout.
	ErrReadTimeout = errors.New("reactor: read timeout")
	// ErrReadBufferOverflow is the close reason when unconsumed inbound bytes exceed MaxReadBuffer.
	ErrReadBufferOverflow = errors.New("reactor: inbound buffer limit exceeded")
	// ErrWriteBufferOverflow is returned (and the conn closed) when queued outbound bytes exceed
	// MaxWriteBuffer: a handler that ignored Congested.
	ErrWriteBufferOverflow = errors.New("reactor: outbound buffer limit exceeded")
	// ErrDialTimeout is reported to a dial's done callback when the connect timeout expired.
	ErrDialTimeout = errors.New("reactor: connect timeout")
	// ErrPeerReset is the close reason when the peer reset the connection (ECONNRESET/EPIPE).
	ErrPeerReset = errors.New("reactor: connection reset by peer")
	// ErrPeerClosed is the close reason when the peer closed and the handler did not keep the
	// write side open (OnPeerClose returned false), or both directions finished.
	ErrPeerClosed = errors.New("reactor: closed by peer")
	// ErrTransportClosed is the close reason for connections torn down by Transport.Close.
	ErrTransportClosed = errors.New("reactor: transport closed")
)

// Transport is one I/O backend. Implementations: reactor/gnet, reactor/netpoll, stdnet.
type Transport interface {
	// Name is the backend's name as used by --transport ("gnet", "netpoll", "stdnet").
	Name() string
	// Listen binds a TCP address ("127.0.0.1:8080", port 0 allowed) and serves each accepted
	// connection with h. It returns once the socket is bound: an error means nothing listens.
	Listen(addr string, h Handler) (Listener, error)
	// Dial connects to addr and serves the new connection with h. When near is non-nil the new
	// connection joins near's executor (see the package doc) and done runs there; with a nil
	// near, done runs on the new connection's executor or, on failure, on a pooled goroutine.
	// h.OnOpen runs before done is called with the connection. A connect that has not completed
	// within timeout (0 means the transport default) reports an error wrapping ErrDialTimeout.
	// Dial never blocks the caller.
	Dial(near Conn, addr string, timeout time.Duration, h Handler, done func(Conn, error))
	// Close stops all listeners and closes every connection with ErrTransportClosed.
	Close() error
}

// Listener is a bound listening socket.
type Listener interface {
	Addr() net.Addr
	// Close stops accepting new connections; established connections are not affected.
	Close() error
}

// Handler receives a connection's events. One Handler value usually serves many connections
// and keeps per-connection state in Conn.Context. Every method runs on the connection's
// executor, never concurrently with another callback or Exec function of the same executor,
// and must not block.
type Handler interface {
	// OnOpen runs once, before any other callback.
	OnOpen(c Conn)
	// OnData delivers the unconsumed inbound bytes. The handler consumes with in.Skip or
	// in.Detach; bytes left unconsumed are delivered again, together with newer bytes, on the
	// next call. OnData is not called while reading is paused.
	OnData(c Conn, in View)
	// OnWritable runs when queued outbound bytes fell below the low watermark after Congested
	// had reported true.
	OnWritable(c Conn)
	// OnPeerClose runs when the peer shut down its write side (read EOF). It never overtakes
	// data: it runs after the OnData call that delivered the last bytes, and while reading is
	// paused it is deferred until PauseRead(false) and the OnData that re-delivers what was
	// buffered. Bytes the handler still leaves unconsumed then are the peer's truncated tail.
	// Returning true keeps this side's write direction open until
	// the handler calls CloseWrite or Close (a TCP half-close); returning false closes the
	// connection with ErrPeerClosed.
	OnPeerClose(c Conn) bool
	// OnClose runs exactly once when the connection is gone; err is the reason (nil for a
	// local Close(nil)). The Conn must not be used afterwards, except that Send, Exec and Close
	// keep failing safely and Schedule and Unschedule keep working (timers belong to the
	// executor).
	OnClose(c Conn, err error)
}

// View is the unconsumed inbound bytes of a connection, valid only inside Handler.OnData. It
// is a snapshot taken when OnData is called: bytes arriving meanwhile come with the next call.
// A backend may offer fewer bytes than it holds (bounded read-ahead), as long as repeated
// calls make progress.
type View interface {
	// Len is the number of unconsumed bytes.
	Len() int
	// Peek returns the first n unconsumed bytes as one contiguous slice without consuming
	// them; n <= 0 or n > Len() means all of them. The slice may be a copy when the bytes span
	// internal segments, and is valid only until OnData returns or the next Skip or Detach.
	Peek(n int) []byte
	// Skip consumes n bytes (n is clamped to Len()).
	Skip(n int)
	// Detach consumes n bytes (clamped to Len()) and returns them as an owned Buffer, without
	// a copy where the backend allows (netpoll) and with one pooled copy otherwise.
	Detach(n int) *Buffer
}

// Conn is one TCP connection. Methods marked "executor" may be called only from the
// connection's executor (its Handler callbacks, its Exec functions, and those of connections
// dialed near it); the others are safe from any goroutine.
type Conn interface {
	// ID is unique per process for the lifetime of the transport.
	ID() uint64
	// ExecutorID identifies the connection's executor: equal IDs (from the same transport)
	// mean callbacks are serialized with each other and executor-bound methods of one
	// connection may be called from the other's callbacks. IDs are small dense integers
	// starting at 0, stable for the connection's lifetime.
	ExecutorID() int
	LocalAddr() net.Addr
	RemoteAddr() net.Addr

	// Write sends p, queueing what the kernel did not take (copied); p may be reused as soon
	// as Write returns. Executor.
	Write(p []byte) error
	// Writev is Write for a vector of slices, sent with one writev where possible. Executor.
	Writev(bufs [][]byte) error
	// Outbound is the number of bytes queued and not yet handed to the kernel. Executor.
	Outbound() int
	// Congested reports whether Outbound crossed the high watermark and has not yet fallen
	// below the low watermark. Executor.
	Congested() bool
	// PauseRead stops (true) or resumes (false) delivering OnData. Resuming re-delivers bytes
	// that were buffered meanwhile. Where the backend can, pausing also stops reading from the
	// socket so TCP flow control pushes back on the peer; otherwise inbound bytes are buffered
	// up to Options.MaxReadBuffer. Executor.
	PauseRead(paused bool)
	// CloseWrite flushes queued bytes and then shuts down the write direction (TCP FIN);
	// reading continues. Executor.
	CloseWrite() error
	// SetIdleTimeout closes the connection with ErrIdleTimeout when no byte was read or
	// written for d (time spent paused counts); 0 disables it. The check runs on the
	// executor's timing wheel every quarter of d, so the close happens between d and 1.25 d
	// (plus one wheel tick). Executor.
	SetIdleTimeout(d time.Duration)
	// SetReadTimeout closes the connection with ErrReadTimeout when no byte was read for d;
	// 0 disables it. Executor.
	SetReadTimeout(d time.Duration)
	// Schedule arms t to run fn on this connection's executor after d (rounded up to the
	// wheel's tick; at least one tick). Re-scheduling an armed t moves it. fn runs on the
	// executor even if the connection closed meanwhile, unless the timer was stopped; t may be
	// embedded in the caller's struct, so arming allocates nothing. Executor.
	//
	// Resolution is Options.TimerTick (default 10 ms): fn never runs before d (nor before
	// one tick) has passed since the call, and on an executor that is not overloaded it runs
	// less than two ticks after that. See "Timers" in the package doc.
	Schedule(t *Timer, d time.Duration, fn func())
	// Unschedule disarms t; it reports whether t was armed. Once it returns, fn does not run
	// (a timer that came due but whose fn has not started yet counts as armed). Executor.
	Unschedule(t *Timer) bool
	// Context returns the value stored with SetContext. Executor.
	Context() any
	// SetContext stores per-connection handler state. Executor.
	SetContext(v any)

	// Send queues an owned Buffer for writing and takes ownership of it, also when it fails
	// (ErrClosed): the buffer is released after its bytes left user space or when the
	// connection closed. Any goroutine.
	Send(b *Buffer) error
	// Exec runs fn on the connection's executor, after callbacks already running. It returns
	// false (and does not run fn) if the connection is already closed. Any goroutine.
	Exec(fn func()) bool
	// Close flushes queued outbound bytes (bounded by Options.CloseFlushTimeout) and closes.
	// reason is reported to OnClose. Any goroutine; later calls are no-ops.
	Close(reason error)
	// Abort closes at once, discarding queued bytes, with a TCP reset (SO_LINGER 0).
	// Any goroutine.
	Abort(reason error)
}

// Options configure a backend. The zero value of each field selects its default.
type Options struct {
	// Loops is the number of event loops (gnet) or pollers (netpoll); stdnet ignores it.
	// Default 1.
	Loops int
	// ReadBufferSize is the per-read buffer: gnet's per-loop buffer, netpoll's input node
	// size, stdnet's pooled read buffer. Default 16 KiB.
	ReadBufferSize int
	// HighWatermark and LowWatermark bound queued outbound bytes per connection (see
	// Conn.Congested). Defaults 1 MiB and 256 KiB.
	HighWatermark int
	LowWatermark  int
	// MaxReadBuffer is the most unconsumed inbound bytes held for one connection before it is
	// closed with ErrReadBufferOverflow. Default 4 MiB.
	MaxReadBuffer int
	// MaxWriteBuffer is the most queued outbound bytes before the connection is closed with
	// ErrWriteBufferOverflow. Default 64 MiB.
	MaxWriteBuffer int
	// DialTimeout is the connect timeout used when Dial is given 0. Default 5s.
	DialTimeout time.Duration
	// CloseFlushTimeout bounds how long Close waits for queued bytes to drain. Default 5s.
	CloseFlushTimeout time.Duration
	// TimerTick is the resolution of each executor's timing wheel, which runs idle and read
	// timeouts and Conn.Schedule timers (those fire never before their deadline and, on an
	// executor that keeps up, less than two ticks after it). The backend's ticker wakes once
	// per tick; an executor with nothing armed does no work on it. Default 10ms: fine enough
	// for per-try timeouts of tens of milliseconds, and the ticker runs only while timers are
	// armed.
	TimerTick time.Duration
	// MaxConns caps concurrently open connections; past it new accepted connections are
	// closed at once, without OnOpen. Dialed connections count towards the cap but are never
	// refused (the downstream that needs them is already admitted). 0 means no cap.
	MaxConns int
	// Logger receives the backend's own errors and recovered panics; nil means slog.Default().
	Logger *slog.Logger
	// Runner runs handler work off an event loop (netpoll and stdnet executors, gnet's
	// dial completions). It must recover panics. Nil means a bounded gopool created by the
	// backend.
	Runner func(fn func())
}

// Defaults for Options fields.
const (
	DefaultReadBufferSize    = 16 << 10
	DefaultHighWatermark     = 1 << 20
	DefaultLowWatermark      = 256 << 10
	DefaultMaxReadBuffer     = 4 << 20
	DefaultMaxWriteBuffer    = 64 << 20
	DefaultDialTimeout       = 5 * time.Second
	DefaultCloseFlushTimeout = 5 * time.Second
	DefaultTimerTick         = 10 * time.Millisecond
)

// WithDefaults returns o with every zero field set to its default, and LowWatermark clamped
// below HighWatermark.
func (o Options) WithDefaults() Options {
	if o.Loops <= 0 {
		o.Loops = 1
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	if o.HighWatermark <= 0 {
		o.HighWatermark = DefaultHighWatermark
	}
	if o.LowWatermark <= 0 {
		o.LowWatermark = DefaultLowWatermark
	}
	if o.LowWatermark >= o.HighWatermark {
		o.LowWatermark = o.HighWatermark / 4
	}
	if o.MaxReadBuffer <= 0 {
		o.MaxReadBuffer = DefaultMaxReadBuffer
	}
	if o.MaxWriteBuffer <= 0 {
		o.MaxWriteBuffer = DefaultMaxWriteBuffer
	}
	if o.MaxWriteBuffer < o.HighWatermark {
		o.MaxWriteBuffer = o.HighWatermark
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.CloseFlushTimeout <= 0 {
		o.CloseFlushTimeout = DefaultCloseFlushTimeout
	}
	if o.TimerTick <= 0 {
		o.TimerTick = DefaultTimerTick
	}
	return o
}

// Validate reports options that cannot work together.
func (o Options) Validate() error {
	if o.Loops < 0 || o.ReadBufferSize < 0 || o.HighWatermark < 0 || o.LowWatermark < 0 ||
		o.MaxReadBuffer < 0 || o.MaxWriteBuffer < 0 || o.MaxConns < 0 {
		return errors.New("reactor: options must not be negative")
	}
	if o.HighWatermark > 0 && o.LowWatermark > 0 && o.LowWatermark >= o.HighWatermark {
		return errors.New("reactor: low watermark must be below the high watermark")
	}
	return nil
}

// Factory builds a Transport from options. cmd/strait keeps a registry of factories by name.
type Factory func(Options) (Transport, error)

// Log returns o.Logger, or slog.Default() when it is nil.
func (o Options) Log() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}
