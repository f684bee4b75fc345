package http2

import (
	"fmt"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// clientCodec is the upstream side of an HTTP/2 connection. Streams are identified by
// handles (1, 2, 3...) given by NewStream; the wire id is allocated when the head is
// encoded, so ids reach the wire in increasing order whatever order heads are encoded in.
type clientCodec struct {
	conn
}

func newClient(rc reactor.Conn, cfg *Config) *clientCodec {
	cc := &clientCodec{}
	cc.init(rc, cfg, false)
	cc.handles = make(map[protocol.StreamID]*stream)
	cc.out.writeString(preface)
	cc.writeSettings()
	cc.flush()
	return cc
}

// Decode implements protocol.ClientCodec.
func (cc *clientCodec) Decode(in reactor.View) error { return cc.decode(in) }

// NewStream implements protocol.ClientCodec.
func (cc *clientCodec) NewStream(sink protocol.Sink) (protocol.StreamID, error) {
	if !cc.Reusable() {
		return 0, ErrNotReusable
	}
	if len(cc.handles) >= cc.MaxStreams() {
		return 0, ErrStreamLimit
	}
	cc.nextHandle++
	st := cc.newStream(0, cc.nextHandle, sink)
	st.known = true
	cc.handles[st.handle] = st
	return st.handle, nil
}

// ActiveStreams implements protocol.ClientCodec.
func (cc *clientCodec) ActiveStreams() int { return len(cc.handles) }

// MaxStreams implements protocol.ClientCodec: the peer's SETTINGS_MAX_CONCURRENT_STREAMS,
// capped by Config.MaxConcurrentStreams (which it is until the peer's SETTINGS arrive).
func (cc *clientCodec) MaxStreams() int {
	return int(min(cc.peerMaxStreams, cc.cfg.MaxConcurrentStreams))
}

// Reusable implements protocol.ClientCodec: false after GOAWAY, a connection error, the
// peer's close, or when stream ids run out.
func (cc *clientCodec) Reusable() bool {
	return cc.err == nil && cc.writeErr == nil && !cc.goawayRecv && cc.nextID <= maxStreamID
}

// EncodeHeaders implements protocol.Encoder: the request head (translated from any
// protocol: see encodeBlock).
func (cc *clientCodec) EncodeHeaders(id protocol.StreamID, h protocol.Headers, end bool) error {
	c := &cc.conn
	if c.err != nil {
		return c.err
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	st := c.handles[id]
	if st == nil || st.send != sendIdle {
		return ErrStreamState
	}
	if c.goawayRecv || c.nextID > maxStreamID {
		st.known = false
		c.removeStream(st)
		return streamErr(id, http2.ErrCodeRefusedStream, ErrNotReusable)
	}
	if err := c.encodeBlock(h, kindRequest); err != nil {
		return fmt.Errorf("stream %d: %w", id, err)
	}
	st.id = c.nextID
	c.nextID += 2
	st.sendWindow = c.peerInitWindow
	st.recvWindow = c.recvInit()
	st.isHead = c.enc.isHead
	st.sendCL = c.enc.cl
	st.recvOpen = true
	c.streams[st.id] = st
	c.streamsOpened++
	if end && st.sendCL > 0 {
		return c.failStream(st, ErrBodyLength)
	}
	c.writeHeaderBlock(st.id, end)
	if end {
		st.send = sendClosed
		c.flushIfIdle()
		return nil
	}
	st.send = sendOpen
	c.hold()
	return nil
}

// EncodeData implements protocol.Encoder.
func (cc *clientCodec) EncodeData(id protocol.StreamID, p [][]byte, end bool) error {
	return cc.encodeData(id, p, end)
}

// EncodeTrailers implements protocol.Encoder.
func (cc *clientCodec) EncodeTrailers(id protocol.StreamID, t protocol.Headers) error {
	return cc.encodeTrailers(id, t)
}

// Reset implements protocol.Encoder: RST_STREAM(CANCEL), or the code of a
// *protocol.StreamError for NO_ERROR, CANCEL and REFUSED_STREAM (a reset propagated from
// the downstream).
func (cc *clientCodec) Reset(id protocol.StreamID, err error) {
	cc.reset(id, err, http2.ErrCodeCancel)
}

// OnEOF implements protocol.EOFHandler: the server closed; active streams are reset
// (streams above a GOAWAY's last id as refused).
func (cc *clientCodec) OnEOF() { cc.eof() }

// StreamCongested implements StreamFlow.
func (cc *clientCodec) StreamCongested(id protocol.StreamID) bool { return cc.streamCongested(id) }

// Consume implements StreamFlow.
func (cc *clientCodec) Consume(id protocol.StreamID, n int) { cc.consume(id, n) }
