package stream

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/router"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

var _ pipeline.NetworkFilterConfig = (*Config)(nil)

// stats are the manager's counters, shared by every connection of one factory.
type stats struct {
	cxTotal, rqTotal, rq1xx, rq2xx, rq3xx, rq4xx, rq5xx    *atomic.Uint64
	noRoute, noCluster, noHealthy, overflow, timeout, shed *atomic.Uint64
	retry, upConnectFail, upReset, upCxTotal, protocolErr  *atomic.Uint64
	idleTimeout                                            *atomic.Uint64
	cxActive, rqActive                                     *atomic.Int64
}

func newStats(s *pipeline.Stats, prefix string) *stats {
	l := `{stat_prefix="` + prefix + `"}`
	c := func(n string) *atomic.Uint64 { return s.Counter("strait_stream_" + n + l) }
	return &stats{
		cxTotal: c("downstream_cx_total"), rqTotal: c("downstream_rq_total"),
		rq1xx: c("downstream_rq_1xx_total"), rq2xx: c("downstream_rq_2xx_total"),
		rq3xx: c("downstream_rq_3xx_total"), rq4xx: c("downstream_rq_4xx_total"),
		rq5xx: c("downstream_rq_5xx_total"), noRoute: c("no_route_total"),
		noCluster: c("no_cluster_total"), noHealthy: c("no_healthy_upstream_total"),
		overflow: c("upstream_rq_overflow_total"), timeout: c("upstream_rq_timeout_total"),
		shed: c("downstream_rq_shed_total"), retry: c("upstream_rq_retry_total"),
		upConnectFail: c("upstream_cx_connect_fail_total"), upReset: c("upstream_rq_reset_total"),
		upCxTotal: c("upstream_cx_total"), protocolErr: c("downstream_protocol_error_total"),
		idleTimeout: c("stream_idle_timeout_total"),
		cxActive:    s.Gauge("strait_stream_downstream_cx_active" + l),
		rqActive:    s.Gauge("strait_stream_downstream_rq_active" + l),
	}
}

func (st *stats) status(code int) {
	switch {
	case code < 200:
		st.rq1xx.Add(1)
	case code < 300:
		st.rq2xx.Add(1)
	case code < 400:
		st.rq3xx.Add(1)
	case code < 500:
		st.rq4xx.Add(1)
	default:
		st.rq5xx.Add(1)
	}
}

// factory is built once per configuration and shared by every connection.
type factory struct {
	cfg     Config
	deps    *pipeline.Deps
	log     *slog.Logger
	router  *router.Router
	codecs  []protocol.Codec
	upCodec *protocol.Codec
	filters []FilterFactory
	stats   *stats
	pooled  bool     // decode filters and routing run on the request pool
	execs   sync.Map // executor id -> *execState
}

// execState is what one executor owns: its upstream connection pools. Only code running on
// that executor touches it.
type execState struct {
	pools map[poolKey]*connPool
}

type poolKey struct {
	host  pipeline.Host
	codec string
}

// NewFactory implements pipeline.NetworkFilterConfig.
func (c *Config) NewFactory(deps *pipeline.Deps) (pipeline.NetworkFilterFactory, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if deps == nil || deps.Clusters == nil || deps.Transport == nil || deps.Codecs == nil {
		return nil, fmt.Errorf("%w: the stream manager needs clusters, a transport and codecs", ErrInvalidConfig)
	}
	f := &factory{cfg: c.WithDefaults(), deps: deps, log: deps.Logger}
	if f.log == nil {
		f.log = slog.Default()
	}
	for _, name := range c.Codecs {
		codec, ok := deps.Codecs.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("%w: unknown codec %q (have %v)", ErrInvalidConfig, name, deps.Codecs.Names())
		}
		f.codecs = append(f.codecs, codec)
	}
	if c.UpstreamCodec != "" {
		codec, ok := deps.Codecs.Lookup(c.UpstreamCodec)
		if !ok || codec.NewClient == nil {
			return nil, fmt.Errorf("%w: unknown upstream codec %q", ErrInvalidConfig, c.UpstreamCodec)
		}
		f.upCodec = &codec
	} else {
		for _, codec := range f.codecs {
			if codec.NewClient == nil {
				return nil, fmt.Errorf("%w: codec %q cannot speak to upstreams; set an upstream codec", ErrInvalidConfig, codec.Name)
			}
		}
	}
	for _, name := range c.ClusterNames() {
		if deps.Clusters.Cluster(name) == nil {
			return nil, fmt.Errorf("%w: route_config: unknown cluster %q", ErrInvalidConfig, name)
		}
	}
	rt, err := router.New(c.Route)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	f.router = rt
	for i, nf := range c.Filters {
		ff, err := nf.Config.NewFactory(deps)
		if err != nil {
			return nil, fmt.Errorf("http_filters[%d] (%s): %w", i, nf.Name, err)
		}
		f.filters = append(f.filters, ff)
	}
	f.stats = newStats(deps.Stats, c.StatPrefix)
	f.pooled = f.cfg.Dispatch == DispatchPool
	if f.cfg.Dispatch == DispatchAuto {
		for _, nf := range c.Filters {
			if b, ok := nf.Config.(BlockingFilter); ok && b.MayBlock() {
				f.pooled = true
			}
		}
	}
	if f.deps.Go == nil {
		f.pooled = false
	}
	return func(fm pipeline.FilterManager) {
		fm.AddReadFilter(&downstream{f: f})
	}, nil
}

