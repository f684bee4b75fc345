package http2

import (
	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// serverCodec is the downstream side of an HTTP/2 connection: each client stream becomes a
// stream of the sink with the same id. See README.md for the behaviour.
type serverCodec struct {
	conn
}

func newServer(rc reactor.Conn, sink protocol.Sink, cfg *Config) *serverCodec {
	s := &serverCodec{}
	s.init(rc, cfg, true)
	s.srvSink = sink
	s.writeSettings() // the server preface may precede the client's
	s.flush()
	return s
}

// Decode implements protocol.ServerCodec.
func (s *serverCodec) Decode(in reactor.View) error { return s.decode(in) }

// EncodeHeaders implements protocol.Encoder: a response head (1xx heads are sent as
// interim responses and the final head follows). A head HTTP/2 cannot carry is replaced by
// a 502 and the error returned.
func (s *serverCodec) EncodeHeaders(id protocol.StreamID, h protocol.Headers, end bool) error {
	c := &s.conn
	if c.err != nil {
		return c.err
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	st := c.lookup(id)
	if st == nil || st.send != sendIdle {
		return ErrStreamState
	}
	if err := c.encodeBlock(h, kindResponse); err != nil {
		c.hbuf.b = c.hbuf.b[:0]
		c.writeField(protocol.Status, "502")
		c.writeField("content-length", "0")
		c.writeHeaderBlock(st.id, true)
		st.send = sendClosed
		st.known = false
		c.maybeDone(st)
		c.flushIfIdle()
		return err
	}
	status := c.enc.status
	if status < 200 {
		c.writeHeaderBlock(st.id, false)
		c.flushIfIdle()
		return nil
	}
	st.noBody = st.isHead || status == 204 || status == 304
	if !st.noBody {
		st.sendCL = c.enc.cl
		if end && st.sendCL > 0 {
			return c.failStream(st, ErrBodyLength)
		}
	}
	c.writeHeaderBlock(st.id, end)
	if end {
		st.send = sendClosed
		c.maybeDone(st)
		c.flushIfIdle()
		return nil
	}
	st.send = sendOpen
	c.hold()
	return nil
}

// EncodeData implements protocol.Encoder.
func (s *serverCodec) EncodeData(id protocol.StreamID, p [][]byte, end bool) error {
	return s.encodeData(id, p, end)
}

// EncodeTrailers implements protocol.Encoder.
func (s *serverCodec) EncodeTrailers(id protocol.StreamID, t protocol.Headers) error {
	return s.encodeTrailers(id, t)
}

// Reset implements protocol.Encoder: RST_STREAM with REFUSED_STREAM for a refused stream,
// the code of a *protocol.StreamError for NO_ERROR, CANCEL and REFUSED_STREAM (a reset
// propagated from the other side of the proxy), INTERNAL_ERROR otherwise.
func (s *serverCodec) Reset(id protocol.StreamID, err error) {
	s.reset(id, err, http2.ErrCodeInternal)
}

// Drain implements protocol.ServerCodec: GOAWAY(NO_ERROR) with the last stream id
// received; streams above it are ignored, and the connection closes when the active ones
// finish (at once when there are none).
func (s *serverCodec) Drain() {
	c := &s.conn
	if c.err != nil || c.draining {
		return
	}
	c.draining = true
	if !c.goawaySent {
		_ = c.fr.WriteGoAway(c.lastPeerID, http2.ErrCodeNo, nil)
		c.goawaySent = true
		c.goawayID = c.lastPeerID
	}
	if len(c.streams) == 0 {
		c.closeWhenDone = true
	}
	c.flushIfIdle()
}

// OnEOF implements protocol.EOFHandler: the client closed its side; its streams are reset.
func (s *serverCodec) OnEOF() { s.eof() }

// StreamCongested implements StreamFlow.
func (s *serverCodec) StreamCongested(id protocol.StreamID) bool { return s.streamCongested(id) }

// Consume implements StreamFlow.
func (s *serverCodec) Consume(id protocol.StreamID, n int) { s.consume(id, n) }
