package stream

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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
	idleTimeout, cxIdleTimeout                             *atomic.Uint64
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
		idleTimeout: c("stream_idle_timeout_total"), cxIdleTimeout: c("downstream_cx_idle_timeout_total"),
		cxActive: s.Gauge("strait_stream_downstream_cx_active" + l),
		rqActive: s.Gauge("strait_stream_downstream_rq_active" + l),
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
	defUp   *protocol.Codec // DefaultUpstreamCodec
	filters []FilterFactory
	stats   *stats
	pooled  bool      // decode filters and routing run on the request pool
	execs   sync.Map  // executor id -> *execState
	t0      time.Time // origin of clock
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
	// t0 lies in the past so that clock is never 0, which marks unset deadlines.
	f := &factory{cfg: c.WithDefaults(), deps: deps, log: deps.Logger, t0: time.Now().Add(-time.Second)}
	if f.log == nil {
		f.log = slog.Default()
	}
	for _, name := range c.Codecs {
		codec, ok := deps.Codecs.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("%w: unknown codec %q (have %v)", ErrInvalidConfig, name, deps.Codecs.Names())
		}
		if cc, ok := c.CodecConfigs[name]; ok {
			if codec.Configure == nil {
				return nil, fmt.Errorf("%w: codec %q takes no configuration", ErrInvalidConfig, name)
			}
			var err error
			if codec, err = codec.Configure(cc); err != nil {
				return nil, fmt.Errorf("%w: codec %q: %w", ErrInvalidConfig, name, err)
			}
		}
		f.codecs = append(f.codecs, codec)
	}
	if c.DefaultUpstreamCodec != "" {
		codec, ok := deps.Codecs.Lookup(c.DefaultUpstreamCodec)
		if !ok || codec.NewClient == nil {
			return nil, fmt.Errorf("%w: unknown default upstream codec %q", ErrInvalidConfig, c.DefaultUpstreamCodec)
		}
		f.defUp = &codec
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
		// The connection's executor is known here already; OnNewConnection checks.
		id := 0
		if c, ok := fm.(*pipeline.Connection); ok {
			id = c.Conn().ExecutorID()
		}
		fm.AddReadFilter(&downstream{ex: f.exec(id)})
	}, nil
}

func (f *factory) exec(id int) *execState {
	if v, ok := f.execs.Load(id); ok {
		return v.(*execState)
	}
	v, _ := f.execs.LoadOrStore(id, newExecState(f, id))
	return v.(*execState)
}

// upstreamCodec returns the codec to speak to cluster for a downstream protocol: the
// cluster's choice (its protocol, or the downstream's), else the forced UpstreamCodec, else
// DefaultUpstreamCodec, else the downstream's.
func (f *factory) upstreamCodec(down *protocol.Codec, cluster pipeline.Cluster) protocol.Codec {
	if o, ok := cluster.(pipeline.ConnPoolSettings); ok {
		switch name := o.ConnPool().Protocol; name {
		case "":
		case pipeline.ProtocolDownstream:
			if down.NewClient != nil {
				return *down
			}
		default:
			if c, ok := f.deps.Codecs.Lookup(name); ok && c.NewClient != nil {
				return c
			}
		}
	}
	switch {
	case f.upCodec != nil:
		return *f.upCodec
	case f.defUp != nil:
		return *f.defUp
	}
	return *down
}

// downstream is one downstream connection: the terminal read filter and, through
// requestSink, the server codec's sink.
//
// Every idle keep-alive connection holds one, so it is small: no stream table while idle
// (one inline slot covers ping-pong protocols; a map is made only while a multiplexed
// connection carries two streams or more), no timer (its idle timeout is a place in the
// executor's idle list, see execState), and what few connections need in a side struct.
type downstream struct {
	ex                 *execState // the executor's state (and ex.f the factory)
	c                  *pipeline.Connection
	codec              protocol.ServerCodec
	one                *Stream     // the stream, while there is at most one
	more               *downMore   // nil unless needed
	idlePrev, idleNext *downstream // the executor's idle list
	idleAt             int64       // when it became idle (factory clock)
	proto              uint8       // the codec detected: ex.f.codecs[proto]
	idle               bool        // in the executor's idle list
	closed             bool
	peerEnded          bool
	decoding           bool // inside codec.Decode: held heads are flushed when it returns
}

