package http1

import (
	"errors"
	"time"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// serverCodec is the downstream side of an HTTP/1.x connection: it decodes requests into
// streams 1, 2, 3... and encodes their responses in order. See the package README for the
// behaviour (pipelining, 100-continue, upgrades, framing, hostile input).
//
// It is small on purpose: an idle keep-alive connection holds only this struct (80 bytes).
// Everything an exchange in progress needs (head scanner, chunked decoder, body counters,
// encoder scratch, the connection error) is in writer.x, a pooled exchange taken when a
// request starts and given back when the connection is idle again (see idle).
type serverCodec struct {
	writer
	cfg  *codecConfig
	sink protocol.Sink
	id   protocol.StreamID // the current request: decoded last, answered next

	// Request side.
	rstate    reqState
	version   Version
	keepAlive bool
	isHead    bool
	isConnect bool
	upgrade   bool // an upgrade (or CONNECT) waiting for its answer, or a tunnel
	paused    bool // reading paused by the codec (bytes held until the response ends)

	// Response side.
	wstate     respState
	closeAfter bool // close the connection once the response is written
	drain      bool
	sent100    bool
}

type reqState uint8

const (
	rsHead        reqState = iota // waiting for a request head
	rsLength                      // in a Content-Length body
	rsChunked                     // in a chunked body
	rsWait                        // request complete; bytes held until the response ends
	rsUpgradeWait                 // upgrade or CONNECT sent; bytes held until it is answered
	rsTunnel                      // every byte is tunnel data
	rsClosed                      // connection failed or closing: bytes are dropped
)

type respState uint8

const (
	respNone    respState = iota // no response started for the current request
	respNoBody                   // head encoded; body bytes are dropped (HEAD, 204, 304)
	respLength                   // Content-Length body
	respChunked                  // chunked body
	respClose                    // body delimited by closing the connection
	respTunnel                   // raw pass-through
	respDone                     // the current request's response is complete
)

var (
	_ protocol.ServerCodec = (*serverCodec)(nil)
	_ protocol.Flusher     = (*serverCodec)(nil)
	_ protocol.EOFHandler  = (*serverCodec)(nil)
)

// newServer returns a server codec with its own configuration (tests; NewCodec shares one).
func newServer(c reactor.Conn, sink protocol.Sink, lim Limits) *serverCodec {
	return newServerCodec(c, sink, newCodecConfig(lim))
}

func newServerCodec(c reactor.Conn, sink protocol.Sink, cfg *codecConfig) *serverCodec {
	return &serverCodec{writer: writer{conn: c}, cfg: cfg, sink: sink, wstate: respDone}
}

// connErr is the connection error, once the connection failed. A failed connection is in
// rsClosed and keeps its exchange, so no exchange means no error.
func (s *serverCodec) connErr() error {
	if s.x == nil {
		return nil
	}
	return s.x.err
}

// idle reports whether nothing of an exchange is in progress: no request head started, no
// response pending or held. The exchange can then go back to the pool.
func (s *serverCodec) idle() bool {
	return s.rstate == rsHead && s.wstate == respDone && !s.held &&
		len(s.x.enc.dst) == 0 && s.x.scan == (scanner{})
}

// releaseIfIdle gives the exchange back once the connection is idle; inside Decode that
// waits until Decode returns.
func (s *serverCodec) releaseIfIdle() {
	if s.x != nil && !s.decoding && s.idle() {
		s.release()
	}
}

// --- decoding -------------------------------------------------------------------------------

// Decode implements protocol.ServerCodec.
func (s *serverCodec) Decode(in reactor.View) error {
	s.decoding = true
	err := s.decode(in)
	s.decoding = false
	s.releaseIfIdle()
	return err
}

func (s *serverCodec) decode(in reactor.View) error {
	for in.Len() > 0 {
		switch s.rstate {
		case rsHead:
			ok, err := s.decodeHead(in)
			if err != nil {
				return s.fail(err)
			}
			if !ok {
				return nil
			}
		case rsLength:
			x := s.x
			k := int(min(int64(in.Len()), x.remaining))
			x.remaining -= int64(k)
			end := x.remaining == 0
			if end {
				s.requestDone()
			}
			offer(s.sink, s.id, in, k, end)
		case rsChunked:
			more, err := s.decodeChunked(in)
			if err != nil {
				return s.fail(err)
			}
			if more {
				return nil
			}
		case rsWait, rsUpgradeWait:
			// Pipelined bytes wait until the response ends (answers stay in order, and a
			// refused upgrade's bytes are parsed as HTTP, never forwarded as a tunnel).
			s.paused = true
			s.conn.PauseRead(true)
			return nil
		case rsTunnel:
			offer(s.sink, s.id, in, in.Len(), false)
		case rsClosed:
			n := in.Len()
			in.Skip(n)
			if x := s.x; x != nil && x.lingerUntil != 0 && n > 0 && time.Now().UnixNano() > x.lingerUntil {
				s.conn.Close(nil)
			}
			return s.connErr()
		}
	}
	return nil
}

func (s *serverCodec) decodeHead(in reactor.View) (bool, error) {
	x := s.ex()
	h := requestHeadPool.Get().(*RequestHead)
	defer putRequestHead(h)
	buf := in.Peek(min(in.Len(), s.cfg.lim.MaxHeadBytes))
	n, err := parseRequestHead(&x.scan, &s.cfg.reqMode, buf, h)
	if err != nil || n == 0 {
		return false, err
	}
	kind, length := RequestBody(h)
	isConnect := equalString(h.Method, "CONNECT")
	if isConnect && kind != BodyNone {
		return false, &Error{Err: ErrConnectBody, Offset: 0}
	}
	upgrade := isConnect || (h.Upgrade != nil && kind == BodyNone && !equalFold(h.Upgrade, "h2c"))

	hs := newRequestHeaders(buf[:n], h)
	if !upgrade && h.Upgrade != nil {
		hs.Del("upgrade") // not honoured (h2c, or a request with a body): not forwarded
	}
	if equalFold(h.Headers.Get("expect"), "100-continue") {
		hs.Del("expect") // answered here (HTTP/1.1) or meaningless (HTTP/1.0)
	}
	expect100 := h.Expect100
	s.nextStream(h) // h points into the view: read it before Skip
	in.Skip(n)

	s.upgrade = upgrade
	s.isConnect = isConnect
	end := false
	switch {
	case upgrade:
		s.rstate = rsUpgradeWait
	case kind == BodyLength:
		s.rstate, x.remaining = rsLength, length
	case kind == BodyChunked:
		s.rstate = rsChunked
		x.chunked.start(s.cfg)
	default:
		end = true
		s.requestDone()
	}
	s.sink.OnHeaders(s.id, hs, end)
	if expect100 && !end && !upgrade && s.wstate == respNone && s.rstate != rsClosed && !s.sent100 {
		s.sent100 = true
		x := s.ex()
		x.enc.dst = append(x.enc.dst[:0], "HTTP/1.1 100 Continue\r\n\r\n"...)
		_ = s.writeScratch()
	}
	return true, nil
}

// nextStream starts the state of a new request.
func (s *serverCodec) nextStream(h *RequestHead) {
	s.id++
	s.version = h.Version
	s.keepAlive = h.KeepAlive
	s.isHead = equalString(h.Method, "HEAD")
	s.wstate = respNone
	s.closeAfter = false
	s.sent100 = false
}

func (s *serverCodec) decodeChunked(in reactor.View) (more bool, err error) {
	return decodeChunked(s, s.sink, s.id, s.cfg.window, in)
}

func (s *serverCodec) readingChunked() bool            { return s.rstate == rsChunked }
func (s *serverCodec) chunkedDecoder() *ChunkedDecoder { return &s.x.chunked }
func (s *serverCodec) chunkedDone()                    { s.requestDone() }

// requestDone marks the request direction complete (before the sink hears of it, so a
// response it sends synchronously finds the right state).
func (s *serverCodec) requestDone() {
	s.rstate = rsWait
}

// fail handles hostile or broken input: a 400 (or the status StatusCode gives) with
// Connection: close when no response is in progress, a reset of the stream being decoded,
// and a connection error.
func (s *serverCodec) fail(err error) error {
	werr := connError(err)
	if s.rstate == rsClosed {
		return werr
	}
	inBody := s.rstate == rsLength || s.rstate == rsChunked || s.rstate == rsTunnel
	prev := s.wstate
	s.rstate = rsClosed
	s.ex().err = werr
	if prev == respNone || prev == respDone {
		s.writeError(StatusCode(err))
	}
	if inBody && prev != respDone {
		s.sink.OnReset(s.id, werr)
	}
	return werr
}

// writeError writes a final error response that closes the connection.
func (s *serverCodec) writeError(code int) {
	s.dropScratch()
	x := s.ex()
	b := x.enc.dst[:0]
	b = append(b, "HTTP/1.1 "...)
	b = appendStatusCode(b, code)
	b = append(b, ' ')
	b = append(b, reasonPhrase(code)...)
	b = append(b, "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"...)
	x.enc.dst = b[:0]
	_ = s.conn.Write(b)
	s.wstate = respDone
}

func appendStatusCode(b []byte, code int) []byte {
	return append(b, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10))
}