func (f *factory) exec(id int) *execState {
	if v, ok := f.execs.Load(id); ok {
		return v.(*execState)
	}
	v, _ := f.execs.LoadOrStore(id, &execState{pools: map[poolKey]*connPool{}})
	return v.(*execState)
}

// upstreamCodec returns the codec to speak upstream for a downstream protocol.
func (f *factory) upstreamCodec(down protocol.Codec) protocol.Codec {
	if f.upCodec != nil {
		return *f.upCodec
	}
	return down
}

// downstream is one downstream connection: the terminal read filter and, through
// requestSink, the server codec's sink.
type downstream struct {
	f         *factory
	c         *pipeline.Connection
	rc        reactor.Conn
	ex        *execState
	codec     protocol.ServerCodec
	proto     protocol.Codec
	streams   map[protocol.StreamID]*Stream
	requests  int
	vec       [1][]byte // scratch vector for zero-copy EncodeData
	closed    bool
	heldRead  int // streams that paused reading because their buffered body hit the limit
	upPaused  []*upConn
	peerEnded bool
	decoding  bool // inside codec.Decode: held heads are flushed when it returns
}

var (
	_ pipeline.ReadFilter       = (*downstream)(nil)
	_ pipeline.HalfCloser       = (*downstream)(nil)
	_ pipeline.CloseObserver    = (*downstream)(nil)
	_ pipeline.WritableObserver = (*downstream)(nil)
	_ protocol.FlowSink         = (*requestSink)(nil)
	_ protocol.FlowSink         = (*responseSink)(nil)
)

func (d *downstream) OnNewConnection(c *pipeline.Connection) pipeline.Status {
	d.c, d.rc = c, c.Conn()
	d.ex = d.f.exec(d.rc.ExecutorID())
	d.f.stats.cxTotal.Add(1)
	d.f.stats.cxActive.Add(1)
	if t := d.f.cfg.IdleTimeout; t > 0 {
		d.rc.SetIdleTimeout(t)
	}
	return pipeline.Continue
}

func (d *downstream) OnData(_ *pipeline.Connection, in reactor.View, end bool) pipeline.Status {
	if d.closed {
		in.Skip(in.Len())
		return pipeline.StopIteration
	}
	if d.codec == nil && in.Len() > 0 {
		if !d.detect(in) {
			return pipeline.StopIteration
		}
	}
	if d.codec != nil && in.Len() > 0 {
		d.decoding = true
		err := d.codec.Decode(in)
		d.decoding = false
		if err != nil {
			d.f.stats.protocolErr.Add(1)
			d.c.Logger().Debug("downstream protocol error", "conn", d.rc.ID(), "remote", d.rc.RemoteAddr(), "err", err)
			d.rc.Close(err)
			return pipeline.StopIteration
		}
		// Request heads the upstream codecs held back to coalesce with body bytes leave now.
		for _, s := range d.streams {
			if s.up != nil {
				flush(s.up.codec)
			}
		}
	}
	if end {
		d.peerEnded = true
		// The codec decides what the client's FIN means: the end of a tunnel, or a request
		// body cut short.
		if e, ok := d.codec.(protocol.EOFHandler); ok {
			e.OnEOF()
		}
		if len(d.streams) == 0 && !d.closed {
			d.rc.Close(nil)
		}
	}
	return pipeline.StopIteration
}

// maxDetectBytes bounds how much is read before a protocol must be recognized.
const maxDetectBytes = 64