// downMore is the part of a downstream few connections need.
type downMore struct {
	many     map[protocol.StreamID]*Stream // while more than one stream is active
	upPaused []*upConn                     // upstreams paused until this connection drains
	requests int                           // counted with MaxRequestsPerConnection only
	heldRead int                           // streams that paused reading: their buffered body hit the limit
}

// rc is the transport connection.
func (d *downstream) rc() reactor.Conn { return d.c.Conn() }

// codecDef is the connection's protocol, once detected.
func (d *downstream) codecDef() *protocol.Codec { return &d.ex.f.codecs[d.proto] }

func (d *downstream) extra() *downMore {
	if d.more == nil {
		d.more = &downMore{}
	}
	return d.more
}

// stream returns the active stream id, or nil.
func (d *downstream) stream(id protocol.StreamID) *Stream {
	if m := d.more; m != nil && m.many != nil {
		return m.many[id]
	}
	if s := d.one; s != nil && s.id == id {
		return s
	}
	return nil
}

// numStreams is the number of active streams.
func (d *downstream) numStreams() int {
	if m := d.more; m != nil && m.many != nil {
		return len(m.many)
	}
	if d.one != nil {
		return 1
	}
	return 0
}

func (d *downstream) addStream(s *Stream) {
	if m := d.more; m != nil && m.many != nil {
		m.many[s.id] = s
		return
	}
	if d.one == nil {
		d.one = s
		return
	}
	m := d.extra()
	m.many = make(map[protocol.StreamID]*Stream, 4)
	m.many[d.one.id] = d.one
	m.many[s.id] = s
	d.one = nil
}

func (d *downstream) removeStream(id protocol.StreamID) {
	if m := d.more; m != nil && m.many != nil {
		delete(m.many, id)
		if len(m.many) == 0 {
			m.many = nil // an idle connection keeps no table
		}
		return
	}
	if s := d.one; s != nil && s.id == id {
		d.one = nil
	}
}

// eachStream calls fn for every active stream; fn may end streams.
func (d *downstream) eachStream(fn func(s *Stream)) {
	if s := d.one; s != nil {
		fn(s)
		return
	}
	if m := d.more; m != nil {
		for _, s := range m.many {
			fn(s)
		}
	}
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
	d.c = c
	if id := c.Conn().ExecutorID(); id != d.ex.id {
		d.ex = d.ex.f.exec(id)
	}
	d.ex.f.stats.cxTotal.Add(1)
	d.ex.f.stats.cxActive.Add(1)
	d.ex.idleStart(d)
	return pipeline.Continue
}

func (d *downstream) OnData(_ *pipeline.Connection, in reactor.View, end bool) pipeline.Status {
	if d.closed {
		in.Skip(in.Len())
		return pipeline.StopIteration
	}
	d.ex.enterRead()
	defer d.ex.leaveRead()
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
			d.ex.f.stats.protocolErr.Add(1)
			d.c.Logger().Debug("downstream protocol error", "conn", d.rc().ID(), "remote", d.rc().RemoteAddr(), "err", err)
			d.rc().Close(err)
			return pipeline.StopIteration
		}
		// Request heads the upstream codecs held back to coalesce with body bytes leave now.
		d.eachStream(flushUpstream)
	}
	if end {
		d.peerEnded = true
		// The codec decides what the client's FIN means: the end of a tunnel, or a request
		// body cut short.
		if e, ok := d.codec.(protocol.EOFHandler); ok {
			e.OnEOF()
		}
		if d.numStreams() == 0 && !d.closed {
			d.rc().Close(nil)
		}
	}
	return pipeline.StopIteration
}

func flushUpstream(s *Stream) {
	if s.up != nil {
		flush(s.up.codec)
	}
}

// maxDetectBytes bounds how much is read before a protocol must be recognized.
const maxDetectBytes = 64