// OnEOF ends the request direction of a tunnel when the client closed its write side, and
// resets a request whose body was cut short. The stream manager calls it (protocol.EOFHandler)
// when the downstream peer closed.
func (s *serverCodec) OnEOF() {
	switch s.rstate {
	case rsTunnel:
		s.rstate = rsClosed
		s.sink.OnData(s.id, emptyView{}, 0, true)
	case rsLength, rsChunked:
		s.rstate = rsClosed
		if s.wstate != respDone {
			s.sink.OnReset(s.id, connError(ErrUnexpectedEOF))
		}
	case rsUpgradeWait:
		// The client gave up before the answer; the answer may still come and end it.
	}
}

// --- encoding -------------------------------------------------------------------------------

// EncodeHeaders implements protocol.Encoder: the response head of the current request.
func (s *serverCodec) EncodeHeaders(id protocol.StreamID, h protocol.Headers, end bool) error {
	if err := s.connErr(); err != nil {
		return err
	}
	if id != s.id || s.wstate != respNone {
		return ErrStreamState
	}
	x := s.ex()
	e := &x.enc
	e.begin(h)
	code, ok := parseStatus(e.status)
	switch {
	case !e.hasStatus:
		return s.badResponse(&Error{Err: ErrMissingPseudo, Offset: -1})
	case !ok:
		return s.badResponse(&Error{Err: ErrInvalidStatus, Offset: -1})
	case e.err != nil:
		return s.badResponse(e.err)
	case code == 101 && (!s.upgrade || s.isConnect):
		return s.badResponse(ErrUnsolicitedUpgrade)
	case code < 200 && code != 101:
		return s.encodeInterim(code, h)
	}

	tunnel := code == 101 || (s.isConnect && code < 300)
	if s.rstate == rsUpgradeWait && !tunnel {
		// The upgrade or CONNECT was refused: the request is complete; what the client sent
		// after it is the next request.
		s.rstate = rsWait
		s.sink.OnData(s.id, emptyView{}, 0, true)
		if err := s.connErr(); err != nil || s.wstate != respNone {
			return err // answered meanwhile (or failed); x is not released while respNone
		}
	}

	state := respLength
	var length int64 = -1
	switch {
	case tunnel:
		state = respTunnel
	case s.isHead || code == 204 || code == 304:
		state = respNoBody
		if code != 204 {
			length = e.contentLength // a HEAD or 304 response announces the length it would have
		}
	case e.contentLength >= 0:
		length = e.contentLength
	case end:
		length = 0
	case s.version == HTTP11:
		state = respChunked
	default:
		state = respClose
	}
	s.closeAfter = s.drain || !s.keepAlive || state == respClose || state == respTunnel ||
		s.rstate == rsLength || s.rstate == rsChunked

	start := len(e.dst)
	e.dst = appendStatusLine(e.dst, code, e.status)
	e.request, e.keepUpgrade, e.dropLength, e.forbidden = false, code == 101, true, false
	if err := e.fields(h); err != nil {
		e.dst = e.dst[:start]
		return s.badResponse(err)
	}
	if length >= 0 {
		e.contentLengthField(length)
	}
	switch {
	case state == respChunked:
		e.dst = append(e.dst, "Transfer-Encoding: chunked\r\n"...)
	case code == 101:
		e.dst = append(e.dst, "Connection: Upgrade\r\n"...)
	case state == respTunnel:
	case s.closeAfter:
		e.dst = append(e.dst, "Connection: close\r\n"...)
	case s.version == HTTP10:
		e.dst = append(e.dst, "Connection: keep-alive\r\n"...)
	}
	e.dst = append(e.dst, tailCRLF...)

	s.wstate = state
	if state == respLength {
		x.wremaining = length
	}
	if tunnel && s.rstate == rsUpgradeWait {
		s.rstate = rsTunnel
		if s.paused {
			s.paused = false
			s.conn.PauseRead(false)
		}
	}
	if end || tunnel {
		err := s.writeScratch()
		if err == nil && end {
			s.finish()
		}
		return err
	}
	s.hold()
	return nil
}

