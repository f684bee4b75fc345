package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// ListenerConfig is one listener of a configuration snapshot.
type ListenerConfig struct {
	// Name is unique within a snapshot.
	Name string
	// Address is "ip:port" to bind.
	Address string
	// FilterChain is the network filters every connection runs, in order; the last one is
	// the terminal filter. (Filter chain matching on SNI, ALPN or addresses arrives with TLS.)
	FilterChain []NamedFilter
}

// NamedFilter is one network filter of a chain.
type NamedFilter struct {
	// Name is the filter's configured name (Envoy's `name`), used in logs and errors.
	Name   string
	Config NetworkFilterConfig
}

// Validate checks the listener and every filter's configuration.
func (c *ListenerConfig) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: listener without a name", ErrConfig)
	}
	if _, err := netip.ParseAddrPort(c.Address); err != nil {
		return fmt.Errorf("%w: listener %q: address %q: %v", ErrConfig, c.Name, c.Address, err)
	}
	if len(c.FilterChain) == 0 {
		return fmt.Errorf("%w: listener %q: empty filter chain", ErrConfig, c.Name)
	}
	for i, f := range c.FilterChain {
		if f.Config == nil {
			return fmt.Errorf("%w: listener %q: filter %d (%s) has no configuration", ErrConfig, c.Name, i, f.Name)
		}
		if err := f.Config.Validate(); err != nil {
			return fmt.Errorf("listener %q: filter %d (%s): %w", c.Name, i, f.Name, err)
		}
	}
	return nil
}

// Listener is a running listener: the bound socket plus the filter chain compiled once from
// its configuration and shared by every connection it accepts.
type Listener struct {
	cfg       ListenerConfig
	deps      *Deps
	factories []NetworkFilterFactory
	ln        reactor.Listener
	active    atomic.Int64
	total     atomic.Uint64
	log       *slog.Logger
}

// NewListener validates cfg and compiles its filter chain. Nothing is bound yet.
func NewListener(cfg ListenerConfig, deps *Deps) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps == nil || deps.Transport == nil {
		return nil, fmt.Errorf("%w: listener %q: no transport", ErrConfig, cfg.Name)
	}
	l := &Listener{cfg: cfg, deps: deps, log: deps.Logger}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("listener", cfg.Name)
	for i, f := range cfg.FilterChain {
		fac, err := f.Config.NewFactory(deps)
		if err != nil {
			return nil, fmt.Errorf("listener %q: filter %d (%s): %w", cfg.Name, i, f.Name, err)
		}
		l.factories = append(l.factories, fac)
	}
	return l, nil
}

// Name is the listener's configured name.
func (l *Listener) Name() string { return l.cfg.Name }

// Start binds the listener's address on its transport.
func (l *Listener) Start() error {
	ln, err := l.deps.Transport.Listen(l.cfg.Address, listenerHandler{l})
	if err != nil {
		return fmt.Errorf("listener %q: %w", l.cfg.Name, err)
	}
	l.ln = ln
	return nil
}