func (d *downstream) detect(in reactor.View) bool {
	if len(d.ex.f.codecs) == 1 {
		d.setCodec(0)
		return true
	}
	codec, m, err := protocol.Detect(in.Peek(min(in.Len(), maxDetectBytes)), d.ex.f.codecs)
	if err != nil {
		// Envoy's AUTO: what is not the HTTP/2 preface is HTTP/1.1, whose codec answers
		// malformed input with a 400 instead of a silent close.
		for _, c := range d.ex.f.codecs {
			if c.Name == "http1" {
				codec, m, err = c, protocol.Yes, nil
				break
			}
		}
	}
	switch {
	case err != nil:
		d.ex.f.stats.protocolErr.Add(1)
		d.rc().Close(err)
		return false
	case m == protocol.NeedMore && in.Len() < maxDetectBytes:
		return false
	case m != protocol.Yes:
		d.rc().Close(protocol.ErrUnknownProtocol)
		return false
	}
	for i := range d.ex.f.codecs {
		if d.ex.f.codecs[i].Name == codec.Name {
			d.setCodec(i)
			return true
		}
	}
	d.rc().Close(protocol.ErrUnknownProtocol) // Detect returns one of the codecs it was given
	return false
}

func (d *downstream) setCodec(i int) {
	d.proto = uint8(i)
	d.codec = d.ex.f.codecs[i].NewServer(d.rc(), (*requestSink)(d))
	d.ex.batch(d.codec)
	// The manager flushes held heads itself (after each upstream read, see upConn.OnData):
	// saying so at once spares the codec its per-head Exec fallback, which it would otherwise
	// keep using because a response that completes within one upstream read leaves no
	// stream to flush.
	flush(d.codec)
}

// KeepWriteOpen answers streams still in flight after the client's FIN.
func (d *downstream) KeepWriteOpen(*pipeline.Connection) bool { return d.numStreams() > 0 }

func (d *downstream) OnDownstreamWritable(*pipeline.Connection) {
	if m := d.more; m != nil {
		for _, uc := range m.upPaused {
			uc.pausedByDown = false
			if !uc.closed {
				uc.rc.PauseRead(false)
			}
		}
		clear(m.upPaused)
		m.upPaused = m.upPaused[:0]
	}
	d.eachStream(releaseOwedResponse)
}

func releaseOwedResponse(s *Stream) {
	if s.respOwed > 0 {
		s.releaseResponse()
	}
}

// pauseUpstream stops reading uc until the downstream connection drains.
func (d *downstream) pauseUpstream(uc *upConn) {
	uc.rc.PauseRead(true)
	m := d.extra()
	m.upPaused = append(m.upPaused, uc)
}

func (d *downstream) OnClose(_ *pipeline.Connection, err error) {
	d.closed = true
	d.ex.idleStop(d)
	if d.c != nil { // OnNewConnection ran (an earlier filter may have stopped the chain)
		d.ex.f.stats.cxActive.Add(-1)
	}
	d.eachStream(func(s *Stream) { s.downstreamGone(err) })
}

// streamDone removes a finished stream and applies per-connection limits.
func (d *downstream) streamDone(s *Stream) {
	d.removeStream(s.id)
	if d.closed {
		return
	}
	if d.numStreams() == 0 {
		if d.peerEnded {
			d.rc().Close(nil)
			return
		}
		d.ex.idleStart(d)
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
	if d.numStreams() >= d.ex.f.cfg.MaxStreams {
		h.Release()
		d.codec.Reset(id, fmt.Errorf("%w: too many concurrent streams", protocol.ErrRefusedStream))
		return
	}
	if max := d.ex.f.cfg.MaxRequestsPerConnection; max > 0 {
		m := d.extra()
		m.requests++
		if m.requests >= max {
			d.codec.Drain()
		}
	}
	d.ex.idleStop(d)
	s := newStream(d, id, h, end)
	d.addStream(s)
	s.start()
}

func (r *requestSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	d := (*downstream)(r)
	s := d.stream(id)
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
	if s := d.stream(id); s != nil {
		s.downstreamWritable()
	}
}

func (r *requestSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	d := (*downstream)(r)
	if s := d.stream(id); s != nil {
		s.requestTrailers(t)
		return
	}
	t.Release()
}

func (r *requestSink) OnReset(id protocol.StreamID, err error) {
	d := (*downstream)(r)
	if s := d.stream(id); s != nil {
		s.downstreamGone(err)
	}
}

// view returns the first n bytes of in as a one-element vector in the executor's scratch
// space (nil for n == 0: Peek(0) would mean "everything"). The caller clears ex.vec[0] after
// the call it passed the vector to.
func (d *downstream) view(in reactor.View, n int) [][]byte {
	if n == 0 {
		return nil
	}
	d.ex.vec[0] = in.Peek(n)
	return d.ex.vec[:]
}
