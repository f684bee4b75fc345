// Package netpoll is Strait's reactor.Transport on github.com/cloudwego/netpoll v0.7.2: netpoll's
// pollers read every connection into its ref-counted LinkBuffer and run one pooled reader task
// per busy connection; this package turns that into the reactor contract (executors, views,
// watermarks, half-close, timeouts).
//
// Who may call it: cmd/strait registers New as the "netpoll" reactor.Factory; tests use it
// directly. Everything else programs against the reactor interfaces.
//
// What it owns, in short (README.md has the full mapping and the measurements):
//
//   - Executors: Options.Loops of them, each a mutex plus a FIFO queue drained by pooled
//     goroutines. A connection's netpoll task takes its executor's mutex only to run OnOpen and
//     OnData; everything else (Exec, OnWritable, OnPeerClose, OnClose, dial completions) goes
//     through the queue.
//   - Reading: netpoll's LinkBuffer is the View (Peek/Skip, Detach = a ref-counted Slice). The
//     task never returns with unconsumed bytes (netpoll would spin): it blocks in Peek(len+1),
//     or on a wake-up channel while paused.
//   - PauseRead is real: read interest is dropped from the connection's epoll registration
//     (layout.go, the only file touching netpoll's unexported state), and the poller's reads are
//     capped per read and by a read-ahead limit, so a slow consumer pushes back through TCP.
//   - Writing bypasses netpoll's writer (whose Flush blocks until drained): a non-blocking
//     sendmsg straight from the caller, the remainder queued and flushed by this package's own
//     write poller (an epoll instance per executor waiting for EPOLLOUT).
//   - Half-close: when the peer's FIN makes netpoll close the connection, the socket is dup'ed
//     first so the write side lives on until the handler calls CloseWrite or Close.
//
// Process-wide netpoll settings (poller count, input buffer size, LinkBufferCap, the task
// runner) are fixed by the first New in a process; see New.
package netpoll