// Addr is the bound address (useful with port 0); nil before Start.
func (l *Listener) Addr() net.Addr {
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// StopAccepting closes the listening socket; open connections continue.
func (l *Listener) StopAccepting() error {
	if l.ln == nil {
		return nil
	}
	return l.ln.Close()
}

// ActiveConnections is the number of open downstream connections.
func (l *Listener) ActiveConnections() int64 { return l.active.Load() }

// TotalConnections is the number of downstream connections accepted so far.
func (l *Listener) TotalConnections() uint64 { return l.total.Load() }

// WaitIdle blocks until no connection is open or the deadline passes, and reports whether
// the listener drained.
func (l *Listener) WaitIdle(deadline time.Time) bool {
	for l.active.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Connection is one downstream connection with its filter instances. Filters receive it in
// every callback; its methods, like the reactor.Conn's executor methods, are called only from
// the connection's executor.
type Connection struct {
	conn      reactor.Conn
	listener  *Listener
	reads     []ReadFilter
	writes    []WriteFilter
	writables []WritableObserver
	closers   []CloseObserver
	half      HalfCloser
	next      int  // first read filter whose OnNewConnection has not run
	started   bool // every OnNewConnection ran with Continue
	closed    bool

	// BytesReceived and BytesSent count downstream bytes read and written.
	BytesReceived uint64
	BytesSent     uint64
	// Start is when the connection was accepted.
	Start time.Time
}

// AddReadFilter implements FilterManager.
func (c *Connection) AddReadFilter(f ReadFilter) {
	c.reads = append(c.reads, f)
	c.observe(f)
}

// AddWriteFilter implements FilterManager.
func (c *Connection) AddWriteFilter(f WriteFilter) {
	c.writes = append(c.writes, f)
	c.observe(f)
}

func (c *Connection) observe(f any) {
	if w, ok := f.(WritableObserver); ok {
		c.writables = append(c.writables, w)
	}
	if cl, ok := f.(CloseObserver); ok {
		c.closers = append(c.closers, cl)
	}
	if h, ok := f.(HalfCloser); ok {
		c.half = h // the last one added (the terminal filter) wins
	}
}

// Conn is the transport connection.
func (c *Connection) Conn() reactor.Conn { return c.conn }

// Deps are the listener's services.
func (c *Connection) Deps() *Deps { return c.listener.deps }

// Logger returns the listener's logger.
func (c *Connection) Logger() *slog.Logger { return c.listener.log }

// ListenerName is the accepting listener's name.
func (c *Connection) ListenerName() string { return c.listener.cfg.Name }

// Write sends p to the downstream peer through the write filters. p may be reused as soon as
// Write returns.
func (c *Connection) Write(p []byte) error {
	for i := len(c.writes) - 1; i >= 0; i-- {
		if c.writes[i].OnWrite(c, p) == StopIteration {
			return nil
		}
	}
	c.BytesSent += uint64(len(p))
	return c.conn.Write(p)
}

// ContinueReading resumes a chain a filter stopped in OnNewConnection, then resumes reading.
func (c *Connection) ContinueReading() {
	if c.closed {
		return
	}
	if !c.started {
		c.runNew()
	}
	if c.started {
		c.conn.PauseRead(false)
	}
}

// Close closes the downstream connection after flushing what is queued.
func (c *Connection) Close(reason error) { c.conn.Close(reason) }

func (c *Connection) runNew() {
	for c.next < len(c.reads) {
		f := c.reads[c.next]
		c.next++
		if f.OnNewConnection(c) == StopIteration {
			// Nothing is read until the filter calls ContinueReading.
			c.conn.PauseRead(true)
			return
		}
	}
	c.started = true
}

type listenerHandler struct{ l *Listener }

var _ reactor.Handler = listenerHandler{}

func (h listenerHandler) OnOpen(rc reactor.Conn) {
	l := h.l
	l.active.Add(1)
	l.total.Add(1)
	c := &Connection{conn: rc, listener: l, Start: time.Now()}
	rc.SetContext(c)
	for _, f := range l.factories {
		f(c)
	}
	if len(c.reads) == 0 {
		rc.Close(fmt.Errorf("%w: listener %q: no read filter", ErrConfig, l.cfg.Name))
		return
	}
	c.runNew()
}

func (h listenerHandler) OnData(rc reactor.Conn, in reactor.View) {
	c, ok := rc.Context().(*Connection)
	if !ok || !c.started {
		rc.PauseRead(true)
		return
	}
	before := in.Len()
	for _, f := range c.reads {
		if f.OnData(c, in, false) == StopIteration {
			break
		}
	}
	c.BytesReceived += uint64(before - in.Len())
}

func (h listenerHandler) OnWritable(rc reactor.Conn) {
	if c, ok := rc.Context().(*Connection); ok {
		for _, w := range c.writables {
			w.OnDownstreamWritable(c)
		}
	}
}

func (h listenerHandler) OnPeerClose(rc reactor.Conn) bool {
	c, ok := rc.Context().(*Connection)
	if !ok || !c.started {
		return false
	}
	for _, f := range c.reads {
		if f.OnData(c, emptyView{}, true) == StopIteration {
			break
		}
	}
	return c.half != nil && c.half.KeepWriteOpen(c)
}

func (h listenerHandler) OnClose(rc reactor.Conn, err error) {
	h.l.active.Add(-1)
	c, ok := rc.Context().(*Connection)
	if !ok {
		return
	}
	c.closed = true
	for _, cl := range c.closers {
		cl.OnClose(c, err)
	}
	if err != nil && !isRoutineClose(err) {
		c.listener.log.Debug("connection closed", "conn", rc.ID(), "remote", rc.RemoteAddr(), "err", err)
	}
}

// isRoutineClose reports close reasons that are part of normal operation.
func isRoutineClose(err error) bool {
	return errors.Is(err, reactor.ErrPeerClosed) || errors.Is(err, reactor.ErrTransportClosed)
}

// emptyView is the View offered with endStream when nothing is left to read.
type emptyView struct{}

func (emptyView) Len() int                   { return 0 }
func (emptyView) Peek(int) []byte            { return nil }
func (emptyView) Skip(int)                   {}
func (emptyView) Detach(int) *reactor.Buffer { return reactor.NewBuffer() }
