package stream

import (
	"fmt"
	"time"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// DefaultUpstreamIdleTimeout closes a pooled upstream connection that carried no stream for
// this long. It is below the 60-75 s keep-alive timeouts of common servers (nginx: 75 s), so
// Strait, not the server, closes idle connections and a request never races a server-side
// close of a connection it just picked.
const DefaultUpstreamIdleTimeout = 50 * time.Second

// poolOptions returns a cluster's connection pool settings.
func poolOptions(c pipeline.Cluster) pipeline.ConnPoolOptions {
	if s, ok := c.(pipeline.ConnPoolSettings); ok {
		o := s.ConnPool()
		if o.IdleTimeout == 0 {
			o.IdleTimeout = DefaultUpstreamIdleTimeout
		}
		return o
	}
	return pipeline.ConnPoolOptions{IdleTimeout: DefaultUpstreamIdleTimeout}
}

// pool returns this executor's pool for a host and codec.
func (ex *execState) pool(f *factory, host pipeline.Host, c pipeline.Cluster, codec protocol.Codec) *connPool {
	k := poolKey{host, codec.Name}
	p := ex.pools[k]
	if p == nil {
		opts := poolOptions(c)
		if cc, ok := opts.CodecConfigs[codec.Name]; ok && codec.Configure != nil {
			// The cluster's own limits for this protocol (validated with the cluster).
			if configured, err := codec.Configure(cc); err == nil {
				codec = configured
			} else {
				f.log.Error("cluster codec configuration rejected; using the program's", "codec", codec.Name, "host", host.Address(), "err", err)
			}
		}
		p = &connPool{f: f, ex: ex, host: host, cluster: c, codec: codec, opts: opts, perConn: 1}
		ex.pools[k] = p
	}
	return p
}

// connPool holds one executor's connections to one host for one protocol. Ping-pong
// protocols get a connection per active stream; multiplexed ones share a few. It is touched
// only from its executor.
type connPool struct {
	f          *factory
	ex         *execState
	host       pipeline.Host
	cluster    pipeline.Cluster
	codec      protocol.Codec
	opts       pipeline.ConnPoolOptions
	ready      []*upConn // connections that can take a stream now (most recently used last)
	waiting    []*Stream // streams waiting for a connection, oldest first
	connecting int
	perConn    int // streams one connection carries (learned from the first client codec)
}

// attach gives s an upstream stream now, or queues it for a connection being dialed.
func (p *connPool) attach(s *Stream) {
	for len(p.ready) > 0 {
		uc := p.ready[len(p.ready)-1]
		if uc.closed || !uc.codec.Reusable() {
			p.ready = p.ready[:len(p.ready)-1]
			uc.inReady = false
			if !uc.closed && uc.codec.ActiveStreams() == 0 {
				uc.rc.Close(nil)
			}
			continue
		}
		if uc.codec.ActiveStreams()+1 >= uc.codec.MaxStreams() {
			p.ready = p.ready[:len(p.ready)-1]
			uc.inReady = false
		}
		uc.start(s)
		return
	}
	cb := p.cluster.Limits()
	if !pipeline.TryAcquire(&cb.PendingRequests, cb.MaxPendingRequests) {
		s.overflow()
		return
	}
	p.waiting = append(p.waiting, s)
	s.waitingIn = p
	if p.connecting*p.perConn >= len(p.waiting) {
		return // a connection on its way will take it
	}
	if !pipeline.TryAcquire(&cb.Connections, cb.MaxConnections) {
		if p.connecting == 0 && !p.hasBusy() {
			p.unwait(s)
			s.waitingIn = nil
			s.overflow()
		}
		return // a busy connection will take it when it frees up
	}
	p.dial(s.d.rc())
}

func (p *connPool) hasBusy() bool {
	return p.host.Stats().ActiveRequests.Load() > 0
}

func (p *connPool) dial(near reactor.Conn) {
	uc := &upConn{p: p}
	p.connecting++
	p.f.deps.Transport.Dial(near, p.host.Address(), p.cluster.ConnectTimeout(), uc, uc.onConnect)
}

// unwait removes a waiting stream (it gave up or was answered).
func (p *connPool) unwait(s *Stream) {
	for i, w := range p.waiting {
		if w == s {
			copy(p.waiting[i:], p.waiting[i+1:])
			p.waiting[len(p.waiting)-1] = nil
			p.waiting = p.waiting[:len(p.waiting)-1]
			p.cluster.Limits().PendingRequests.Add(-1)
			return
		}
	}
}

func (p *connPool) popWaiting() *Stream {
	s := p.waiting[0]
	copy(p.waiting, p.waiting[1:])
	p.waiting[len(p.waiting)-1] = nil
	p.waiting = p.waiting[:len(p.waiting)-1]
	p.cluster.Limits().PendingRequests.Add(-1)
	s.waitingIn = nil
	return s
}

// serve hands waiting streams to uc while it has room, then parks it as ready.
func (p *connPool) serve(uc *upConn) {
	for len(p.waiting) > 0 && !uc.closed && uc.codec.Reusable() &&
		uc.codec.ActiveStreams() < uc.codec.MaxStreams() {
		uc.start(p.popWaiting())
	}
	if uc.closed || !uc.codec.Reusable() {
		if !uc.closed && uc.codec.ActiveStreams() == 0 {
			uc.rc.Close(nil)
		}
		return
	}
	if n := uc.codec.MaxStreams(); n > 0 {
		p.perConn = n // the peer's SETTINGS may have changed it since the connect
	}
	if uc.codec.ActiveStreams() < uc.codec.MaxStreams() && !uc.inReady {
		uc.inReady = true
		p.ready = append(p.ready, uc)
	}
	if uc.codec.ActiveStreams() == 0 && p.opts.IdleTimeout > 0 {
		uc.rc.SetIdleTimeout(p.opts.IdleTimeout)
	}
}

func (p *connPool) remove(uc *upConn) {
	if !uc.inReady {
		return
	}
	uc.inReady = false
	for i, r := range p.ready {
		if r == uc {
			copy(p.ready[i:], p.ready[i+1:])
			p.ready[len(p.ready)-1] = nil
			p.ready = p.ready[:len(p.ready)-1]
			return
		}
	}
}

// upConn is one pooled upstream connection and its client codec.
type upConn struct {
	p            *connPool
	rc           reactor.Conn
	codec        protocol.ClientCodec
	streams      []*Stream
	requests     int
	closed       bool
	inReady      bool
	pausedByDown bool          // reading paused because a downstream is congested
	pausedDown   []*downstream // downstreams paused because this connection is congested
}

var _ reactor.Handler = (*upConn)(nil)

func (uc *upConn) onConnect(rc reactor.Conn, err error) {
	p := uc.p
	p.connecting--
	if err != nil {
		p.cluster.Limits().Connections.Add(-1)
		p.host.Stats().ConnectFails.Add(1)
		// Fail the waiter this dial was for, unless other dials still cover every waiter.
		if len(p.waiting) > p.connecting*p.perConn {
			p.popWaiting().connectFailed(err)
		}
		return
	}
	uc.rc = rc
	uc.codec = p.codec.NewClient(rc)
	p.ex.batch(uc.codec)
	flush(uc.codec) // held request heads are flushed by the manager (see setCodec)
	if n := uc.codec.MaxStreams(); n > 0 {
		p.perConn = n
	}
	st := p.host.Stats()
	st.ActiveConns.Add(1)
	st.TotalConns.Add(1)
	p.f.stats.upCxTotal.Add(1)
	p.serve(uc)
}

// start opens an upstream stream for s on this connection.
func (uc *upConn) start(s *Stream) {
	var sink protocol.Sink = (*upSink)(uc)
	if uc.codec.MaxStreams() != 1 {
		// A multiplexed codec gets the stream itself (no lookup per frame); the stream is
		// then not reused, since the codec's later calls could not be told apart.
		sink = (*responseSink)(s)
		s.upKnows = true
	}
	id, err := uc.codec.NewStream(sink)
	if err != nil {
		s.connectFailed(fmt.Errorf("upstream stream: %w", err))
		return
	}
	uc.streams = append(uc.streams, s)
	uc.requests++
	if uc.codec.ActiveStreams() == 1 {
		uc.rc.SetIdleTimeout(0)
	}
	st := uc.p.host.Stats()
	st.ActiveRequests.Add(1)
	st.TotalRequests.Add(1)
	if max := uc.p.opts.MaxRequestsPerConnection; max > 0 && uc.requests >= max {
		uc.p.remove(uc) // no new streams; closes once the active ones finish
	}
	s.bind(uc, id)
}

// upSink is a ping-pong upstream connection seen as the Sink of its streams: it forwards each
// call to the stream bound to that upstream stream now, so a call that would come after the
// stream ended or was reset reaches nobody, whatever the codec does. That is what lets the
// manager reuse finished streams (Stream.reusable).
type upSink upConn

var _ protocol.FlowSink = (*upSink)(nil)

// bound returns the stream bound to upstream stream id, or nil.
func (u *upSink) bound(id protocol.StreamID) *responseSink {
	uc := (*upConn)(u)
	for _, s := range uc.streams {
		if s.up == uc && s.upID == id {
			return (*responseSink)(s)
		}
	}
	return nil
}

func (u *upSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	if r := u.bound(id); r != nil {
		r.OnHeaders(id, h, end)
		return
	}
	h.Release()
}

func (u *upSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	if r := u.bound(id); r != nil {
		r.OnData(id, in, n, end)
		return
	}
	in.Skip(n)
}

func (u *upSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	if r := u.bound(id); r != nil {
		r.OnTrailers(id, t)
		return
	}
	t.Release()
}

func (u *upSink) OnReset(id protocol.StreamID, err error) {
	if r := u.bound(id); r != nil {
		r.OnReset(id, err)
	}
}

func (u *upSink) OnStreamWritable(id protocol.StreamID) {
	if r := u.bound(id); r != nil {
		r.OnStreamWritable(id)
	}
}

func (uc *upConn) forget(s *Stream) {
	for i, o := range uc.streams {
		if o == s {
			last := len(uc.streams) - 1
			uc.streams[i] = uc.streams[last]
			uc.streams[last] = nil
			uc.streams = uc.streams[:last]
			uc.p.host.Stats().ActiveRequests.Add(-1)
			return
		}
	}
}

// streamDone returns the connection after a stream's response completed; sentAll says the
// whole request went out (otherwise a ping-pong connection cannot be reused).
func (uc *upConn) streamDone(s *Stream, sentAll bool) {
	uc.forget(s)
	if uc.closed {
		return
	}
	if max := uc.p.opts.MaxRequestsPerConnection; (max > 0 && uc.requests >= max) ||
		(!sentAll && uc.codec.MaxStreams() == 1) {
		if uc.codec.ActiveStreams() == 0 {
			uc.rc.Close(nil)
		}
		return
	}
	uc.p.serve(uc)
}

// abandon resets s's upstream stream (a timeout, a local reply, the client went away).
func (uc *upConn) abandon(s *Stream, err error) {
	uc.forget(s)
	if uc.closed {
		return
	}
	uc.codec.Reset(s.upID, err)
	if !uc.closed {
		uc.p.serve(uc)
	}
}

// pauseDownstream stops reading d until this connection drains.
func (uc *upConn) pauseDownstream(d *downstream) {
	d.rc().PauseRead(true)
	uc.pausedDown = append(uc.pausedDown, d)
}

func (uc *upConn) OnOpen(rc reactor.Conn) { uc.rc = rc }

func (uc *upConn) OnData(rc reactor.Conn, in reactor.View) {
	if uc.codec == nil {
		in.Skip(in.Len())
		return
	}
	uc.p.ex.enterRead()
	defer uc.p.ex.leaveRead()
	if err := uc.codec.Decode(in); err != nil {
		rc.Close(fmt.Errorf("upstream %s: %w", uc.p.host.Address(), err))
	}
	// Heads the downstream codecs held back to coalesce with body bytes leave now.
	for _, s := range uc.streams {
		flush(s.d.codec)
	}
}

// flush writes what a codec holds back, if it holds anything back.
func flush(c any) {
	if f, ok := c.(protocol.Flusher); ok {
		_ = f.Flush() // a failed write surfaces as the connection closing
	}
}

func (uc *upConn) OnWritable(reactor.Conn) {
	for _, d := range uc.pausedDown {
		if !d.closed {
			d.rc().PauseRead(false)
		}
	}
	clear(uc.pausedDown)
	uc.pausedDown = uc.pausedDown[:0]
	for _, s := range uc.streams {
		if s.up != uc {
			continue
		}
		if len(s.pending) > 0 {
			s.flushPending()
		} else {
			s.releaseRequest()
		}
	}
}

func (uc *upConn) OnPeerClose(reactor.Conn) bool {
	if e, ok := uc.codec.(protocol.EOFHandler); ok {
		e.OnEOF()
	}
	return false
}

func (uc *upConn) OnClose(_ reactor.Conn, err error) {
	uc.closed = true
	p := uc.p
	p.remove(uc)
	if uc.codec == nil {
		return // never connected: onConnect accounted for it
	}
	p.cluster.Limits().Connections.Add(-1)
	p.host.Stats().ActiveConns.Add(-1)
	if err == nil {
		err = reactor.ErrPeerClosed
	}
	streams := uc.streams
	uc.streams = nil
	for _, s := range streams {
		p.host.Stats().ActiveRequests.Add(-1)
		if s.up == uc {
			s.up = nil
			s.upstreamFailed(err)
		}
	}
	// Streams still waiting for a connection need one: dial again for them.
	if len(p.waiting) > p.connecting*p.perConn && len(p.waiting) > 0 {
		cb := p.cluster.Limits()
		if pipeline.TryAcquire(&cb.Connections, cb.MaxConnections) {
			p.dial(p.waiting[0].d.rc())
		}
	}
}
