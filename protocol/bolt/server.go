package bolt

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// srvState is where a downstream stream's response stands.
type srvState uint8

const (
	srvWaiting    srvState = iota // nothing sent yet
	srvResponding                 // a Bolt response frame is in the writer, content to come
	srvDropping                   // a status response was sent; the rest of the body is dropped
)

type srvStream struct {
	codec  byte // the request's serializer id, echoed in status responses
	oneway bool
	state  srvState
}

// serverCodec is the downstream side of a Bolt connection. Stream ids are the requests' own
// Bolt request ids.
type serverCodec struct {
	c       reactor.Conn
	sink    protocol.Sink
	opts    CodecOptions
	r       reader
	w       frameWriter
	streams map[uint32]srvStream
	scratch []byte // encoding scratch for heads and status responses
	err     error  // the connection error Decode returned
}

var (
	_ protocol.ServerCodec = (*serverCodec)(nil)
	_ protocol.Flusher     = (*serverCodec)(nil)
)

func newServerCodec(c reactor.Conn, sink protocol.Sink, lim Limits, opts CodecOptions) *serverCodec {
	return &serverCodec{
		c:       c,
		sink:    sink,
		opts:    opts,
		r:       reader{lim: lim},
		w:       frameWriter{c: c, maxQueued: opts.MaxQueuedBytes},
		streams: make(map[uint32]srvStream),
		scratch: make([]byte, 0, 256),
	}
}

// Decode implements protocol.ServerCodec. Requests and oneways are reported with OnHeaders
// as soon as their head part arrived and their content is offered with OnData as it
// arrives. Heartbeats are answered here. A request whose id is already in flight is answered
// with CODEC_EXCEPTION, one past MaxStreams with SERVER_THREADPOOL_BUSY, one with a malformed
// header map with CODEC_EXCEPTION; none of them is reported and their content is skipped.
// Responses and heartbeat acks from a client are skipped. Any other framing error is
// returned wrapping protocol.ErrConnection.
func (s *serverCodec) Decode(in reactor.View) error {
	if s.err != nil {
		in.Skip(in.Len())
		return s.err
	}
	for {
		more, err := s.r.content(in)
		if err != nil {
			s.err = err
			return err
		}
		if !more {
			return nil
		}
		p, n, contentLen, err := s.r.head(in)
		if err == ErrNeedMore {
			return nil
		}
		if IsFatal(err) {
			s.err = fatal(err)
			return s.err
		}
		f := &s.r.f
		id, kind, codec := f.RequestID, f.Kind(), f.Codec
		if err != nil { // ErrBadHeader: the frame is delimited, its header map is not
			in.Skip(n)
			s.r.skip(contentLen)
			err = nil
			if kind == KindRequest {
				err = s.status(id, codec, StatusCodecException)
			}
		} else {
			switch kind {
			case KindRequest, KindOneway:
				err = s.request(in, p[:n], contentLen)
			case KindHeartbeat:
				in.Skip(n)
				s.r.skip(contentLen)
				s.scratch = AppendHeartbeatAck(s.scratch[:0], id)
				err = s.w.begin(0, s.scratch, 0)
			default:
				in.Skip(n)
				s.r.skip(contentLen)
			}
		}
		if err != nil {
			s.err = err
			return err
		}
	}
}

// request reports one request or oneway whose head part is head.
func (s *serverCodec) request(in reactor.View, head []byte, contentLen int) error {
	f := &s.r.f
	id, oneway, codec := f.RequestID, f.Type == TypeOneway, f.Codec
	var refuse Status
	if _, dup := s.streams[id]; dup {
		refuse = StatusCodecException
	} else if len(s.streams) >= s.opts.MaxStreams {
		refuse = StatusServerThreadpoolBusy
	}
	if refuse != 0 {
		in.Skip(len(head))
		s.r.skip(contentLen)
		if oneway {
			return nil
		}
		return s.status(id, codec, refuse)
	}
	h := newHeaders(head, f, contentLen)
	in.Skip(len(head))
	s.streams[id] = srvStream{codec: codec, oneway: oneway}
	s.r.deliver(id, contentLen, s.sink)
	s.sink.OnHeaders(protocol.StreamID(id), h, contentLen == 0)
	return nil
}

// status writes a response carrying only st for request id.
func (s *serverCodec) status(id uint32, codec byte, st Status) error {
	s.scratch = AppendStatusResponse(s.scratch[:0], id, codec, st)
	return s.w.begin(0, s.scratch, 0)
}

