package stream

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/router"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// Errors a stream ends with; they reach logs and the reset reasons given to codecs.
var (
	ErrUpstreamReset   = errors.New("stream: upstream reset before response headers")
	ErrUpstreamTimeout = errors.New("stream: upstream request timeout")
	ErrDownstreamGone  = errors.New("stream: downstream went away")
	ErrShed            = errors.New("stream: request pool saturated")
	ErrStreamIdle      = errors.New("stream: idle timeout")
)

// Response flags, in Envoy's access-log vocabulary.
const (
	FlagNoRoute        = "NR"
	FlagNoCluster      = "NC"
	FlagNoHealthy      = "UH"
	FlagConnectFailure = "UF"
	FlagOverflow       = "UO"
	FlagTimeout        = "UT"
	FlagUpstreamReset  = "UR"
	FlagDownstreamGone = "DC"
	FlagShed           = "SH"
	FlagDirect         = "DR"
	FlagFilter         = "FI"
	FlagStreamIdle     = "SI"
)

// Info is what is known about a stream, for filters, access logs and tests.
type Info struct {
	Start time.Time
	// Protocol is the downstream codec's name.
	Protocol string
	// Route is the matched route's name; Cluster and Upstream the chosen cluster and host.
	Route    string
	Cluster  string
	Upstream string
	// Status is the response status sent downstream (HTTP semantics; RPC codecs map theirs).
	Status int
	// Attempts counts upstream attempts (1 + retries).
	Attempts int
	// BytesReceived and BytesSent count request and response body bytes.
	BytesReceived, BytesSent uint64
	// Flag says why Strait answered itself, if it did.
	Flag string
}

type phase uint8

const (
	phaseDecoding   phase = iota // decode filters running or stopped by one
	phaseDispatched              // decode filters and routing running on the request pool
	phaseUpstream                // routed: waiting for or bound to an upstream stream
	phaseDone                    // finished; only a pending dispatch may still refer to it
)

type localReply struct {
	status int
	body   string
	flag   string
}

// Stream is one request and its response. Its methods run on the downstream connection's
// executor unless noted.
type Stream struct {
	d      *downstream
	id     protocol.StreamID
	req    protocol.Headers
	info   Info
	gen    uint32
	phase  phase
	reqEnd bool // the downstream sent the whole request
	// reqSent: the whole request went to the current upstream attempt.
	reqSent bool

	filters   []Filter
	encoders  []EncoderFilter
	observers []CompletionObserver
	next      int

	dispatched bool        // a pool task owns the decode chain
	offExec    bool        // the decode chain runs off the executor (pool task)
	local      *localReply // a local reply requested off the executor
	matched    *router.Entry
	route      *router.Entry
	weighted   *router.WeightedCluster
	cluster    pipeline.Cluster
	host       pipeline.Host
	waitingIn  *connPool
	up         *upConn
	upID       protocol.StreamID
	pending    []*reactor.Buffer // request body not yet sent upstream
	pendingLen int
	retained   []*reactor.Buffer // request body kept for a retry
	retainLen  int
	retain     bool // the route retries: keep the body
	retainOver bool // the body outgrew RetryBufferLimit: no retry
	trailers   protocol.Headers
	holding    bool // paused downstream reading for our pending body
	attempt    int
	retrying   bool // holds a circuit-breaker retry slot
	holdsRq    bool // holds a circuit-breaker request slot
	discarding bool // dropping a response we are going to retry
	respStart  bool
	timer      *time.Timer // the route deadline and the stream idle timeout, whichever is first
	deadline   time.Time   // route timeout; zero when none
	lastActive time.Time   // last byte of this stream in either direction
	tryTimer   *time.Timer
	lb         pipeline.LBContext

	// reqOwed and respOwed are body bytes taken from a StreamFlow codec (the downstream's
	// request, the upstream's response) and not yet returned to its peer's flow-control
	// window because the other side was busy: the peer's window closes instead of the
	// proxy's memory growing.
	reqOwed, respOwed int
}

func newStream(d *downstream, id protocol.StreamID, h protocol.Headers, end bool) *Stream {
	s := &Stream{d: d, id: id, req: h, reqEnd: end}
	s.info.Start = time.Now()
	s.info.Protocol = d.proto.Name
	return s
}

// ID is the stream's id on its downstream connection.
func (s *Stream) ID() protocol.StreamID { return s.id }

