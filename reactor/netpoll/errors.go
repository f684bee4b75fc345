package netpoll

import "errors"

// Name is the backend's name for --transport.
const Name = "netpoll"

// Sentinel errors of this backend (the reactor sentinels are used wherever they apply).
var (
	// ErrLayout reports that the linked netpoll does not have the v0.7.2 internals layout.go
	// relies on; the transport then runs with soft pause (see README.md).
	ErrLayout = errors.New("reactor/netpoll: unexpected netpoll internals")
	// ErrPanic is the close reason of a connection whose handler panicked.
	ErrPanic = errors.New("reactor/netpoll: handler panicked")
	// ErrUnsupported is returned by New where this backend does not run (it drives epoll).
	ErrUnsupported = errors.New("reactor/netpoll: only supported on linux")
)
