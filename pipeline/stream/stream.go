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
//
// What few streams need (filters, the body kept for retries) is in x, allocated on first
// use. Its timers are entries in the executor's deadline heap (see execState), not objects
// of their own. A finished stream that nothing outside the manager can still call is reused
// for the executor's next request (see reusable).
type Stream struct {
	d      *downstream
	id     protocol.StreamID
	req    protocol.Headers
	info   Info
	phase  phase
	reqEnd bool // the downstream sent the whole request
	// reqSent: the whole request went to the current upstream attempt.
	reqSent bool

	dispatched bool // a pool task owns the decode chain
	offExec    bool // the decode chain runs off the executor (pool task)
	retain     bool // the route retries: keep the body
	retainOver bool // the body outgrew RetryBufferLimit: no retry
	holding    bool // paused downstream reading for our pending body
	retrying   bool // holds a circuit-breaker retry slot
	holdsRq    bool // holds a circuit-breaker request slot
	discarding bool // dropping a response we are going to retry
	respStart  bool
	upKnows    bool  // an upstream codec may still call the stream as its sink: no reuse
	next       int32 // the next decode filter
	attempt    int32
	hidx       int32 // position in the executor's deadline heap + 1; 0 when not in it

	x          *streamMore
	local      *localReply   // a local reply requested by a filter running in a pool task
	matched    *router.Entry // the route a pool task matched
	route      *router.Entry
	weighted   *router.WeightedCluster
	cluster    pipeline.Cluster
	host       pipeline.Host
	waitingIn  *connPool
	up         *upConn
	upID       protocol.StreamID
	pending    []*reactor.Buffer // request body not yet sent upstream
	pendingLen int
	trailers   protocol.Headers

	// Deadlines, on the manager's clock (factory.clock); 0 when unset.
	due        int64 // the earliest of check and tryAt: the heap key
	check      int64 // when to check the route deadline and the stream idle timeout
	tryAt      int64 // the per-try timeout
	deadline   int64 // the route timeout
	lastActive int64 // last byte of this stream in either direction

	// reqOwed and respOwed are body bytes taken from a StreamFlow codec (the downstream's
	// request, the upstream's response) and not yet returned to its peer's flow-control
	// window because the other side was busy: the peer's window closes instead of the
	// proxy's memory growing.
	reqOwed, respOwed int
}

// streamMore is the part of a stream few streams need.
type streamMore struct {
	filters   []Filter
	encoders  []EncoderFilter
	observers []CompletionObserver
	retained  []*reactor.Buffer // request body kept for a retry
	retainLen int
}

func (s *Stream) more() *streamMore {
	if s.x == nil {
		s.x = &streamMore{}
	}
	return s.x
}

func newStream(d *downstream, id protocol.StreamID, h protocol.Headers, end bool) *Stream {
	var s *Stream
	if sp := d.ex.spare; len(sp) > 0 {
		s = sp[len(sp)-1]
		sp[len(sp)-1] = nil
		d.ex.spare = sp[:len(sp)-1]
	} else {
		s = new(Stream)
	}
	s.d, s.id, s.req, s.reqEnd = d, id, h, end
	s.info.Start = time.Now()
	s.info.Protocol = d.codecDef().Name
	return s
}