func (d *downstream) detect(in reactor.View) bool {
	if len(d.f.codecs) == 1 {
		d.setCodec(d.f.codecs[0])
		return true
	}
	codec, m, err := protocol.Detect(in.Peek(min(in.Len(), maxDetectBytes)), d.f.codecs)
	if err != nil {
		// Envoy's AUTO: what is not the HTTP/2 preface is HTTP/1.1, whose codec answers
		// malformed input with a 400 instead of a silent close.
		for _, c := range d.f.codecs {
			if c.Name == "http1" {
				codec, m, err = c, protocol.Yes, nil
				break
			}
		}
	}
	switch {
	case err != nil:
		d.f.stats.protocolErr.Add(1)
		d.rc.Close(err)
		return false
	case m == protocol.NeedMore && in.Len() < maxDetectBytes:
		return false
	case m != protocol.Yes:
		d.rc.Close(protocol.ErrUnknownProtocol)
		return false
	}
	d.setCodec(codec)
	return true
}

func (d *downstream) setCodec(c protocol.Codec) {
	d.proto = c
	d.codec = c.NewServer(d.rc, (*requestSink)(d))
	// The manager flushes held heads itself (after each upstream read, see upConn.OnData):
	// saying so at once spares the codec its per-head Exec fallback, which it would otherwise
	// keep using because a response that completes within one upstream read leaves no
	// stream to flush.
	flush(d.codec)
}

// KeepWriteOpen answers streams still in flight after the client's FIN.
func (d *downstream) KeepWriteOpen(*pipeline.Connection) bool { return len(d.streams) > 0 }

func (d *downstream) OnDownstreamWritable(*pipeline.Connection) {
	for _, uc := range d.upPaused {
		uc.pausedByDown = false
		if !uc.closed {
			uc.rc.PauseRead(false)
		}
	}
	clear(d.upPaused)
	d.upPaused = d.upPaused[:0]
	for _, s := range d.streams {
		if s.respOwed > 0 {
			s.releaseResponse()
		}
	}
}

// pauseUpstream stops reading uc until the downstream connection drains.
func (d *downstream) pauseUpstream(uc *upConn) {
	uc.rc.PauseRead(true)
	d.upPaused = append(d.upPaused, uc)
}

func (d *downstream) OnClose(_ *pipeline.Connection, err error) {
	d.closed = true
	d.f.stats.cxActive.Add(-1)
	for _, s := range d.streams {
		s.downstreamGone(err)
	}
}

// streamDone removes a finished stream and applies per-connection limits.
func (d *downstream) streamDone(s *Stream) {
	delete(d.streams, s.id)
	if d.closed {
		return
	}
	if len(d.streams) == 0 && d.peerEnded {
		d.rc.Close(nil)
	}
}

// requestSink is the downstream seen as its server codec's Sink.
type requestSink downstream

func (r *requestSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	d := (*downstream)(r)
	if d.closed {
		h.Release()
		return
	}
	if len(d.streams) >= d.f.cfg.MaxStreams {
		h.Release()
		d.codec.Reset(id, fmt.Errorf("%w: too many concurrent streams", protocol.ErrRefusedStream))
		return
	}
	d.requests++
	if max := d.f.cfg.MaxRequestsPerConnection; max > 0 && d.requests >= max {
		d.codec.Drain()
	}
	if d.streams == nil {
		d.streams = make(map[protocol.StreamID]*Stream, 1)
	}
	s := newStream(d, id, h, end)
	d.streams[id] = s
	s.start()
}

func (r *requestSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	d := (*downstream)(r)
	s := d.streams[id]
	if s == nil {
		in.Skip(n) // a stream we already answered or reset
		if f, ok := d.codec.(protocol.StreamFlow); ok {
			f.Consume(id, n)
		}
		return
	}
	s.requestData(in, n, end)
}

// OnStreamWritable implements protocol.FlowSink: the downstream codec sent the response
// bytes it held for stream id.
func (r *requestSink) OnStreamWritable(id protocol.StreamID) {
	d := (*downstream)(r)
	if s := d.streams[id]; s != nil {
		s.downstreamWritable()
	}
}

func (r *requestSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	d := (*downstream)(r)
	if s := d.streams[id]; s != nil {
		s.requestTrailers(t)
		return
	}
	t.Release()
}

func (r *requestSink) OnReset(id protocol.StreamID, err error) {
	d := (*downstream)(r)
	if s := d.streams[id]; s != nil {
		s.downstreamGone(err)
	}
}

// view returns the first n bytes of in as a one-element vector in d's scratch space (nil for
// n == 0: Peek(0) would mean "everything").
func (d *downstream) view(in reactor.View, n int) [][]byte {
	if n == 0 {
		return nil
	}
	d.vec[0] = in.Peek(n)
	return d.vec[:]
}