// Request is the request head; filters may change it before routing.
func (s *Stream) Request() protocol.Headers { return s.req }

// Info describes the stream so far.
func (s *Stream) Info() *Info { return &s.info }

// Route is the matched route, nil before routing or when none matched.
func (s *Stream) Route() *router.Entry { return s.route }

// Connection is the downstream connection.
func (s *Stream) Connection() *pipeline.Connection { return s.d.c }

// Exec runs fn on the stream's executor (safe from any goroutine); false if the connection
// is gone.
func (s *Stream) Exec(fn func()) bool { return s.d.rc.Exec(fn) }

// AddFilter implements FilterManager.
func (s *Stream) AddFilter(f Filter) {
	s.filters = append(s.filters, f)
	if o, ok := f.(CompletionObserver); ok {
		s.observers = append(s.observers, o)
	}
}

// AddEncoderFilter implements FilterManager.
func (s *Stream) AddEncoderFilter(f EncoderFilter) {
	s.encoders = append(s.encoders, f)
	if o, ok := f.(CompletionObserver); ok {
		if _, dup := f.(Filter); !dup {
			s.observers = append(s.observers, o)
		}
	}
}

func (s *Stream) start() {
	f := s.d.f
	f.stats.rqTotal.Add(1)
	f.stats.rqActive.Add(1)
	for _, ff := range f.filters {
		ff(s)
	}
	if f.pooled {
		s.phase, s.dispatched = phaseDispatched, true
		if !f.deps.Go(s.runDispatched) {
			s.phase, s.dispatched = phaseDecoding, false
			f.stats.shed.Add(1)
			// Stop taking requests until the pool has room: the client sees back-pressure,
			// and this request gets the protocol's busy answer.
			s.d.rc.PauseRead(true)
			s.d.rc.Exec(func() { s.d.rc.PauseRead(false) })
			s.sendLocal(503, "request pool saturated\n", FlagShed)
		}
		return
	}
	if s.runFilters() {
		s.forward(f.router.Route(s.req))
	}
}