// EncodeHeaders implements protocol.Encoder. A *Headers response from a Bolt upstream
// becomes a response head with its fixed fields, the downstream request id and its content
// length (end forces 0); its content follows with EncodeData, in the same writev as the head
// when it is at hand. Any other Headers (a local reply, a non-Bolt upstream) becomes one
// status response with the Bolt status its ":status" maps to (StatusFromHTTP); its body is
// dropped. Nothing is written for a oneway request.
func (s *serverCodec) EncodeHeaders(id protocol.StreamID, h protocol.Headers, end bool) error {
	rid := uint32(id)
	st, ok := s.streams[rid]
	if !ok || st.state != srvWaiting || uint64(rid) != id {
		return fmt.Errorf("%w: response head for stream %d", ErrUnknownStream, id)
	}
	if st.oneway {
		delete(s.streams, rid)
		return nil
	}
	if bh, ok := h.(*Headers); ok && bh.Kind() == KindResponse {
		cl := bh.contentLen
		if end {
			cl = 0
		}
		head, err := bh.appendHead(s.scratch[:0], rid, cl)
		if err == nil {
			s.scratch = head[:0]
			if err := s.w.begin(id, head, cl); err != nil {
				return err
			}
			if cl == 0 {
				delete(s.streams, rid)
			} else {
				st.state = srvResponding
				s.streams[rid] = st
			}
			return nil
		}
		// The re-encoded head does not fit the wire: answer with an exception instead.
		return s.answer(rid, st, StatusServerException, end)
	}
	code := 500
	if v, ok := h.Get(protocol.Status); ok {
		if c, err := strconv.Atoi(v); err == nil {
			code = c
		}
	}
	return s.answer(rid, st, StatusFromHTTP(code), end)
}

// answer sends a status response for a stream; the rest of its body is dropped.
func (s *serverCodec) answer(rid uint32, st srvStream, status Status, end bool) error {
	if end {
		delete(s.streams, rid)
	} else {
		st.state = srvDropping
		s.streams[rid] = st
	}
	return s.status(rid, st.codec, status)
}

// EncodeData implements protocol.Encoder. Content goes to the wire without a copy unless
// another response frame is being written (then it is queued, see frameWriter). Content for
// a stream that was answered with a status response, a oneway or a reset stream is dropped.
func (s *serverCodec) EncodeData(id protocol.StreamID, p [][]byte, end bool) error {
	rid := uint32(id)
	st, ok := s.streams[rid]
	if !ok || uint64(rid) != id {
		return nil
	}
	switch st.state {
	case srvDropping:
		if end {
			delete(s.streams, rid)
		}
		return nil
	case srvWaiting:
		return fmt.Errorf("%w: response content before its head on stream %d", ErrUnknownStream, id)
	}
	done, err := s.w.data(id, p, end)
	if err == nil {
		if done {
			delete(s.streams, rid)
		}
		return nil
	}
	delete(s.streams, rid)
	if errors.Is(err, protocol.ErrConnection) {
		s.c.Close(err)
		return err
	}
	// The frame never reached the wire: the client still gets an answer.
	status := StatusServerException
	if errors.Is(err, ErrQueueFull) {
		status = StatusServerThreadpoolBusy
	}
	if werr := s.status(rid, st.codec, status); werr != nil {
		return werr
	}
	return err
}

// EncodeTrailers implements protocol.Encoder: Bolt has no trailers, they end the content.
func (s *serverCodec) EncodeTrailers(id protocol.StreamID, t protocol.Headers) error {
	return s.EncodeData(id, nil, true)
}

// Reset implements protocol.Encoder. A stream answered with nothing yet gets a status
// response: the Code of a *protocol.StreamError when err carries one, SERVER_EXCEPTION
// otherwise (nothing for a oneway). A response whose head is still held or queued is replaced
// by that status response; one already partly written cannot be taken back, so the
// connection is closed.
func (s *serverCodec) Reset(id protocol.StreamID, err error) {
	rid := uint32(id)
	st, ok := s.streams[rid]
	if !ok || uint64(rid) != id {
		return
	}
	delete(s.streams, rid)
	if st.oneway || st.state == srvDropping {
		return
	}
	if st.state == srvResponding && s.w.drop(id) {
		s.c.Close(fmt.Errorf("%w: bolt: response %d reset after it started: %w", protocol.ErrConnection, id, err))
		return
	}
	status := StatusServerException
	var se *protocol.StreamError
	switch {
	case errors.As(err, &se) && se.Code != 0 && se.Code <= 0xFFFF:
		status = Status(se.Code)
	case errors.Is(err, protocol.ErrRefusedStream):
		status = StatusServerThreadpoolBusy // refused before any work: the client may retry
	}
	if werr := s.status(rid, st.codec, status); werr != nil {
		s.c.Close(werr)
	}
}

// Drain implements protocol.ServerCodec. Bolt v1 has no way to ask a client to go away (no
// GOAWAY command in any sofa-bolt release), so it does nothing: the stream manager closes the
// connection once its streams are done.
func (s *serverCodec) Drain() {}

// Flush implements protocol.Flusher: it writes a held response head when no other frame is
// pending (see frameWriter.flush).
func (s *serverCodec) Flush() error { return s.w.flush() }