// numFilters is the number of decode filters.
func (s *Stream) numFilters() int {
	if s.x == nil {
		return 0
	}
	return len(s.x.filters)
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
func (s *Stream) Exec(fn func()) bool { return s.d.rc().Exec(fn) }

// AddFilter implements FilterManager.
func (s *Stream) AddFilter(f Filter) {
	x := s.more()
	x.filters = append(x.filters, f)
	if o, ok := f.(CompletionObserver); ok {
		x.observers = append(x.observers, o)
	}
}

// AddEncoderFilter implements FilterManager.
func (s *Stream) AddEncoderFilter(f EncoderFilter) {
	x := s.more()
	x.encoders = append(x.encoders, f)
	if o, ok := f.(CompletionObserver); ok {
		if _, dup := f.(Filter); !dup {
			x.observers = append(x.observers, o)
		}
	}
}

func (s *Stream) start() {
	f := s.d.ex.f
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
			rc := s.d.rc() // not s: it may be reused by then
			rc.PauseRead(true)
			rc.Exec(func() { rc.PauseRead(false) })
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
			s.d.ex.f.log.Error("panic in stream filter", "conn", s.d.rc().ID(), "stream", s.id,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.local = &localReply{500, "internal error\n", FlagFilter}
		}
		if !s.d.rc().Exec(s.afterDispatch) {
			// The connection is gone and will not run afterDispatch: the task still owns
			// the request head.
			s.req.Release()
			s.d.ex.f.stats.rqActive.Add(-1)
		}
	}()
	s.offExec = true
	if s.runFilters() && s.local == nil {
		s.matched = s.d.ex.f.router.Route(s.req)
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
	case int(s.next) == s.numFilters():
		s.forward(s.matched)
	}
}