// encodeInterim writes a 1xx response (other than 101) at once; the final one follows.
func (s *serverCodec) encodeInterim(code int, h protocol.Headers) error {
	if code == 100 {
		if s.sent100 {
			return nil
		}
		s.sent100 = true
	}
	e := &s.ex().enc
	start := len(e.dst)
	e.dst = appendStatusLine(e.dst, code, e.status)
	e.request, e.keepUpgrade, e.dropLength, e.forbidden = false, false, true, false
	if err := e.fields(h); err != nil {
		e.dst = e.dst[:start]
		return s.badResponse(err)
	}
	e.dst = append(e.dst, tailCRLF...)
	return s.writeScratch()
}

// badResponse answers 502 for a response head that cannot be encoded (nothing of the
// response was written yet) and closes the connection.
func (s *serverCodec) badResponse(err error) error {
	s.writeError(502)
	s.rstate = rsClosed
	s.conn.Close(nil)
	werr := connError(err)
	s.ex().err = werr
	return werr
}

// EncodeData implements protocol.Encoder: body bytes of the current response, written with
// the held head (if any) and the chunk framing in one writev, without copying p.
func (s *serverCodec) EncodeData(id protocol.StreamID, p [][]byte, end bool) error {
	if err := s.connErr(); err != nil {
		return err
	}
	if id != s.id || s.wstate == respNone || s.wstate == respDone {
		return ErrStreamState
	}
	n := totalLen(p)
	if n == 0 && !end {
		return nil
	}
	var err error
	switch s.wstate {
	case respNoBody:
		if end {
			err = s.writeScratch()
		}
	case respLength:
		x := s.x
		if int64(n) > x.wremaining || (end && int64(n) != x.wremaining) {
			return s.abortResponse(ErrBodyLength)
		}
		x.wremaining -= int64(n)
		err = s.writeBody(p, n, "")
	case respChunked:
		err = s.writeBody(p, n, s.chunkFrame(n, end))
	case respClose, respTunnel:
		err = s.writeBody(p, n, "")
	}
	if err != nil {
		return s.writeFailed(err)
	}
	if end {
		s.finish()
	}
	return nil
}

