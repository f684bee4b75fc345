package tcpproxy

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bytedance/gopkg/lang/fastrand"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/reactor"
)

// Close reasons reported to the downstream connection.
var (
	ErrNoCluster      = errors.New("tcp_proxy: cluster not found")
	ErrNoHealthyHost  = errors.New("tcp_proxy: no healthy upstream host")
	ErrConnectFailed  = errors.New("tcp_proxy: upstream connect failed")
	ErrOverflow       = errors.New("tcp_proxy: cluster connection limit reached")
	ErrMaxDuration    = errors.New("tcp_proxy: max downstream connection duration reached")
	ErrUpstreamClosed = errors.New("tcp_proxy: upstream closed")
	errDownstreamGone = errors.New("tcp_proxy: downstream closed")
)

// stats are the filter's counters, shared by every connection of one factory.
type stats struct {
	cxTotal, connectFail, overflow, noRoute *atomic.Uint64
	downRx, downTx, upRx, upTx              *atomic.Uint64
	idleTimeout, maxDuration                *atomic.Uint64
	cxActive                                *atomic.Int64
}

func newStats(s *pipeline.Stats, prefix string) *stats {
	l := `{stat_prefix="` + prefix + `"}`
	c := func(n string) *atomic.Uint64 { return s.Counter("strait_tcp_proxy_" + n + l) }
	return &stats{
		cxTotal:     c("downstream_cx_total"),
		connectFail: c("upstream_connect_fail_total"),
		overflow:    c("upstream_cx_overflow_total"),
		noRoute:     c("downstream_cx_no_route_total"),
		downRx:      c("downstream_rx_bytes_total"),
		downTx:      c("downstream_tx_bytes_total"),
		upRx:        c("upstream_rx_bytes_total"),
		upTx:        c("upstream_tx_bytes_total"),
		idleTimeout: c("idle_timeout_total"),
		maxDuration: c("max_downstream_connection_duration_total"),
		cxActive:    s.Gauge("strait_tcp_proxy_downstream_cx_active" + l),
	}
}

type factory struct {
	cfg         Config
	deps        *pipeline.Deps
	stats       *stats
	totalWeight uint32
}

// NewFactory implements pipeline.NetworkFilterConfig. Every cluster the filter names must
// exist in deps.Clusters.
func (c *Config) NewFactory(deps *pipeline.Deps) (pipeline.NetworkFilterFactory, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if deps == nil || deps.Clusters == nil || deps.Transport == nil {
		return nil, fmt.Errorf("%w: tcp_proxy needs clusters and a transport", pipeline.ErrConfig)
	}
	for _, name := range c.ClusterNames() {
		if deps.Clusters.Cluster(name) == nil {
			return nil, fmt.Errorf("%w: tcp_proxy: unknown cluster %q", pipeline.ErrConfig, name)
		}
	}
	f := &factory{cfg: *c, deps: deps, stats: newStats(deps.Stats, c.StatPrefix)}
	for _, w := range c.WeightedClusters {
		f.totalWeight += w.Weight
	}
	return func(fm pipeline.FilterManager) {
		fm.AddReadFilter(&filter{f: f})
	}, nil
}

func (f *factory) pickCluster() string {
	if f.cfg.Cluster != "" {
		return f.cfg.Cluster
	}
	r := fastrand.Uint32n(f.totalWeight)
	for _, w := range f.cfg.WeightedClusters {
		if r < w.Weight {
			return w.Name
		}
		r -= w.Weight
	}
	return f.cfg.WeightedClusters[len(f.cfg.WeightedClusters)-1].Name
}

// filter is one connection's tcp_proxy. It runs entirely on the downstream connection's
// executor: the upstream is dialed near the downstream, so both sides' callbacks are
// serialized and forwarding is a direct Write from one read view to the other connection.
type filter struct {
	f        *factory
	down     *pipeline.Connection
	cluster  pipeline.Cluster
	host     pipeline.Host
	up       reactor.Conn
	attempts int
	lb       pipeline.LBContext
	cbHeld   bool // holds one of the cluster's MaxConnections slots

	downPaused, upPaused bool // paused by us because the other side is congested
	downEOF, upEOF       bool
	downClosed, upClosed bool
	durTimer             *time.Timer
}

var (
	_ pipeline.ReadFilter       = (*filter)(nil)
	_ pipeline.WritableObserver = (*filter)(nil)
	_ pipeline.HalfCloser       = (*filter)(nil)
	_ pipeline.CloseObserver    = (*filter)(nil)
	_ reactor.Handler           = (*upstreamSide)(nil)
)

func (t *filter) OnNewConnection(c *pipeline.Connection) pipeline.Status {
	t.down = c
	t.f.stats.cxTotal.Add(1)
	t.f.stats.cxActive.Add(1)
	if d := t.f.cfg.IdleTimeout; d > 0 {
		// Every forwarded byte is read from or written to the downstream connection, so its
		// idle timer is the proxy's "no byte in either direction" timer.
		c.Conn().SetIdleTimeout(d)
	}
	if d := t.f.cfg.MaxDownstreamConnectionDuration; d > 0 {
		rc := c.Conn()
		t.durTimer = time.AfterFunc(d, func() {
			rc.Exec(func() { t.f.stats.maxDuration.Add(1); rc.Close(ErrMaxDuration) })
		})
	}
	name := t.f.pickCluster()
	t.cluster = t.f.deps.Clusters.Cluster(name)
	if t.cluster == nil {
		t.f.stats.noRoute.Add(1)
		c.Close(fmt.Errorf("%w: %q", ErrNoCluster, name))
		return pipeline.StopIteration
	}
	t.lb.DownstreamAddr = c.Conn().RemoteAddr()
	t.connect()
	// Reading resumes (and buffered bytes are re-delivered) once the upstream is connected.
	return pipeline.StopIteration
}

