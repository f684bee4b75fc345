package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
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
//
// It is kept small because every idle connection holds one: the first read filter (in the
// common chain of one terminal filter, the only filter) is stored inline, further filters in
// a side struct allocated only for longer chains, and the optional capabilities of filters
// (WritableObserver, HalfCloser, CloseObserver) are found by type assertion when the event
// happens instead of being collected into slices per connection.
type Connection struct {
	conn     reactor.Conn
	listener *Listener
	read0    ReadFilter   // the first read filter
	more     *moreFilters // nil while the chain is one read filter
	next     int32        // first read filter whose OnNewConnection has not run
	started  bool         // every OnNewConnection ran with Continue
	closed   bool
	start    int64 // UnixNano of the accept

	// BytesReceived and BytesSent count downstream bytes read and written.
	BytesReceived uint64
	BytesSent     uint64
}

// moreFilters are the filters of a chain beyond its first read filter.
type moreFilters struct {
	reads  []ReadFilter // read filters after the first
	writes []WriteFilter
}

// AddReadFilter implements FilterManager.
func (c *Connection) AddReadFilter(f ReadFilter) {
	if c.read0 == nil {
		c.read0 = f
		return
	}
	m := c.extra()
	m.reads = append(m.reads, f)
}

// AddWriteFilter implements FilterManager.
func (c *Connection) AddWriteFilter(f WriteFilter) {
	m := c.extra()
	m.writes = append(m.writes, f)
}

func (c *Connection) extra() *moreFilters {
	if c.more == nil {
		c.more = &moreFilters{}
	}
	return c.more
}

// numReads is the number of read filters.
func (c *Connection) numReads() int {
	n := 0
	if c.read0 != nil {
		n = 1
	}
	if c.more != nil {
		n += len(c.more.reads)
	}
	return n
}

// readAt is read filter i (0 is the first).
func (c *Connection) readAt(i int) ReadFilter {
	if i == 0 {
		return c.read0
	}
	return c.more.reads[i-1]
}

// each calls fn once for every filter: the read filters, then the write filters that are
// not also read filters, in the order they were added.
func (c *Connection) each(fn func(f any)) {
	if c.read0 != nil {
		fn(c.read0)
	}
	m := c.more
	if m == nil {
		return
	}
	for _, f := range m.reads {
		fn(f)
	}
	for _, w := range m.writes {
		if !c.isReadFilter(w) {
			fn(w)
		}
	}
}

// isReadFilter reports whether w was also added as a read filter.
func (c *Connection) isReadFilter(w WriteFilter) bool {
	for i := c.numReads() - 1; i >= 0; i-- {
		if sameFilter(c.readAt(i), w) {
			return true
		}
	}
	return false
}

// sameFilter compares two filter values without panicking on types that are not comparable
// (which then are never the same filter).
func sameFilter(a, b any) bool {
	t := reflect.TypeOf(a)
	return t == reflect.TypeOf(b) && t.Comparable() && a == b
}

// halfCloser is the filter that decides about half-closes: the last read filter that
// implements HalfCloser (the terminal filter), else the last such write filter.
func (c *Connection) halfCloser() HalfCloser {
	for i := c.numReads() - 1; i >= 0; i-- {
		if h, ok := c.readAt(i).(HalfCloser); ok {
			return h
		}
	}
	if m := c.more; m != nil {
		for i := len(m.writes) - 1; i >= 0; i-- {
			if h, ok := m.writes[i].(HalfCloser); ok {
				return h
			}
		}
	}
	return nil
}

// Start is when the connection was accepted.
func (c *Connection) Start() time.Time { return time.Unix(0, c.start) }

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
	if m := c.more; m != nil {
		for i := len(m.writes) - 1; i >= 0; i-- {
			if m.writes[i].OnWrite(c, p) == StopIteration {
				return nil
			}
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
	for n := c.numReads(); int(c.next) < n; {
		f := c.readAt(int(c.next))
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
	c := &Connection{conn: rc, listener: l, start: time.Now().UnixNano()}
	rc.SetContext(c)
	for _, f := range l.factories {
		f(c)
	}
	if c.read0 == nil {
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
	c.onData(in, false)
	c.BytesReceived += uint64(before - in.Len())
}

// onData offers in to the read filters in order until one stops.
func (c *Connection) onData(in reactor.View, end bool) {
	if c.read0.OnData(c, in, end) == StopIteration || c.more == nil {
		return
	}
	for _, f := range c.more.reads {
		if f.OnData(c, in, end) == StopIteration {
			return
		}
	}
}

func (h listenerHandler) OnWritable(rc reactor.Conn) {
	if c, ok := rc.Context().(*Connection); ok {
		c.each(func(f any) {
			if w, ok := f.(WritableObserver); ok {
				w.OnDownstreamWritable(c)
			}
		})
	}
}

func (h listenerHandler) OnPeerClose(rc reactor.Conn) bool {
	c, ok := rc.Context().(*Connection)
	if !ok || !c.started {
		return false
	}
	c.onData(emptyView{}, true)
	hc := c.halfCloser()
	return hc != nil && hc.KeepWriteOpen(c)
}

func (h listenerHandler) OnClose(rc reactor.Conn, err error) {
	h.l.active.Add(-1)
	c, ok := rc.Context().(*Connection)
	if !ok {
		return
	}
	c.closed = true
	c.each(func(f any) {
		if cl, ok := f.(CloseObserver); ok {
			cl.OnClose(c, err)
		}
	})
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