// EncodeTrailers implements protocol.Encoder: trailers end a chunked response; other
// framings cannot carry them, so they are dropped.
func (s *serverCodec) EncodeTrailers(id protocol.StreamID, t protocol.Headers) error {
	if err := s.connErr(); err != nil {
		return err
	}
	if id != s.id || s.wstate == respNone || s.wstate == respDone {
		return ErrStreamState
	}
	switch s.wstate {
	case respChunked:
		s.lastChunkWithTrailers(t)
	case respLength:
		if s.x.wremaining != 0 {
			return s.abortResponse(ErrBodyLength)
		}
	}
	if err := s.writeScratch(); err != nil {
		return s.writeFailed(err)
	}
	s.finish()
	return nil
}

// writeFailed records a write error: the connection is closing.
func (s *serverCodec) writeFailed(err error) error {
	werr := connError(err)
	s.ex().err = werr
	s.rstate = rsClosed
	s.wstate = respDone
	s.dropScratch()
	return werr
}

// finish ends the current response: the connection closes, or the next request is read.
func (s *serverCodec) finish() {
	s.wstate = respDone
	if s.closeAfter || s.rstate != rsWait {
		inBody := s.rstate == rsLength || s.rstate == rsChunked
		s.rstate = rsClosed
		if inBody {
			s.lingerClose()
			return
		}
		s.conn.Close(nil)
		return
	}
	s.rstate = rsHead
	if s.paused {
		s.paused = false
		s.conn.PauseRead(false) // re-delivers the pipelined bytes
	}
	// Callers use nothing of the exchange after finish.
	s.releaseIfIdle()
}

