package http1

import (
	"strings"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// clientCodec is the upstream side of an HTTP/1.1 connection: one stream at a time, its
// request encoded and its response decoded. See the package README for the behaviour.
type clientCodec struct {
	writer
	cfg *codecConfig

	sink     protocol.Sink
	id       protocol.StreamID
	active   bool // a stream not finished in both directions
	reusable bool
	err      error

	// Request (encode) side.
	wstate    creqState
	isHead    bool
	isConnect bool
	upgrade   bool // the request asked to upgrade (or is a CONNECT)

	// Response (decode) side.
	rstate crespState
}

type creqState uint8

const (
	creqNone    creqState = iota // no head encoded yet
	creqLength                   // Content-Length body
	creqChunked                  // chunked body
	creqUpgrade                  // upgrade or CONNECT sent: no bytes until it is accepted
	creqTunnel                   // raw pass-through
	creqDone                     // the request was sent whole
)

type crespState uint8

const (
	crespHead    crespState = iota // waiting for the (final) response head
	crespLength                    // Content-Length body
	crespChunked                   // chunked body
	crespClose                     // body until the upstream closes
	crespTunnel                    // raw pass-through
	crespDone                      // the response ended
)

var (
	_ protocol.ClientCodec = (*clientCodec)(nil)
	_ protocol.EOFHandler  = (*clientCodec)(nil)
	_ protocol.Flusher     = (*clientCodec)(nil)
)

// newClient returns a client codec with its own configuration (tests; NewCodec shares one).
func newClient(c reactor.Conn, lim Limits) *clientCodec {
	return newClientCodec(c, newCodecConfig(lim))
}

func newClientCodec(c reactor.Conn, cfg *codecConfig) *clientCodec {
	return &clientCodec{writer: writer{conn: c}, cfg: cfg, reusable: true, rstate: crespDone, wstate: creqDone}
}

// releaseIfIdle gives the exchange back once no stream is active and nothing is held;
// inside Decode that waits until Decode returns.
func (c *clientCodec) releaseIfIdle() {
	if c.x != nil && !c.decoding && !c.active && !c.held && len(c.x.enc.dst) == 0 {
		c.release()
	}
}

// NewStream implements protocol.ClientCodec.
func (c *clientCodec) NewStream(sink protocol.Sink) (protocol.StreamID, error) {
	switch {
	case c.err != nil:
		return 0, c.err
	case c.active:
		return 0, ErrStreamBusy
	case !c.reusable:
		return 0, ErrNotReusable
	}
	c.id++
	c.sink = sink
	c.active = true
	c.wstate, c.rstate = creqNone, crespHead
	c.isHead, c.isConnect, c.upgrade = false, false, false
	x := c.ex()
	x.interim = 0
	x.scan.reset()
	return c.id, nil
}

// ActiveStreams implements protocol.ClientCodec.
func (c *clientCodec) ActiveStreams() int {
	if c.active {
		return 1
	}
	return 0
}

// MaxStreams implements protocol.ClientCodec: HTTP/1.1 carries one exchange at a time.
func (c *clientCodec) MaxStreams() int { return 1 }

// Reusable implements protocol.ClientCodec.
func (c *clientCodec) Reusable() bool { return c.reusable && c.err == nil }

// --- encoding -------------------------------------------------------------------------------

// EncodeHeaders implements protocol.Encoder: the request head. The request line comes from
// :method and :path (:authority for CONNECT), Host from :authority (or a host field), and
// the framing from Content-Length, end, or chunked for a body of unknown length.
func (c *clientCodec) EncodeHeaders(id protocol.StreamID, h protocol.Headers, end bool) error {
	if c.err != nil {
		return c.err
	}
	if !c.active || id != c.id || c.wstate != creqNone {
		return ErrStreamState
	}
	defer c.releaseIfIdle()
	x := c.ex()
	e := &x.enc
	e.begin(h)
	if e.err != nil {
		return c.badRequest(e.err)
	}
	if !e.hasMethod || !validTokenString(e.method) {
		if !e.hasMethod {
			return c.badRequest(&Error{Err: ErrMissingPseudo, Offset: -1})
		}
		return c.badRequest(&Error{Err: ErrInvalidMethod, Offset: -1})
	}
	authority, hasAuthority := e.authority, e.hasAuthority
	if !hasAuthority {
		authority, hasAuthority = e.host, e.hasHost
	}
	if hasAuthority && !validAuthorityString(authority, false) {
		return c.badRequest(&Error{Err: ErrInvalidHost, Offset: -1})
	}
	c.isHead = e.method == "HEAD"
	c.isConnect = e.method == "CONNECT"
	target := e.path
	switch {
	case c.isConnect:
		if !validAuthorityString(authority, true) {
			return c.badRequest(&Error{Err: ErrInvalidTarget, Offset: -1})
		}
		target = authority
	case target == "":
		target = "/"
		fallthrough
	default:
		if !validTargetString(target) || (target[0] != '/' && target != "*") {
			return c.badRequest(&Error{Err: ErrInvalidTarget, Offset: -1})
		}
	}
	c.upgrade = c.isConnect ||
		(!end && e.upgrade != "" && e.connUpgrade && !strings.EqualFold(e.upgrade, "h2c") && validValueString(e.upgrade))

	var state creqState
	var length int64 = -1
	switch {
	case c.upgrade:
		state = creqUpgrade
	case end:
		state = creqDone
		if e.contentLength >= 0 || e.method == "POST" || e.method == "PUT" || e.method == "PATCH" {
			length = 0 // many servers want a length for these methods (as net/http sends)
		}
	case e.contentLength >= 0:
		state, length = creqLength, e.contentLength
	default:
		state = creqChunked
	}

	start := len(e.dst)
	e.dst = append(e.dst, e.method...)
	e.dst = append(e.dst, ' ')
	e.dst = append(e.dst, target...)
	e.dst = append(e.dst, " HTTP/1.1\r\nHost: "...)
	e.dst = append(e.dst, authority...)
	e.dst = append(e.dst, tailCRLF...)
	e.request, e.keepUpgrade, e.dropLength, e.forbidden = true, c.upgrade && !c.isConnect, true, false
	if err := e.fields(h); err != nil {
		e.dst = e.dst[:start]
		return c.badRequest(err)
	}
	if length >= 0 {
		e.contentLengthField(length)
	}
	switch {
	case state == creqChunked:
		e.dst = append(e.dst, "Transfer-Encoding: chunked\r\n"...)
	case c.upgrade && !c.isConnect:
		e.dst = append(e.dst, "Connection: Upgrade\r\n"...)
	}
	e.dst = append(e.dst, tailCRLF...)

	c.wstate = state
	x.wremaining = length
	if end && c.upgrade {
		c.wstate = creqDone // a CONNECT without a client direction
	}
	if end || c.upgrade {
		if err := c.writeScratch(); err != nil {
			return c.writeFailed(err)
		}
		if end {
			c.requestDone()
		}
		return nil
	}
	c.hold()
	return nil
}

// EncodeData implements protocol.Encoder: request body bytes, with the held head and chunk
// framing in one writev, p by reference.
func (c *clientCodec) EncodeData(id protocol.StreamID, p [][]byte, end bool) error {
	if c.err != nil {
		return c.err
	}
	if id != c.id || c.wstate == creqNone {
		return ErrStreamState
	}
	if !c.active || c.wstate == creqDone {
		return nil // the response already ended (or the upgrade was refused): nothing to send
	}
	n := totalLen(p)
	if n == 0 && !end {
		return nil
	}
	defer c.releaseIfIdle()
	var err error
	switch c.wstate {
	case creqLength:
		x := c.x
		if int64(n) > x.wremaining || (end && int64(n) != x.wremaining) {
			return c.fail(ErrBodyLength, false)
		}
		x.wremaining -= int64(n)
		err = c.writeBody(p, n, "")
	case creqChunked:
		err = c.writeBody(p, n, c.chunkFrame(n, end))
	case creqUpgrade:
		if n > 0 {
			return c.fail(ErrDataBeforeUpgrade, false)
		}
		// The client finished before the upgrade was answered: nothing more will follow.
		c.wstate = creqDone
		return nil
	case creqTunnel:
		err = c.writeBody(p, n, "")
		if err == nil && end {
			err = c.conn.CloseWrite()
		}
	}
	if err != nil {
		return c.writeFailed(err)
	}
	if end {
		c.requestDone()
	}
	return nil
}

// EncodeTrailers implements protocol.Encoder: trailers end a chunked request; a request
// with a Content-Length cannot carry them, so they are dropped.
func (c *clientCodec) EncodeTrailers(id protocol.StreamID, t protocol.Headers) error {
	if c.err != nil {
		return c.err
	}
	if id != c.id || c.wstate == creqNone {
		return ErrStreamState
	}
	if !c.active || c.wstate == creqDone {
		return nil
	}
	defer c.releaseIfIdle()
	switch c.wstate {
	case creqChunked:
		c.lastChunkWithTrailers(t)
	case creqLength:
		if c.x.wremaining != 0 {
			return c.fail(ErrBodyLength, false)
		}
	case creqTunnel:
		if err := c.conn.CloseWrite(); err != nil {
			return c.writeFailed(err)
		}
	}
	if err := c.writeScratch(); err != nil {
		return c.writeFailed(err)
	}
	c.requestDone()
	return nil
}

func (c *clientCodec) requestDone() {
	c.wstate = creqDone
	if c.rstate == crespDone {
		c.active = false
	}
}

// badRequest refuses a request head that cannot be encoded; nothing was written, but the
// exchange is lost, so the connection is not reused.
func (c *clientCodec) badRequest(err error) error {
	c.reusable = false
	c.active = false
	return err
}

func (c *clientCodec) writeFailed(err error) error {
	c.err = connError(err)
	c.reusable = false
	c.active = false
	c.dropScratch()
	return c.err
}

// Reset implements protocol.Encoder: the exchange is abandoned and the connection closed
// (reset at once: nothing queued for it is worth sending).
func (c *clientCodec) Reset(id protocol.StreamID, err error) {
	if id != c.id || !c.active {
		return
	}
	c.active = false
	c.reusable = false
	c.dropScratch()
	if c.err == nil {
		c.err = connError(err)
	}
	c.conn.Abort(err)
	c.releaseIfIdle()
}

// --- decoding -------------------------------------------------------------------------------

// Decode implements protocol.ClientCodec.
func (c *clientCodec) Decode(in reactor.View) error {
	c.decoding = true
	err := c.decode(in)
	c.decoding = false
	c.releaseIfIdle()
	return err
}

func (c *clientCodec) decode(in reactor.View) error {
	for in.Len() > 0 {
		if c.err != nil {
			in.Skip(in.Len())
			return c.err
		}
		switch c.rstate {
		case crespHead:
			ok, err := c.decodeHead(in)
			if err != nil {
				return c.fail(err, true)
			}
			if !ok {
				return nil
			}
		case crespLength:
			x := c.x
			k := int(min(int64(in.Len()), x.remaining))
			x.remaining -= int64(k)
			end := x.remaining == 0
			if end {
				c.responseDone()
			}
			offer(c.sink, c.id, in, k, end)
		case crespChunked:
			more, err := c.decodeChunked(in)
			if err != nil {
				return c.fail(err, true)
			}
			if more {
				return nil
			}
		case crespClose, crespTunnel:
			offer(c.sink, c.id, in, in.Len(), false)
		case crespDone:
			return c.fail(ErrUnexpectedData, false)
		}
	}
	return nil
}

func (c *clientCodec) decodeHead(in reactor.View) (bool, error) {
	if !c.active {
		return false, ErrUnexpectedData
	}
	x := c.x
	h := responseHeadPool.Get().(*ResponseHead)
	defer putResponseHead(h)
	for {
		buf := in.Peek(min(in.Len(), c.cfg.lim.MaxHeadBytes))
		n, err := parseResponseHead(&x.scan, &c.cfg.respMode, buf, h)
		if err != nil || n == 0 {
			return false, err
		}
		if h.Status >= 200 || h.Status == 101 {
			return true, c.startResponse(buf[:n], h, in)
		}
		// Interim response (100 Continue, 102, 103): not forwarded.
		x.interim++
		if x.interim > maxInterim {
			return false, &Error{Err: ErrTooManyInterim, Offset: 0}
		}
		in.Skip(n)
		if in.Len() == 0 {
			return false, nil
		}
	}
}

// startResponse handles a final response head raw, parsed into h, still at the front of in.
func (c *clientCodec) startResponse(raw []byte, h *ResponseHead, in reactor.View) error {
	if h.Status == 101 && (!c.upgrade || c.isConnect) {
		return &Error{Err: ErrUnsolicitedUpgrade, Offset: 9}
	}
	kind, length := responseBody(c.isHead, c.isConnect, h)
	if !h.KeepAlive || kind == BodyUntilClose || kind == BodyTunnel {
		c.reusable = false
	}
	if c.wstate == creqUpgrade && kind != BodyTunnel {
		// Refused: the request had no body, so it is complete.
		c.wstate = creqDone
	}
	hs := newResponseHeaders(raw, h)
	in.Skip(len(raw))
	end := false
	switch kind {
	case BodyLength:
		c.rstate, c.x.remaining = crespLength, length
	case BodyChunked:
		c.rstate = crespChunked
		c.x.chunked.start(c.cfg)
	case BodyUntilClose:
		c.rstate = crespClose
	case BodyTunnel:
		c.rstate = crespTunnel
		if c.wstate == creqUpgrade {
			c.wstate = creqTunnel
		}
	default:
		end = true
		c.responseDone()
	}
	c.sink.OnHeaders(c.id, hs, end)
	return nil
}

func (c *clientCodec) decodeChunked(in reactor.View) (more bool, err error) {
	return decodeChunked(c, c.sink, c.id, c.cfg.window, in)
}

func (c *clientCodec) readingChunked() bool            { return c.rstate == crespChunked }
func (c *clientCodec) chunkedDecoder() *ChunkedDecoder { return &c.x.chunked }
func (c *clientCodec) chunkedDone()                    { c.responseDone() }

// responseDone marks the response complete, before the sink hears of it, so the stream
// manager sees the connection's final state (ActiveStreams, Reusable) when it recycles it.
// A request not sent whole makes the connection unusable: the exchange is over either way.
func (c *clientCodec) responseDone() {
	c.rstate = crespDone
	if c.wstate != creqDone {
		c.reusable = false
		c.dropScratch()
	}
	c.active = false
}

// fail handles a hostile or broken response (or bytes nobody asked for): the stream is
// reset, the connection is not reused, and the error ends the connection. A response that
// arrives with nobody waiting is not reported to any sink.
func (c *clientCodec) fail(err error, reset bool) error {
	werr := connError(err)
	c.err = werr
	c.reusable = false
	c.dropScratch()
	if c.active {
		c.active = false
		c.rstate = crespDone
		if reset {
			c.sink.OnReset(c.id, werr)
		}
	}
	return werr
}

// OnEOF implements protocol.EOFHandler: a body delimited by close (or a tunnel) ends here;
// any other response cut short leaves the connection unusable, and the close that follows
// resets the stream.
func (c *clientCodec) OnEOF() {
	c.reusable = false
	if !c.active {
		return
	}
	switch c.rstate {
	case crespClose, crespTunnel:
		c.responseDone()
		c.sink.OnData(c.id, emptyView{}, 0, true)
	}
	c.releaseIfIdle()
}
