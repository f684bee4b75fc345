//go:build linux

package netpoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	np "github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"

	"github.com/strait-proxy/strait/reactor"
)

// listener is both the reactor.Listener handed to the caller and the netpoll.Listener that
// netpoll's EventLoop serves (ConvertListener passes a netpoll.Listener through unchanged), so
// accepting stays in our hands: MaxConns is enforced before netpoll sees a socket, and Close
// can stop netpoll's server without netpoll's Shutdown, which would also close idle
// established connections.
type listener struct {
	t      *transport
	h      reactor.Handler
	fd     int
	addr   net.Addr
	closed atomic.Bool
	served chan struct{} // closed when EventLoop.Serve returned
	once   sync.Once
}

var (
	_ reactor.Listener = (*listener)(nil)
	_ np.Listener      = (*listener)(nil)
)

// Listen binds addr and serves it on a netpoll EventLoop.
func (t *transport) Listen(addr string, h reactor.Handler) (reactor.Listener, error) {
	if t.closed.Load() {
		return nil, fmt.Errorf("reactor/netpoll: listen %s: %w", addr, reactor.ErrTransportClosed)
	}
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("reactor/netpoll: %w", err)
	}
	// Keep our own descriptor of the socket (the runtime's one is closed right away, taking it
	// off Go's poller); it stays non-blocking.
	fd := -1
	var derr error
	if sc, err := nl.(*net.TCPListener).SyscallConn(); err != nil {
		derr = err
	} else if err := sc.Control(func(s uintptr) { fd, derr = dupFD(int(s)) }); err != nil {
		derr = err
	}
	laddr := nl.Addr()
	_ = nl.Close()
	if derr != nil {
		return nil, fmt.Errorf("reactor/netpoll: listen %s: %w", addr, derr)
	}
	l := &listener{t: t, h: h, fd: fd, addr: laddr, served: make(chan struct{})}
	evl, err := np.NewEventLoop(serveAccepted,
		np.WithOnPrepare(l.onPrepare),
		np.WithOnConnect(onConnect),
		np.WithOnDisconnect(onDisconnect))
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("reactor/netpoll: %w", err)
	}
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		_ = unix.Close(fd)
		return nil, fmt.Errorf("reactor/netpoll: listen %s: %w", addr, reactor.ErrTransportClosed)
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	go func() {
		defer close(l.served)
		_ = evl.Serve(l)
	}()
	return l, nil
}

// Accept is called by netpoll's server on the poller when the socket is readable. It returns
// (nil, nil) for "nothing now", which is also how a closed listener goes quiet.
func (l *listener) Accept() (net.Conn, error) {
	for {
		if l.closed.Load() {
			return nil, nil
		}
		fd, sa, err := unix.Accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR || err == unix.ECONNABORTED:
			if err == unix.EAGAIN {
				return nil, nil
			}
			continue
		case err != nil:
			if l.closed.Load() {
				return nil, nil
			}
			// The bare errno: netpoll's server recognises EMFILE/ENFILE and then backs off
			// (it takes the listener off its poller and retries from a goroutine).
			return nil, err
		}
		if !l.t.reserve() { // MaxConns reached (or closing): closed at once, never served
			_ = unix.Close(fd)
			continue
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		return &acceptedFD{fd: fd, laddr: l.localAddr(fd), raddr: sockaddrToTCP(sa)}, nil
	}
}

func (l *listener) localAddr(fd int) net.Addr {
	if a, ok := l.addr.(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		return a
	}
	if sa, err := unix.Getsockname(fd); err == nil {
		return sockaddrToTCP(sa)
	}
	return l.addr
}

// Fd is the listening socket (netpoll registers it with a poller).
func (l *listener) Fd() int { return l.fd }

// Addr is the bound address.
func (l *listener) Addr() net.Addr { return l.addr }

// Close stops accepting. shutdown(2) on a listening socket makes it report EPOLLHUP, on which
// netpoll's server detaches it and Serve returns; only then is the descriptor closed, so
// netpoll never touches a number that may already belong to another socket. Established
// connections are not affected.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		l.closed.Store(true)
		if e := unix.Shutdown(l.fd, unix.SHUT_RDWR); e != nil {
			err = fmt.Errorf("reactor/netpoll: close listener: %w", e)
		}
		select {
		case <-l.served:
			_ = unix.Close(l.fd)
		case <-time.After(5 * time.Second):
			// Not expected: leave the descriptor open rather than risk netpoll detaching a
			// reused number later.
			err = errors.New("reactor/netpoll: close listener: netpoll did not stop serving it")
		}
		l.t.mu.Lock()
		delete(l.t.listeners, l)
		l.t.mu.Unlock()
	})
	return err
}

// onPrepare runs in netpoll's accept path before the connection is registered with a poller.
func (l *listener) onPrepare(nc np.Connection) context.Context {
	c, err := l.t.newConn(nc, l.t.pick(), l.h, false)
	if err != nil {
		l.t.active.Add(-1)
		_ = nc.Close()
		return context.Background()
	}
	return &c.ctx
}

func connOf(ctx context.Context) *conn {
	if x, ok := ctx.(*npctx); ok {
		return x.c
	}
	return nil
}

// onConnect runs on the connection's first netpoll task, before any OnRequest.
func onConnect(ctx context.Context, _ np.Connection) context.Context {
	if c := connOf(ctx); c != nil {
		c.openAccepted()
	}
	return ctx
}

func onDisconnect(ctx context.Context, nc np.Connection) {
	if c := connOf(ctx); c != nil {
		c.onDisconnect(ctx, nc)
	}
}

func serveAccepted(ctx context.Context, nc np.Connection) error {
	if c := connOf(ctx); c != nil {
		return c.serve(ctx, nc)
	}
	// Not ours (prepare failed): drop whatever arrives and close.
	discard(nc.Reader())
	return nc.Close()
}

// acceptedFD is what Accept hands to netpoll: netpoll only uses Fd and the addresses.
type acceptedFD struct {
	fd           int
	laddr, raddr net.Addr
}

var _ np.Conn = (*acceptedFD)(nil)

func (a *acceptedFD) Fd() int                          { return a.fd }
func (a *acceptedFD) LocalAddr() net.Addr              { return a.laddr }
func (a *acceptedFD) RemoteAddr() net.Addr             { return a.raddr }
func (a *acceptedFD) Read([]byte) (int, error)         { return 0, errNotUsed }
func (a *acceptedFD) Write([]byte) (int, error)        { return 0, errNotUsed }
func (a *acceptedFD) Close() error                     { return unix.Close(a.fd) }
func (a *acceptedFD) SetDeadline(time.Time) error      { return errNotUsed }
func (a *acceptedFD) SetReadDeadline(time.Time) error  { return errNotUsed }
func (a *acceptedFD) SetWriteDeadline(time.Time) error { return errNotUsed }

var errNotUsed = errors.New("reactor/netpoll: not used")

func sockaddrToTCP(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		var zone string
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port, Zone: zone}
	}
	return nil
}