// Lingering close bounds (nginx's lingering_timeout and lingering_time, shorter).
const (
	lingerTimeout = 2 * time.Second
	lingerTime    = 5 * time.Second
)

// lingerClose closes a connection whose client is still sending a request body the response
// did not wait for (an upstream that answered early). Closing a socket with unread bytes
// makes the kernel send a TCP reset, and a reset can destroy the response in the client's
// receive buffer before the client read it. So the write side is shut down after the
// response (FIN), what the client still sends is read and dropped (rsClosed), and the
// connection closes when the client closes, after lingerTimeout without a byte (the read
// timeout), or, checked on each read, once lingerTime passed: a bound in time, not bytes,
// because the client needs time, not our reads, to take the response.
func (s *serverCodec) lingerClose() {
	c := s.conn
	c.PauseRead(false) // nothing is held for anyone any more: drain
	if err := c.CloseWrite(); err != nil {
		c.Close(nil)
		return
	}
	s.ex().lingerUntil = time.Now().Add(lingerTime).UnixNano()
	c.SetReadTimeout(lingerTimeout)
}

// abortResponse ends a response that can no longer be framed correctly.
func (s *serverCodec) abortResponse(err error) error {
	werr := connError(err)
	s.ex().err = werr
	s.rstate = rsClosed
	s.wstate = respDone
	s.dropScratch()
	s.conn.Abort(werr)
	return werr
}

// Reset implements protocol.Encoder: HTTP/1.1 cannot abandon one exchange, so the
// connection closes (with a TCP reset when part of the response was written). A stream
// refused before any processing (protocol.ErrRefusedStream) is answered 503 with
// Connection: close first, so the client knows it may retry.
func (s *serverCodec) Reset(id protocol.StreamID, err error) {
	if id != s.id || (s.rstate == rsClosed && s.wstate == respDone) {
		return
	}
	if s.wstate == respNone && errors.Is(err, protocol.ErrRefusedStream) {
		s.writeError(503)
	}
	started := s.wstate != respNone && s.wstate != respDone && !s.held
	s.rstate = rsClosed
	s.wstate = respDone
	s.dropScratch()
	if x := s.ex(); x.err == nil {
		x.err = connError(err)
	}
	if started {
		s.conn.Abort(err)
		return
	}
	s.conn.Close(err)
}

// Drain implements protocol.ServerCodec: the next response carries Connection: close and
// the connection closes after it; an idle connection closes now.
func (s *serverCodec) Drain() {
	s.drain = true
	if s.rstate == rsHead && (s.wstate == respDone) {
		s.rstate = rsClosed
		s.conn.Close(nil)
	}
}