func (t *filter) connect() {
	cb := t.cluster.Limits()
	if !pipeline.TryAcquire(&cb.Connections, cb.MaxConnections) {
		t.f.stats.overflow.Add(1)
		t.down.Close(ErrOverflow)
		return
	}
	t.cbHeld = true
	t.lb.Attempt = t.attempts
	t.lb.Previous = t.host
	t.host = t.cluster.ChooseHost(&t.lb)
	if t.host == nil {
		t.releaseSlot()
		t.f.stats.noRoute.Add(1)
		t.down.Close(fmt.Errorf("%w in cluster %q", ErrNoHealthyHost, t.cluster.Name()))
		return
	}
	t.attempts++
	t.f.deps.Transport.Dial(t.down.Conn(), t.host.Address(), t.cluster.ConnectTimeout(),
		(*upstreamSide)(t), t.onConnected)
}

func (t *filter) releaseSlot() {
	if t.cbHeld {
		t.cbHeld = false
		t.cluster.Limits().Connections.Add(-1)
	}
}

func (t *filter) onConnected(up reactor.Conn, err error) {
	if err != nil {
		t.releaseSlot()
		t.host.Stats().ConnectFails.Add(1)
		t.f.stats.connectFail.Add(1)
		if t.downClosed {
			return
		}
		if t.attempts < t.f.cfg.MaxConnectAttempts {
			t.connect()
			return
		}
		t.down.Close(fmt.Errorf("%w: %s after %d attempt(s): %w", ErrConnectFailed, t.host.Address(), t.attempts, err))
		return
	}
	if t.downClosed {
		up.Close(errDownstreamGone)
		return
	}
	t.up = up
	st := t.host.Stats()
	st.ActiveConns.Add(1)
	st.TotalConns.Add(1)
	t.down.ContinueReading()
}

// OnData forwards downstream bytes to the upstream.
func (t *filter) OnData(c *pipeline.Connection, in reactor.View, end bool) pipeline.Status {
	if t.up == nil || t.upClosed {
		return pipeline.StopIteration
	}
	if n := in.Len(); n > 0 {
		if err := t.up.Write(in.Peek(n)); err != nil {
			c.Close(err)
			return pipeline.StopIteration
		}
		in.Skip(n)
		t.f.stats.downRx.Add(uint64(n))
		t.f.stats.upTx.Add(uint64(n))
		if t.up.Congested() {
			t.downPaused = true
			c.Conn().PauseRead(true)
		}
	}
	if end && !t.downEOF {
		t.downEOF = true
		_ = t.up.CloseWrite()
	}
	return pipeline.StopIteration
}

// KeepWriteOpen keeps the downstream's write side open after its FIN while the upstream can
// still answer.
func (t *filter) KeepWriteOpen(*pipeline.Connection) bool {
	if t.up == nil || t.upEOF || t.upClosed {
		if t.up != nil && !t.upClosed {
			t.up.Close(nil)
		}
		return false
	}
	return true
}

func (t *filter) OnDownstreamWritable(*pipeline.Connection) {
	if t.upPaused && t.up != nil {
		t.upPaused = false
		t.up.PauseRead(false)
	}
}

func (t *filter) OnClose(_ *pipeline.Connection, err error) {
	t.downClosed = true
	t.f.stats.cxActive.Add(-1)
	if errors.Is(err, reactor.ErrIdleTimeout) {
		t.f.stats.idleTimeout.Add(1)
	}
	if t.durTimer != nil {
		t.durTimer.Stop()
	}
	if t.up != nil && !t.upClosed {
		if errors.Is(err, reactor.ErrPeerReset) {
			t.up.Abort(err)
		} else {
			t.up.Close(errDownstreamGone)
		}
	}
}

// upstreamSide is the filter seen as the upstream connection's reactor.Handler.
type upstreamSide filter

func (u *upstreamSide) OnOpen(reactor.Conn) {}

func (u *upstreamSide) OnData(up reactor.Conn, in reactor.View) {
	t := (*filter)(u)
	if t.downClosed {
		in.Skip(in.Len())
		return
	}
	n := in.Len()
	if err := t.down.Write(in.Peek(n)); err != nil {
		up.Close(err)
		return
	}
	in.Skip(n)
	t.f.stats.upRx.Add(uint64(n))
	t.f.stats.downTx.Add(uint64(n))
	if t.down.Conn().Congested() {
		t.upPaused = true
		up.PauseRead(true)
	}
}

func (u *upstreamSide) OnWritable(reactor.Conn) {
	t := (*filter)(u)
	if t.downPaused && !t.downClosed {
		t.downPaused = false
		t.down.Conn().PauseRead(false)
	}
}

func (u *upstreamSide) OnPeerClose(up reactor.Conn) bool {
	t := (*filter)(u)
	t.upEOF = true
	if t.downClosed {
		return false
	}
	_ = t.down.Conn().CloseWrite()
	if t.downEOF {
		// Both directions are finished.
		t.down.Close(nil)
		return false
	}
	return true
}

func (u *upstreamSide) OnClose(up reactor.Conn, err error) {
	t := (*filter)(u)
	t.upClosed = true
	t.releaseSlot()
	if t.host != nil {
		t.host.Stats().ActiveConns.Add(-1)
	}
	if t.downClosed {
		return
	}
	if errors.Is(err, reactor.ErrPeerReset) {
		t.down.Conn().Abort(fmt.Errorf("%w: %w", ErrUpstreamClosed, err))
		return
	}
	t.down.Close(fmt.Errorf("%w: %w", ErrUpstreamClosed, err))
}