// runFilters runs decode filters from the next one; true when all continued.
func (s *Stream) runFilters() bool {
	for int(s.next) < s.numFilters() {
		f := s.x.filters[s.next]
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
		s.forward(s.d.ex.f.router.Route(s.req))
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
	f := s.d.ex.f
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
		s.deadline = int64(s.info.Start.Sub(f.t0) + a.Timeout)
	}
	s.lastActive = f.clock()
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

// connect picks a host and attaches the stream to that host's pool.
func (s *Stream) connect() {
	f := s.d.ex.f
	// The context is the executor's scratch (a local would escape through the interface
	// call, costing an allocation per request): ChooseHost does not keep it.
	lb := &s.d.ex.lb
	*lb = pipeline.LBContext{DownstreamAddr: s.d.rc().RemoteAddr(), Attempt: int(s.attempt), Previous: s.host}
	s.hash(lb)
	host := s.cluster.ChooseHost(lb)
	*lb = pipeline.LBContext{}
	if host == nil {
		f.stats.noHealthy.Add(1)
		s.sendLocal(503, "no healthy upstream\n", FlagNoHealthy)
		return
	}
	s.host = host
	s.info.Upstream = host.Address()
	s.info.Attempts = int(s.attempt) + 1
	if p := s.route.Action.Retry; p != nil && p.PerTryTimeout > 0 {
		s.tryAt = f.clock() + int64(p.PerTryTimeout)
		s.updateDue()
	}
	s.d.ex.pool(f, host, s.cluster, f.upstreamCodec(s.d.codecDef(), s.cluster)).attach(s)
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
			if a := s.d.rc().RemoteAddr(); a != nil {
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
		s.d.more.heldRead--
		if s.d.more.heldRead == 0 {
			s.d.rc().PauseRead(false)
		}
	}
}

// keep retains a sent body chunk for a retry, or releases it.
func (s *Stream) keep(b *reactor.Buffer) {
	if s.retain && !s.retainOver {
		x := s.more()
		x.retained = append(x.retained, b)
		x.retainLen += b.Len()
		if x.retainLen <= s.d.ex.f.cfg.RetryBufferLimit {
			return
		}
		s.retainOver = true
		s.dropRetained()
		return
	}
	b.Release()
}

func (s *Stream) dropRetained() {
	x := s.x
	if x == nil {
		return
	}
	for i, b := range x.retained {
		b.Release()
		x.retained[i] = nil
	}
	x.retained, x.retainLen = x.retained[:0], 0
}

// requestData handles n request body bytes at the front of in.
func (s *Stream) requestData(in reactor.View, n int, end bool) {
	s.info.BytesReceived += uint64(n)
	if s.check != 0 {
		s.lastActive = s.d.ex.f.clock()
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
			s.d.ex.vec[0] = nil
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
	if s.pendingLen > s.d.ex.f.cfg.BufferLimit && !s.holding {
		s.holding = true
		s.d.extra().heldRead++
		s.d.rc().PauseRead(true)
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
		s.d.more.heldRead--
		if s.d.more.heldRead == 0 {
			s.d.rc().PauseRead(false)
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
	if x := s.x; x != nil {
		for i := len(x.encoders) - 1; i >= 0; i-- {
			x.encoders[i].EncodeHeaders(s, h, end)
		}
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
	if s.check != 0 {
		s.lastActive = s.d.ex.f.clock()
	}
	d := s.d
	err := d.codec.EncodeData(s.id, d.view(in, n), end)
	d.ex.vec[0] = nil
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
	if s.d.rc().Congested() {
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
	f := s.d.ex.f
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
	s.d.ex.f.stats.upConnectFail.Add(1)
	if s.canRetry(router.RetryConnectFailure|router.RetryReset|router.Retry5xx|router.RetryGatewayError, false) {
		s.retry()
		return
	}
	s.sendLocal(503, "upstream connect error\n", FlagConnectFailure)
}

// overflow is called by the pool when the cluster's limits refuse the stream.
func (s *Stream) overflow() {
	s.d.ex.f.stats.overflow.Add(1)
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
	if p == nil || p.On&kinds == 0 || int(s.attempt) >= p.NumRetries || s.respStart || s.retainOver || !s.reqEnd {
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
	s.d.ex.f.stats.retry.Add(1)
	s.attempt++
	s.stopTryTimer()
	s.discarding = false
	s.reqSent = false
	if x := s.x; x != nil {
		s.pending = append(x.retained, s.pending...)
		s.pendingLen = x.retainLen
		x.retained, x.retainLen = nil, 0
	}
	// The route deadline and the idle check stay as they are (the stream keeps its place in
	// the executor's heap); connect sets the new attempt's per-try timeout.
	s.connect()
}

// idleTimeout is the configured stream idle timeout, or 0 when disabled.
func (s *Stream) idleTimeout() time.Duration {
	if d := s.d.ex.f.cfg.StreamIdleTimeout; d > 0 {
		return d
	}
	return 0
}

// armTimer sets the stream's check at the earlier of the route deadline and the idle
// deadline. Activity does not move it: when it comes early, onTimer sets the next one.
func (s *Stream) armTimer() {
	next := s.deadline
	if idle := s.idleTimeout(); idle > 0 {
		if at := s.lastActive + int64(idle); next == 0 || at < next {
			next = at
		}
	}
	s.check = next
	s.updateDue()
}

// updateDue moves the stream in the executor's deadline heap to its earliest deadline.
func (s *Stream) updateDue() {
	due := s.check
	if s.tryAt != 0 && (due == 0 || s.tryAt < due) {
		due = s.tryAt
	}
	if due != s.due || (due != 0) != (s.hidx != 0) {
		s.d.ex.setDue(s, due)
		if due != 0 {
			s.d.ex.arm(s.d.rc(), due)
		}
	}
	s.due = due
}

// onDeadline runs when the executor's timer found the stream due (it is out of the heap).
func (s *Stream) onDeadline(now int64) {
	s.due = 0
	if s.tryAt != 0 && now >= s.tryAt {
		s.tryAt = 0
		s.onTryTimeout()
		if s.phase == phaseDone {
			return
		}
	}
	if s.check != 0 && now >= s.check {
		s.check = 0
		s.onTimer(now)
		if s.phase == phaseDone {
			return
		}
	}
	s.updateDue()
}

func (s *Stream) onTimer(now int64) {
	switch {
	case s.deadline != 0 && now >= s.deadline:
		s.onTimeout()
	case s.idleTimeout() > 0 && now-s.lastActive >= int64(s.idleTimeout()):
		s.d.ex.f.stats.idleTimeout.Add(1)
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
	s.d.ex.f.stats.timeout.Add(1)
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
	s.d.ex.f.stats.timeout.Add(1)
	s.abandonUpstream(ErrUpstreamTimeout)
	if s.canRetry(router.RetryReset|router.Retry5xx|router.RetryGatewayError, true) {
		s.retry()
		return
	}
	s.sendLocal(504, "upstream request timeout\n", FlagTimeout)
}

func (s *Stream) stopTryTimer() {
	if s.tryAt != 0 {
		s.tryAt = 0
		s.updateDue()
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
		s.upKnows = true // reset, not ended by the codec (upSink would drop its calls anyway)
		uc.abandon(s, err)
	}
}

func (s *Stream) responseDone() {
	if uc := s.up; uc != nil {
		s.up = nil
		if !s.reqSent {
			s.upKnows = true // its request side may still be open in the codec
		}
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
	var h protocol.Headers
	if s.req != nil && isGRPC(s.req) {
		h, body = s.grpcReply(status, body, flag), ""
	} else {
		hl := protocol.NewHeaderList(protocol.Status, strconv.Itoa(status),
			"content-length", strconv.Itoa(len(body)))
		if body != "" {
			hl.Add("content-type", "text/plain")
		}
		h = hl
	}
	if flag == FlagDirect {
		s.responseHeaderMods(h) // Envoy applies them to direct responses too
	}
	if x := s.x; x != nil {
		for i := len(x.encoders) - 1; i >= 0; i-- {
			x.encoders[i].EncodeHeaders(s, h, body == "")
		}
	}
	err := s.d.codec.EncodeHeaders(s.id, h, body == "")
	if err == nil && body != "" {
		vec := &s.d.ex.vec
		vec[0] = []byte(body)
		err = s.d.codec.EncodeData(s.id, vec[:], true)
		vec[0] = nil
	}
	if err != nil && !s.d.closed {
		s.d.rc().Close(err)
	}
	s.finish()
}

// finish ends the stream: counters, limits, buffers, and the downstream's stream table.
func (s *Stream) finish() {
	if s.phase == phaseDone {
		return
	}
	s.phase = phaseDone
	f := s.d.ex.f
	s.check, s.tryAt = 0, 0
	s.updateDue()
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
	if x := s.x; x != nil {
		for _, o := range x.observers {
			o.OnStreamComplete(s)
		}
	}
	s.d.streamDone(s)
	if !s.dispatched {
		s.release()
	}
}

// release frees what the stream holds. It runs once, after any pool task let go.
func (s *Stream) release() {
	s.d.ex.f.stats.rqActive.Add(-1)
	for _, b := range s.pending {
		b.Release()
	}
	s.pending = nil
	s.dropRetained()
	if s.holding {
		s.holding = false
		s.d.more.heldRead--
		if s.d.more.heldRead == 0 && !s.d.closed {
			s.d.rc().PauseRead(false)
		}
	}
	if s.trailers != nil {
		s.trailers.Release()
		s.trailers = nil
	}
	s.req.Release()
	if s.reusable() {
		ex := s.d.ex
		*s = Stream{}
		ex.spare = append(ex.spare, s)
	}
}

// reusable reports whether the executor may give this finished, released stream to its next
// request. Late calls must never reach a reused stream, so it must be unknown outside the
// manager:
//   - no stream filter is configured (filters, encoders and observers may keep the *Stream
//     and call it later, from any goroutine);
//   - no upstream codec holds it as a sink: ping-pong upstream codecs are given their
//     connection's upSink, which forwards only to the stream bound now; a multiplexed codec
//     is given the stream, which then is never reused (upKnows), nor is a stream whose
//     upstream stream was reset by us or ended before the whole request was sent;
//   - its deadlines are out of the executor's heap (finish takes them out), and no pool
//     task runs for it (a task's stream is released only after the task handed it back).
func (s *Stream) reusable() bool {
	return len(s.d.ex.f.filters) == 0 && !s.upKnows && !s.dispatched && s.hidx == 0 &&
		len(s.d.ex.spare) < maxSpareStreams
}