// runDispatched is the pool task: decode filters and route matching, then back to the
// executor.
func (s *Stream) runDispatched() {
	defer func() {
		if r := recover(); r != nil {
			s.d.f.log.Error("panic in stream filter", "conn", s.d.rc.ID(), "stream", s.id,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.local = &localReply{500, "internal error\n", FlagFilter}
		}
		if !s.d.rc.Exec(s.afterDispatch) {
			// The connection is gone and will not run afterDispatch: the task still owns
			// the request head.
			s.req.Release()
			s.d.f.stats.rqActive.Add(-1)
		}
	}()
	s.offExec = true
	if s.runFilters() && s.local == nil {
		s.matched = s.d.f.router.Route(s.req)
	}
	s.offExec = false
}

func (s *Stream) afterDispatch() {
	s.dispatched = false
	if s.phase == phaseDone {
		s.release() // finished while the task ran
		return
	}
	s.phase = phaseDecoding
	switch {
	case s.local != nil:
		l := s.local
		s.local = nil
		s.sendLocal(l.status, l.body, l.flag)
	case s.next == len(s.filters):
		s.forward(s.matched)
	}
}

// runFilters runs decode filters from the next one; true when all continued.
func (s *Stream) runFilters() bool {
	for s.next < len(s.filters) {
		f := s.filters[s.next]
		s.next++
		if f.DecodeHeaders(s, s.req, s.reqEnd) == StopIteration {
			return false
		}
		if s.local != nil || s.phase == phaseDone {
			return false
		}
	}
	return true
}

// ContinueDecoding resumes a decode chain a filter stopped. Executor only.
func (s *Stream) ContinueDecoding() {
	if s.phase != phaseDecoding {
		return
	}
	if s.runFilters() {
		s.forward(s.d.f.router.Route(s.req))
	}
}

// SendLocalReply answers the request without an upstream (a filter rejecting it). From a
// filter running on the request pool the reply is sent once the task returns.
func (s *Stream) SendLocalReply(status int, body string) {
	if s.offExec {
		s.local = &localReply{status, body, FlagFilter}
		return
	}
	s.sendLocal(status, body, FlagFilter)
}

// forward routes the request and sends it upstream.
func (s *Stream) forward(e *router.Entry) {
	f := s.d.f
	s.phase = phaseUpstream
	if e == nil {
		f.stats.noRoute.Add(1)
		s.sendLocal(404, "", FlagNoRoute)
		return
	}
	s.route = e
	s.info.Route = e.Name
	if e.Direct != nil {
		s.sendLocal(e.Direct.Status, e.Direct.Body, FlagDirect)
		return
	}
	for _, n := range e.RequestHeadersToRemove {
		s.req.Del(n)
	}
	addHeaders(s.req, e.RequestHeadersToAdd)
	name, wc := e.PickCluster()
	s.weighted = wc
	if wc != nil {
		for _, n := range wc.RequestHeadersToRemove {
			s.req.Del(n)
		}
		addHeaders(s.req, wc.RequestHeadersToAdd)
	}
	a := e.Action
	if a.HostRewrite != "" {
		s.req.Set(protocol.Authority, a.HostRewrite)
	}
	if a.PrefixRewrite != "" {
		if p, ok := s.req.Get(protocol.Path); ok {
			if np, ok := e.RewritePath(p); ok {
				s.req.Set(protocol.Path, np)
			}
		}
	}
	s.info.Cluster = name
	s.cluster = f.deps.Clusters.Cluster(name)
	if s.cluster == nil {
		f.stats.noCluster.Add(1)
		s.sendLocal(503, "cluster not found\n", FlagNoCluster)
		return
	}
	cb := s.cluster.Limits()
	if !pipeline.TryAcquire(&cb.Requests, cb.MaxRequests) {
		f.stats.overflow.Add(1)
		s.sendLocal(503, "upstream overflow\n", FlagOverflow)
		return
	}
	s.holdsRq = true
	s.retain = a.Retry != nil && a.Retry.NumRetries > 0
	if a.Timeout > 0 {
		s.deadline = s.info.Start.Add(a.Timeout)
	}
	s.lastActive = time.Now()
	s.armTimer()
	s.connect()
}

// responseHeaderMods applies the route's and the weighted cluster's response header changes.
func (s *Stream) responseHeaderMods(h protocol.Headers) {
	if e := s.route; e != nil {
		for _, n := range e.ResponseHeadersToRemove {
			h.Del(n)
		}
		addHeaders(h, e.ResponseHeadersToAdd)
	}
	if wc := s.weighted; wc != nil {
		for _, n := range wc.ResponseHeadersToRemove {
			h.Del(n)
		}
		addHeaders(h, wc.ResponseHeadersToAdd)
	}
}

func addHeaders(h protocol.Headers, add []router.HeaderValue) {
	for _, hv := range add {
		if hv.Append {
			h.Add(hv.Name, hv.Value)
		} else {
			h.Set(hv.Name, hv.Value)
		}
	}
}

// afterFunc runs fn on the executor after d, unless the stream finished or moved on to
// another generation (attempt) by then.
func (s *Stream) afterFunc(d time.Duration, fn func(*Stream)) *time.Timer {
	gen := s.gen
	return time.AfterFunc(d, func() {
		s.d.rc.Exec(func() {
			if s.gen == gen && s.phase != phaseDone {
				fn(s)
			}
		})
	})
}

// connect picks a host and attaches the stream to that host's pool.
func (s *Stream) connect() {
	f := s.d.f
	// The context lives in the stream: a local would escape through the interface call.
	s.lb = pipeline.LBContext{DownstreamAddr: s.d.rc.RemoteAddr(), Attempt: s.attempt, Previous: s.host}
	s.hash(&s.lb)
	host := s.cluster.ChooseHost(&s.lb)
	if host == nil {
		f.stats.noHealthy.Add(1)
		s.sendLocal(503, "no healthy upstream\n", FlagNoHealthy)
		return
	}
	s.host = host
	s.info.Upstream = host.Address()
	s.info.Attempts = s.attempt + 1
	if p := s.route.Action.Retry; p != nil && p.PerTryTimeout > 0 {
		s.tryTimer = s.afterFunc(p.PerTryTimeout, (*Stream).onTryTimeout)
	}
	codec := f.upstreamCodec(s.d.proto)
	if o, ok := s.cluster.(pipeline.ConnPoolSettings); ok {
		if name := o.ConnPool().Protocol; name != "" {
			if c, ok := f.deps.Codecs.Lookup(name); ok && c.NewClient != nil {
				codec = c
			}
		}
	}
	s.d.ex.pool(f, host, s.cluster, codec).attach(s)
}

func (s *Stream) hash(lb *pipeline.LBContext) {
	for _, hp := range s.route.Action.HashPolicy {
		var key string
		switch {
		case hp.Header != "":
			v, ok := s.req.Get(hp.Header)
			if !ok {
				continue
			}
			key = v
		case hp.SourceIP:
			if a := s.d.rc.RemoteAddr(); a != nil {
				key = a.String()
				if i := lastColon(key); i > 0 {
					key = key[:i]
				}
			}
		}
		lb.HashKey, lb.HasHash = fnv64(key), true
		if hp.Terminal {
			return
		}
	}
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// bind starts the request on an upstream stream of uc.
func (s *Stream) bind(uc *upConn, id protocol.StreamID) {
	s.waitingIn = nil
	s.up, s.upID = uc, id
	c := uc.codec
	noBody := s.reqEnd && s.pendingLen == 0 && len(s.pending) == 0 && s.trailers == nil
	if err := c.EncodeHeaders(id, s.req, noBody); err != nil {
		s.upstreamFailed(err)
		return
	}
	for i, b := range s.pending {
		last := i == len(s.pending)-1 && s.reqEnd && s.trailers == nil
		if err := c.EncodeData(id, b.Bytes(), last); err != nil {
			s.upstreamFailed(err)
			return
		}
		s.keep(b)
		s.pending[i] = nil
	}
	s.pending, s.pendingLen = s.pending[:0], 0
	s.releaseRequest()
	if s.reqEnd && s.trailers != nil {
		if err := c.EncodeTrailers(id, s.trailers); err != nil {
			s.upstreamFailed(err)
			return
		}
	}
	s.reqSent = s.reqEnd
	if !s.reqEnd && !s.d.decoding {
		// Bound after a dial or a pool task, not inside a downstream read: the body comes
		// with a later read, so the head must not wait for it. (Inside a read, the flush
		// after Decode sends the head together with whatever body came with it.)
		flush(c)
	}
	if s.holding {
		s.holding = false
		s.d.heldRead--
		if s.d.heldRead == 0 {
			s.d.rc.PauseRead(false)
		}
	}
}

// keep retains a sent body chunk for a retry, or releases it.
func (s *Stream) keep(b *reactor.Buffer) {
	if s.retain && !s.retainOver {
		s.retained = append(s.retained, b)
		s.retainLen += b.Len()
		if s.retainLen <= s.d.f.cfg.RetryBufferLimit {
			return
		}
		s.retainOver = true
		s.dropRetained()
		return
	}
	b.Release()
}

func (s *Stream) dropRetained() {
	for i, b := range s.retained {
		b.Release()
		s.retained[i] = nil
	}
	s.retained, s.retainLen = s.retained[:0], 0
}

// requestData handles n request body bytes at the front of in.
func (s *Stream) requestData(in reactor.View, n int, end bool) {
	s.info.BytesReceived += uint64(n)
	if s.timer != nil {
		s.lastActive = time.Now()
	}
	if s.phase == phaseDone {
		in.Skip(n)
		s.consumeRequest(n)
		return
	}
	if end {
		s.reqEnd = true
	}
	defer s.creditRequest(n)
	uc := s.up
	if uc != nil && len(s.pending) == 0 && !uc.rc.Congested() {
		var err error
		if s.retain && !s.retainOver {
			b := in.Detach(n)
			err = uc.codec.EncodeData(s.upID, b.Bytes(), end)
			s.keep(b)
		} else {
			err = uc.codec.EncodeData(s.upID, s.d.view(in, n), end)
			s.d.vec[0] = nil
			in.Skip(n)
		}
		if err != nil {
			s.upstreamFailed(err)
			return
		}
		if end {
			s.reqSent = true
		}
		if uc.rc.Congested() && s.downFlow() == nil {
			// A downstream with per-stream flow control is held back by its window
			// (creditRequest) instead: pausing it would stall its other streams.
			uc.pauseDownstream(s.d)
		}
		return
	}
	if n > 0 {
		b := in.Detach(n)
		s.pending = append(s.pending, b)
		s.pendingLen += n
	} else if end && uc != nil && len(s.pending) == 0 {
		// An empty final chunk while the upstream is congested: nothing to buffer.
		if err := uc.codec.EncodeData(s.upID, nil, true); err != nil {
			s.upstreamFailed(err)
		}
		s.reqSent = true
		return
	}
	if s.pendingLen > s.d.f.cfg.BufferLimit && !s.holding {
		s.holding = true
		s.d.heldRead++
		s.d.rc.PauseRead(true)
	}
	if uc != nil && !uc.rc.Congested() {
		s.flushPending()
	}
}

// flushPending sends buffered body bytes to the bound upstream.
func (s *Stream) flushPending() {
	uc := s.up
	for len(s.pending) > 0 && !uc.rc.Congested() {
		b := s.pending[0]
		last := len(s.pending) == 1 && s.reqEnd && s.trailers == nil
		s.pendingLen -= b.Len()
		s.pending[0] = nil
		s.pending = s.pending[1:]
		if err := uc.codec.EncodeData(s.upID, b.Bytes(), last); err != nil {
			b.Release()
			s.upstreamFailed(err)
			return
		}
		s.keep(b)
		if last {
			s.reqSent = true
		}
	}
	if len(s.pending) == 0 && s.reqEnd && s.trailers != nil && !s.reqSent {
		// Trailers that arrived while body bytes waited go after them.
		if err := uc.codec.EncodeTrailers(s.upID, s.trailers); err != nil {
			s.upstreamFailed(err)
			return
		}
		s.reqSent = true
	}
	s.releaseRequest()
	if len(s.pending) == 0 && s.holding {
		s.holding = false
		s.d.heldRead--
		if s.d.heldRead == 0 {
			s.d.rc.PauseRead(false)
		}
	}
}

func (s *Stream) requestTrailers(t protocol.Headers) {
	s.reqEnd = true
	if s.phase == phaseDone {
		t.Release()
		return
	}
	if s.trailers != nil {
		s.trailers.Release()
	}
	s.trailers = t
	if s.up != nil && len(s.pending) == 0 {
		if err := s.up.codec.EncodeTrailers(s.upID, t); err != nil {
			s.upstreamFailed(err)
			return
		}
		s.reqSent = true
	}
}

// --- response path ---------------------------------------------------------------------

// responseSink is the stream seen as its upstream stream's Sink.
type responseSink Stream

var _ protocol.Sink = (*responseSink)(nil)

func (r *responseSink) OnHeaders(_ protocol.StreamID, h protocol.Headers, end bool) {
	s := (*Stream)(r)
	if s.phase == phaseDone {
		h.Release()
		return
	}
	status := 0
	if v, ok := h.Get(protocol.Status); ok {
		status, _ = strconv.Atoi(v)
	}
	if !s.respStart && s.retryStatus(status) {
		h.Release()
		s.abandonUpstream(fmt.Errorf("retrying after status %d", status))
		s.retry()
		return
	}
	s.respStart = true
	s.stopTryTimer()
	s.dropRetained()
	s.retain = false
	for i := len(s.encoders) - 1; i >= 0; i-- {
		s.encoders[i].EncodeHeaders(s, h, end)
	}
	s.responseHeaderMods(h)
	s.info.Status = status
	err := s.d.codec.EncodeHeaders(s.id, h, end)
	h.Release()
	if err != nil {
		s.downstreamGone(err)
		return
	}
	if end {
		s.responseDone()
	}
}

func (r *responseSink) OnData(_ protocol.StreamID, in reactor.View, n int, end bool) {
	s := (*Stream)(r)
	if s.phase == phaseDone {
		in.Skip(n)
		if f := s.upFlow(); f != nil {
			f.Consume(s.upID, n)
		}
		return
	}
	s.info.BytesSent += uint64(n)
	if s.timer != nil {
		s.lastActive = time.Now()
	}
	d := s.d
	err := d.codec.EncodeData(s.id, d.view(in, n), end)
	d.vec[0] = nil
	in.Skip(n)
	if err != nil {
		s.downstreamGone(err)
		return
	}
	if end {
		s.responseDone()
		return
	}
	if s.upFlow() != nil {
		// A multiplexed upstream is held back per stream, by its window.
		s.creditResponse(n)
		return
	}
	if s.downstreamBusy() && s.up != nil && !s.up.pausedByDown {
		s.up.pausedByDown = true
		d.pauseUpstream(s.up)
	}
}

// OnStreamWritable implements protocol.FlowSink: the upstream codec sent the request bytes
// it held for this stream.
func (r *responseSink) OnStreamWritable(protocol.StreamID) {
	s := (*Stream)(r)
	if s.phase == phaseDone || s.up == nil {
		return
	}
	if len(s.pending) > 0 {
		s.flushPending()
		return // flushPending returns the request credit
	}
	s.releaseRequest()
}

// --- per-stream flow control ----------------------------------------------------------

func (s *Stream) downFlow() protocol.StreamFlow {
	f, _ := s.d.codec.(protocol.StreamFlow)
	return f
}

func (s *Stream) upFlow() protocol.StreamFlow {
	if s.up == nil {
		return nil
	}
	f, _ := s.up.codec.(protocol.StreamFlow)
	return f
}

// upstreamBusy reports whether request bytes given to the upstream now would wait: the
// stream is not bound yet or has bytes pending, the connection is congested, or its codec
// holds bytes of this stream for the peer's window.
func (s *Stream) upstreamBusy() bool {
	uc := s.up
	if uc == nil || len(s.pending) > 0 || uc.rc.Congested() {
		return true
	}
	f := s.upFlow()
	return f != nil && f.StreamCongested(s.upID)
}

// downstreamBusy is upstreamBusy for response bytes.
func (s *Stream) downstreamBusy() bool {
	if s.d.rc.Congested() {
		return true
	}
	f := s.downFlow()
	return f != nil && f.StreamCongested(s.id)
}

// consumeRequest returns discarded request bytes at once.
func (s *Stream) consumeRequest(n int) {
	if f := s.downFlow(); f != nil {
		f.Consume(s.id, n)
	}
}

// creditRequest returns n request body bytes to the downstream's window once they are on
// their way upstream; while the upstream is busy they are owed (releaseRequest).
func (s *Stream) creditRequest(n int) {
	if s.downFlow() == nil {
		return
	}
	s.reqOwed += n
	s.releaseRequest()
}

func (s *Stream) releaseRequest() {
	f := s.downFlow()
	if f == nil || s.reqOwed == 0 || (s.phase != phaseDone && s.upstreamBusy()) {
		return
	}
	f.Consume(s.id, s.reqOwed)
	s.reqOwed = 0
}

// creditResponse returns n response body bytes to the upstream's window once they are on
// their way downstream; while the downstream is busy they are owed (releaseResponse).
func (s *Stream) creditResponse(n int) {
	s.respOwed += n
	s.releaseResponse()
}

func (s *Stream) releaseResponse() {
	f := s.upFlow()
	if f == nil || s.respOwed == 0 || s.downstreamBusy() {
		return
	}
	f.Consume(s.upID, s.respOwed)
	s.respOwed = 0
}

// downstreamWritable runs when the downstream can take this stream's response bytes
// again (its codec's queue drained, or its connection is no longer congested).
func (s *Stream) downstreamWritable() {
	if s.phase == phaseDone || s.up == nil {
		return
	}
	if uc := s.up; uc.pausedByDown && !s.downstreamBusy() {
		uc.pausedByDown = false
		if !uc.closed {
			uc.rc.PauseRead(false)
		}
	}
	s.releaseResponse()
}

func (r *responseSink) OnTrailers(_ protocol.StreamID, t protocol.Headers) {
	s := (*Stream)(r)
	if s.phase == phaseDone {
		t.Release()
		return
	}
	err := s.d.codec.EncodeTrailers(s.id, t)
	t.Release()
	if err != nil {
		s.downstreamGone(err)
		return
	}
	s.responseDone()
}

func (r *responseSink) OnReset(_ protocol.StreamID, err error) {
	s := (*Stream)(r)
	if s.phase == phaseDone {
		return
	}
	if uc := s.up; uc != nil {
		// The codec already forgot the stream; so must the connection, or its close would
		// reset this stream again, possibly in the middle of a retry on another connection.
		s.up = nil
		uc.forget(s)
		if !uc.closed {
			uc.p.serve(uc)
		}
	}
	s.upstreamFailed(err)
}

// upstreamFailed handles a failure of the current upstream attempt after it was bound.
func (s *Stream) upstreamFailed(err error) {
	f := s.d.f
	f.stats.upReset.Add(1)
	s.abandonUpstream(err)
	if !s.respStart {
		// A refused stream (REFUSED_STREAM, or above a GOAWAY's last stream id) never
		// reached the application: it may be retried whatever its method.
		sent := !errors.Is(err, protocol.ErrRefusedStream)
		if s.canRetry(router.RetryReset|router.Retry5xx|router.RetryGatewayError, sent) {
			s.retry()
			return
		}
		s.sendLocal(503, "upstream connect error or disconnect/reset before headers\n", FlagUpstreamReset)
		return
	}
	s.resetDownstream(fmt.Errorf("%w: %w", ErrUpstreamReset, err))
}

// connectFailed is called by the pool when the connection this stream waited for failed.
func (s *Stream) connectFailed(err error) {
	s.waitingIn = nil
	if s.phase == phaseDone {
		return
	}
	s.d.f.stats.upConnectFail.Add(1)
	if s.canRetry(router.RetryConnectFailure|router.RetryReset|router.Retry5xx|router.RetryGatewayError, false) {
		s.retry()
		return
	}
	s.sendLocal(503, "upstream connect error\n", FlagConnectFailure)
}

// overflow is called by the pool when the cluster's limits refuse the stream.
func (s *Stream) overflow() {
	s.d.f.stats.overflow.Add(1)
	s.sendLocal(503, "upstream overflow\n", FlagOverflow)
}

// idempotent reports whether the request method may be retried after it reached a host.
func (s *Stream) idempotent() bool {
	m, _ := s.req.Get(protocol.Method)
	switch m {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	case "":
		// RPC protocols carry no method: whether a call may run twice is the operator's
		// statement, made by configuring retry_on reset for the route.
		return true
	}
	return false
}

// canRetry reports whether the policy allows another attempt for a failure of one of the
// given kinds; sent says the request may have reached the host.
func (s *Stream) canRetry(kinds router.RetryOn, sent bool) bool {
	if s.route == nil || s.route.Action == nil {
		return false
	}
	p := s.route.Action.Retry
	if p == nil || p.On&kinds == 0 || s.attempt >= p.NumRetries || s.respStart || s.retainOver || !s.reqEnd {
		return false
	}
	if sent && !s.idempotent() {
		return false
	}
	if !s.retrying {
		cb := s.cluster.Limits()
		if !pipeline.TryAcquire(&cb.Retries, cb.MaxRetries) {
			return false
		}
		s.retrying = true
	}
	return true
}

func (s *Stream) retryStatus(status int) bool {
	if status < 500 && (s.route == nil || s.route.Action == nil || s.route.Action.Retry == nil) {
		return false
	}
	p := s.route.Action.Retry
	if p == nil {
		return false
	}
	kind := router.RetryOn(0)
	if status >= 500 {
		kind |= router.Retry5xx
	}
	if status == 502 || status == 503 || status == 504 {
		kind |= router.RetryGatewayError
	}
	for _, c := range p.RetriableStatusCodes {
		if c == status {
			kind |= router.RetryRetriableStatusCodes
		}
	}
	return kind != 0 && s.canRetry(kind, true)
}

// retry starts the next attempt with the retained request.
func (s *Stream) retry() {
	s.d.f.stats.retry.Add(1)
	s.attempt++
	s.gen++
	s.stopTryTimer()
	s.discarding = false
	s.reqSent = false
	s.pending = append(s.retained, s.pending...)
	s.pendingLen = s.retainLen
	s.retained, s.retainLen = nil, 0
	if s.timer != nil {
		s.timer.Stop()
		s.armTimer() // the generation moved on; the route deadline still holds
	}
	s.connect()
}

// idleTimeout is the configured stream idle timeout, or 0 when disabled.
func (s *Stream) idleTimeout() time.Duration {
	if d := s.d.f.cfg.StreamIdleTimeout; d > 0 {
		return d
	}
	return 0
}

// armTimer schedules the stream's one timer at the earlier of the route deadline and the
// idle deadline. Activity does not move the timer: when it fires early it re-arms itself.
func (s *Stream) armTimer() {
	next := s.deadline
	if idle := s.idleTimeout(); idle > 0 {
		if at := s.lastActive.Add(idle); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() {
		return
	}
	d := time.Until(next)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	s.timer = s.afterFunc(d, (*Stream).onTimer)
}

func (s *Stream) onTimer() {
	now := time.Now()
	switch {
	case !s.deadline.IsZero() && !now.Before(s.deadline):
		s.onTimeout()
	case s.idleTimeout() > 0 && now.Sub(s.lastActive) >= s.idleTimeout():
		s.d.f.stats.idleTimeout.Add(1)
		s.abandonUpstream(ErrStreamIdle)
		if !s.respStart {
			s.sendLocal(408, "stream idle timeout\n", FlagStreamIdle)
			return
		}
		s.resetDownstream(ErrStreamIdle)
	default:
		s.armTimer()
	}
}

func (s *Stream) onTimeout() {
	s.d.f.stats.timeout.Add(1)
	s.abandonUpstream(ErrUpstreamTimeout)
	if !s.respStart {
		s.sendLocal(504, "upstream request timeout\n", FlagTimeout)
		return
	}
	s.resetDownstream(ErrUpstreamTimeout)
}

func (s *Stream) onTryTimeout() {
	if s.respStart {
		return
	}
	s.d.f.stats.timeout.Add(1)
	s.abandonUpstream(ErrUpstreamTimeout)
	if s.canRetry(router.RetryReset|router.Retry5xx|router.RetryGatewayError, true) {
		s.retry()
		return
	}
	s.sendLocal(504, "upstream request timeout\n", FlagTimeout)
}

func (s *Stream) stopTryTimer() {
	if s.tryTimer != nil {
		s.tryTimer.Stop()
		s.tryTimer = nil
	}
}

// abandonUpstream detaches the stream from its upstream attempt, resetting that stream.
func (s *Stream) abandonUpstream(err error) {
	if p := s.waitingIn; p != nil {
		p.unwait(s)
		s.waitingIn = nil
	}
	if uc := s.up; uc != nil {
		s.up = nil
		uc.abandon(s, err)
	}
}

func (s *Stream) responseDone() {
	if uc := s.up; uc != nil {
		s.up = nil
		uc.streamDone(s, s.reqSent)
	}
	s.finish()
}

// resetDownstream ends a stream whose response already started.
func (s *Stream) resetDownstream(err error) {
	s.abandonUpstream(err)
	s.d.codec.Reset(s.id, err)
	s.finish()
}

// downstreamGone ends the stream because the client went away or reset it.
func (s *Stream) downstreamGone(err error) {
	if s.phase == phaseDone {
		return
	}
	s.info.Flag = FlagDownstreamGone
	s.abandonUpstream(fmt.Errorf("%w: %w", ErrDownstreamGone, err))
	s.finish()
}

// sendLocal answers the stream from Strait itself.
func (s *Stream) sendLocal(status int, body string, flag string) {
	if s.phase == phaseDone {
		return
	}
	if s.respStart {
		s.resetDownstream(fmt.Errorf("local reply %d after the response started", status))
		return
	}
	s.abandonUpstream(fmt.Errorf("local reply %d", status))
	s.info.Flag = flag
	s.info.Status = status
	s.respStart = true
	h := protocol.NewHeaderList(protocol.Status, strconv.Itoa(status),
		"content-length", strconv.Itoa(len(body)))
	if body != "" {
		h.Add("content-type", "text/plain")
	}
	if flag == FlagDirect {
		s.responseHeaderMods(h) // Envoy applies them to direct responses too
	}
	for i := len(s.encoders) - 1; i >= 0; i-- {
		s.encoders[i].EncodeHeaders(s, h, body == "")
	}
	err := s.d.codec.EncodeHeaders(s.id, h, body == "")
	if err == nil && body != "" {
		s.d.vec[0] = []byte(body)
		err = s.d.codec.EncodeData(s.id, s.d.vec[:], true)
		s.d.vec[0] = nil
	}
	if err != nil && !s.d.closed {
		s.d.rc.Close(err)
	}
	s.finish()
}

// finish ends the stream: counters, limits, buffers, and the downstream's stream table.
func (s *Stream) finish() {
	if s.phase == phaseDone {
		return
	}
	s.phase = phaseDone
	s.gen++
	f := s.d.f
	if s.timer != nil {
		s.timer.Stop()
	}
	s.stopTryTimer()
	if s.holdsRq {
		s.cluster.Limits().Requests.Add(-1)
		s.holdsRq = false
	}
	if s.retrying {
		s.cluster.Limits().Retries.Add(-1)
		s.retrying = false
	}
	if s.info.Status > 0 {
		f.stats.status(s.info.Status)
	}
	for _, o := range s.observers {
		o.OnStreamComplete(s)
	}
	s.d.streamDone(s)
	if !s.dispatched {
		s.release()
	}
}

// release frees what the stream holds. It runs once, after any pool task let go.
func (s *Stream) release() {
	s.d.f.stats.rqActive.Add(-1)
	for _, b := range s.pending {
		b.Release()
	}
	s.pending = nil
	s.dropRetained()
	if s.holding {
		s.holding = false
		s.d.heldRead--
		if s.d.heldRead == 0 && !s.d.closed {
			s.d.rc.PauseRead(false)
		}
	}
	if s.trailers != nil {
		s.trailers.Release()
		s.trailers = nil
	}
	s.req.Release()
}
