package http2

import (
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// headerAssembly is the header block being received: HEADERS and its CONTINUATION frames
// are decoded fragment by fragment as they arrive (HPACK keeps partial fields itself), so a
// block never waits whole in the read view, and its fields are validated as they come.
type headerAssembly struct {
	active   bool
	id       uint32
	st       *stream
	action   hbAction
	code     http2.ErrCode // hbStreamErr
	sentinel error         // hbStreamErr
	end      bool          // END_STREAM
	bytes    int           // compressed bytes so far
	block    *headerBlock  // nil when the block is decoded only to keep HPACK in sync
	kind     blockKind
	size     int    // decoded header list size so far
	tooBig   bool   // size passed MaxHeaderListSize: fields are no longer kept
	bad      string // why the block is malformed, "" if it is not
	regular  bool   // a regular field was seen
	pseudo   uint8  // pseudo-headers seen (pseudoXxx bits)
	cl       int64  // content-length, -1 if none
	cookies  int
}

type hbAction uint8

const (
	hbIgnore    hbAction = iota // decode and drop (streams we reset, streams after our GOAWAY)
	hbNew                       // server: a request opening a stream
	hbResponse                  // client: a response head (final or interim)
	hbTrailers                  // trailers of an open stream
	hbStreamErr                 // decode, then reset the stream with code
	hbRefuse                    // server: decode, then refuse the stream (concurrency limit)
)

const (
	pseudoMethod uint8 = 1 << iota
	pseudoScheme
	pseudoAuthority
	pseudoPath
	pseudoStatus
)

func pseudoBit(name string, kind blockKind) uint8 {
	if kind == kindRequest {
		switch name {
		case protocol.Method:
			return pseudoMethod
		case protocol.Scheme:
			return pseudoScheme
		case protocol.Authority:
			return pseudoAuthority
		case protocol.Path:
			return pseudoPath
		}
		return 0
	}
	if kind == kindResponse && name == protocol.Status {
		return pseudoStatus
	}
	return 0
}

func (c *conn) onHeaders(f *http2.HeadersFrame) {
	id := f.StreamID
	if c.hb.block != nil {
		c.hb.block.Release()
	}
	c.hb = headerAssembly{active: true, id: id, end: f.StreamEnded(), cl: -1}
	if c.server {
		c.serverHeadersAction(id)
	} else {
		c.clientHeadersAction(id)
	}
	if c.err != nil {
		return
	}
	hb := &c.hb
	if f.HasPriority() && f.Priority.StreamDep == id && hb.action != hbIgnore {
		// RFC 9113 5.3.1: a stream cannot depend on itself.
		hb.releaseBlock()
		hb.action, hb.code, hb.sentinel = hbStreamErr, http2.ErrCodeProtocol, ErrProtocol
	}
	c.headerFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (hb *headerAssembly) releaseBlock() {
	if hb.block != nil {
		hb.block.Release()
		hb.block = nil
	}
}

func (hb *headerAssembly) streamErr(code http2.ErrCode, sentinel error) {
	hb.action, hb.code, hb.sentinel = hbStreamErr, code, sentinel
}

func (hb *headerAssembly) expect(action hbAction, st *stream, kind blockKind) {
	hb.action, hb.st, hb.kind = action, st, kind
	hb.block = newHeaderBlock(kind)
}

func (c *conn) serverHeadersAction(id uint32) {
	hb := &c.hb
	if id%2 == 0 {
		c.fail(http2.ErrCodeProtocol, ErrProtocol, "HEADERS with an even stream id from a client")
		return
	}
	if st := c.streams[id]; st != nil {
		if !st.recvOpen {
			hb.streamErr(http2.ErrCodeStreamClosed, ErrStreamClosedByPeer)
			return
		}
		hb.expect(hbTrailers, st, kindTrailers)
		return
	}
	if id <= c.lastPeerID {
		if c.ring.has(id) || c.pastGoAway(id) {
			return // hbIgnore
		}
		c.fail(http2.ErrCodeStreamClosed, ErrStreamClosedByPeer, "HEADERS on a closed stream")
		return
	}
	c.lastPeerID = id
	switch {
	case c.goawaySent:
		// Past our GOAWAY: not processed, the client retries it elsewhere.
	case len(c.streams) >= int(c.cfg.MaxConcurrentStreams):
		hb.action = hbRefuse
	default:
		hb.expect(hbNew, nil, kindRequest)
	}
}

// pastGoAway reports a client stream opened after our GOAWAY: not processed, its frames
// are dropped (RFC 9113 6.8).
func (c *conn) pastGoAway(id uint32) bool {
	return c.server && c.draining && id > c.goawayID
}

func (c *conn) clientHeadersAction(id uint32) {
	hb := &c.hb
	st := c.streams[id]
	switch {
	case st == nil && c.idle(id):
		c.fail(http2.ErrCodeProtocol, ErrProtocol, "HEADERS on an idle stream")
	case st == nil && c.ring.has(id):
		// hbIgnore
	case st == nil || !st.recvOpen:
		hb.streamErr(http2.ErrCodeStreamClosed, ErrStreamClosedByPeer)
	case st.gotHead:
		hb.expect(hbTrailers, st, kindTrailers)
	default:
		hb.expect(hbResponse, st, kindResponse)
	}
}

func (c *conn) onContinuation(f *http2.ContinuationFrame) {
	c.headerFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// headerFragment decodes one fragment of the current header block.
func (c *conn) headerFragment(frag []byte, endHeaders bool) {
	hb := &c.hb
	if len(frag) == 0 && !endHeaders {
		if c.emptyFrame() {
			return
		}
	} else if len(frag) > 0 {
		c.emptyFrames = 0
	}
	hb.bytes += len(frag)
	if hb.bytes > c.cfg.MaxHeaderBlockBytes {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "header block larger than MaxHeaderBlockBytes")
		return
	}
	c.hdec.SetEmitEnabled(hb.block != nil && !hb.tooBig)
	if _, err := c.hdec.Write(frag); err != nil {
		c.fail(http2.ErrCodeCompression, ErrCompression, "invalid header block")
		return
	}
	if !endHeaders {
		return
	}
	if err := c.hdec.Close(); err != nil {
		c.fail(http2.ErrCodeCompression, ErrCompression, "truncated header block")
		return
	}
	hb.active = false
	c.finishHeaders()
}

// emptyFrame counts a frame with nothing in it; true when the connection failed.
func (c *conn) emptyFrame() bool {
	c.emptyFrames++
	if c.emptyFrames > c.cfg.MaxConsecutiveEmptyFrames {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "too many consecutive empty frames")
		return true
	}
	return false
}

// emitField receives each decoded field: it is validated and copied into the block.
func (c *conn) emitField(f hpack.HeaderField) {
	hb := &c.hb
	if hb.block == nil {
		return
	}
	hb.size += len(f.Name) + len(f.Value) + 32
	if hb.size > int(c.cfg.MaxHeaderListSize) {
		hb.tooBig = true
		c.hdec.SetEmitEnabled(false)
		return
	}
	if hb.bad != "" {
		return
	}
	name, value := f.Name, f.Value
	if name == "" {
		hb.bad = "empty field name"
		return
	}
	if !validValue(value) {
		hb.bad = "invalid field value"
		return
	}
	if name[0] == ':' {
		bit := pseudoBit(name, hb.kind)
		switch {
		case hb.regular:
			hb.bad = "pseudo-header after a regular field"
		case bit == 0:
			hb.bad = "unknown or misplaced pseudo-header"
		case hb.pseudo&bit != 0:
			hb.bad = "duplicate pseudo-header"
		default:
			hb.pseudo |= bit
			hb.block.add(name, value, true)
		}
		return
	}
	hb.regular = true
	if !validLowerName(name) {
		hb.bad = "invalid or upper-case field name"
		return
	}
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		hb.bad = "connection-specific field"
		return
	case "te":
		if !equalFold(value, "trailers") {
			hb.bad = "TE other than trailers"
			return
		}
	case "content-length":
		n, ok := parseContentLength(value)
		if !ok || (hb.cl >= 0 && hb.cl != n) {
			hb.bad = "invalid content-length"
			return
		}
		hb.cl = n
	case "cookie":
		hb.cookies++
	}
	hb.block.add(name, value, false)
}

// finishHeaders acts on a complete header block.
func (c *conn) finishHeaders() {
	hb := c.hb
	c.hb = headerAssembly{}
	if hb.st != nil && hb.st.closed {
		hb.action = hbIgnore // reset between two reads of its block
	}
	switch hb.action {
	case hbIgnore:
		hb.releaseBlock()
	case hbStreamErr:
		hb.releaseBlock()
		c.streamErrorID(hb.id, hb.code, hb.sentinel)
	case hbRefuse:
		c.writeRST(hb.id, http2.ErrCodeRefusedStream)
		c.countAbuse()
	case hbNew:
		c.finishRequest(&hb)
	case hbResponse:
		c.finishResponse(&hb)
	case hbTrailers:
		c.finishTrailers(&hb)
	}
}

// finishRequest opens a server stream for a request head.
func (c *conn) finishRequest(hb *headerAssembly) {
	b := hb.block
	if hb.tooBig {
		b.Release()
		c.answerLocal(hb.id, "431", hb.end)
		return
	}
	if hb.bad == "" {
		hb.bad = checkRequest(b, hb.pseudo)
	}
	if hb.bad == "" && hb.end && hb.cl > 0 {
		hb.bad = "content-length without a body"
	}
	if hb.bad != "" {
		b.Release()
		c.writeRST(hb.id, http2.ErrCodeProtocol)
		c.countAbuse()
		return
	}
	if hb.cookies > 1 {
		b.joinCookies()
	}
	method, _ := b.Get(protocol.Method)
	st := c.newStream(hb.id, protocol.StreamID(hb.id), c.sink())
	st.recvOpen = !hb.end
	st.gotHead = true
	st.recvCL = hb.cl
	st.isHead = method == "HEAD"
	st.known = true
	c.streams[hb.id] = st
	c.streamsOpened++
	st.sink.OnHeaders(st.handle, b, hb.end)
	if hb.end {
		c.maybeDone(st)
	}
}

// checkRequest applies RFC 9113 8.3.1 to a request head and folds Host into :authority.
func checkRequest(b *headerBlock, bits uint8) string {
	if bits&pseudoMethod == 0 {
		return "missing :method"
	}
	method, _ := b.Get(protocol.Method)
	if method == "CONNECT" {
		if bits&(pseudoScheme|pseudoPath) != 0 || bits&pseudoAuthority == 0 {
			return "CONNECT needs :authority and no :scheme or :path"
		}
	} else {
		if bits&pseudoScheme == 0 || bits&pseudoPath == 0 {
			return "missing :scheme or :path"
		}
		if p, _ := b.Get(protocol.Path); p == "" {
			return "empty :path"
		}
	}
	hi := b.index("host")
	if hi < 0 {
		return ""
	}
	for i := hi + 1; i < len(b.fields); i++ {
		if f := &b.fields[i]; !f.deleted && b.str(f.name) == "host" {
			return "duplicate host"
		}
	}
	host := b.str(b.fields[hi].value)
	if bits&pseudoAuthority != 0 {
		ai := b.index(protocol.Authority)
		if !equalFold(b.str(b.fields[ai].value), host) {
			return "host differs from :authority"
		}
		b.fields[hi].deleted = true
		return ""
	}
	// Host stands for :authority (RFC 9113 8.3.1).
	b.fields[hi].name = b.addValue(protocol.Authority)
	b.fields[hi].pseudo = true
	return ""
}

// joinCookies joins cookie fields into one (RFC 9113 8.2.3), as HTTP/1.1 needs.
func (b *headerBlock) joinCookies() {
	first, start := -1, 0
	for i := range b.fields {
		f := &b.fields[i]
		if f.deleted || f.pseudo || b.str(f.name) != "cookie" {
			continue
		}
		v := b.str(f.value)
		if first < 0 {
			first, start = i, len(b.buf)
			b.buf = append(b.buf, v...)
			continue
		}
		b.buf = append(b.buf, "; "...)
		b.buf = append(b.buf, v...)
		f.deleted = true
	}
	b.fields[first].value = span{int32(start), int32(len(b.buf) - start)}
}

// finishResponse delivers a response head (client side).
func (c *conn) finishResponse(hb *headerAssembly) {
	st, b := hb.st, hb.block
	if hb.tooBig {
		b.Release()
		c.streamError(st, http2.ErrCodeProtocol, ErrHeaderListTooLarge)
		return
	}
	status := -1
	if hb.bad == "" {
		if hb.pseudo&pseudoStatus == 0 {
			hb.bad = "missing :status"
		} else if v, _ := b.Get(protocol.Status); !validStatus(v) {
			hb.bad = "invalid :status"
		} else {
			status = int(v[0]-'0')*100 + int(v[1]-'0')*10 + int(v[2]-'0')
		}
	}
	if hb.bad == "" && status < 200 && (status == 101 || hb.end) {
		hb.bad = "101 or interim response with END_STREAM"
	}
	if hb.bad != "" {
		b.Release()
		c.streamError(st, http2.ErrCodeProtocol, ErrMalformed)
		return
	}
	if status < 200 {
		b.Release()
		st.interim++
		if st.interim > c.cfg.MaxInterimResponses {
			c.streamError(st, http2.ErrCodeProtocol, ErrFlood)
		}
		return
	}
	st.gotHead = true
	st.recvCL = hb.cl
	if st.isHead || status == 204 || status == 304 {
		st.recvCL = 0 // no body, whatever content-length says
	}
	if hb.end && st.recvCL > 0 {
		b.Release()
		c.streamError(st, http2.ErrCodeProtocol, ErrMalformed)
		return
	}
	st.recvOpen = !hb.end
	st.sink.OnHeaders(st.handle, b, hb.end)
	if hb.end {
		c.maybeDone(st)
	}
}

// finishTrailers delivers trailers, which end the stream's receive direction.
func (c *conn) finishTrailers(hb *headerAssembly) {
	st, b := hb.st, hb.block
	var sentinel error
	switch {
	case !hb.end:
		sentinel = ErrMalformed // RFC 9113 8.1: trailers carry END_STREAM
	case hb.tooBig:
		sentinel = ErrHeaderListTooLarge
	case hb.bad != "":
		sentinel = ErrMalformed
	case st.recvCL >= 0 && st.recvN != st.recvCL:
		sentinel = ErrMalformed
	}
	if sentinel != nil {
		b.Release()
		c.streamError(st, http2.ErrCodeProtocol, sentinel)
		return
	}
	st.recvOpen = false
	st.sink.OnTrailers(st.handle, b)
	c.maybeDone(st)
}

// --- DATA and receive flow control -----------------------------------------------------------

// emptyView is the View given with OnData(id, v, 0, true): it holds nothing, so a sink
// calling Peek(0) ("all bytes") cannot pick up the next frame.
type emptyView struct{}

func (emptyView) Len() int                   { return 0 }
func (emptyView) Peek(int) []byte            { return nil }
func (emptyView) Skip(int)                   {}
func (emptyView) Detach(int) *reactor.Buffer { return reactor.NewBuffer() }

// onData handles a whole DATA frame at the front of in: the payload is offered to the sink
// in place (the frame header and pad length are skipped before, the padding after).
func (c *conn) onData(in reactor.View, fh http2.FrameHeader) {
	length := int(fh.Length)
	id := fh.StreamID
	if id == 0 {
		c.fail(http2.ErrCodeProtocol, ErrProtocol, "DATA on stream 0")
		return
	}
	in.Skip(frameHeaderLen)
	pad, n := 0, length
	if fh.Flags.Has(http2.FlagDataPadded) {
		if length == 0 {
			c.fail(http2.ErrCodeFrameSize, ErrFrameSize, "padded DATA without pad length")
			return
		}
		pad = int(in.Peek(1)[0])
		in.Skip(1)
		n = length - 1 - pad
		if n < 0 {
			c.fail(http2.ErrCodeProtocol, ErrProtocol, "DATA padding longer than the payload")
			return
		}
	}
	end := fh.Flags.Has(http2.FlagDataEndStream)
	if int64(length) > c.recvWindow {
		c.fail(http2.ErrCodeFlowControl, ErrFlowControl, "DATA beyond the connection window")
		return
	}
	c.recvWindow -= int64(length)
	c.creditConn(int64(length)) // the connection window is returned as bytes arrive
	if n == 0 && !end {
		if c.emptyFrame() {
			return
		}
	} else if n > 0 {
		c.emptyFrames = 0
	}
	st := c.streams[id]
	if st == nil || !st.recvOpen || !st.gotHead || int64(length) > st.recvWindow {
		in.Skip(n + pad)
		switch {
		case st == nil && c.idle(id):
			c.fail(http2.ErrCodeProtocol, ErrProtocol, "DATA on an idle stream")
		case st == nil && (c.ring.has(id) || c.pastGoAway(id)):
			// in flight when we reset it, or opened after our GOAWAY: ignored
		case st == nil || !st.recvOpen:
			c.streamErrorID(id, http2.ErrCodeStreamClosed, ErrStreamClosedByPeer)
		case !st.gotHead:
			c.streamError(st, http2.ErrCodeProtocol, ErrMalformed) // DATA before the response head
		default:
			c.streamError(st, http2.ErrCodeFlowControl, ErrFlowControl)
		}
		return
	}
	st.recvWindow -= int64(length)
	st.recvCredit += int64(length - n) // padding is consumed here
	st.recvN += int64(n)
	if st.recvCL >= 0 && (st.recvN > st.recvCL || end && st.recvN != st.recvCL) {
		in.Skip(n + pad)
		c.streamError(st, http2.ErrCodeProtocol, ErrMalformed) // content-length differs from DATA
		return
	}
	if end {
		st.recvOpen = false
	}
	if n == 0 {
		if end {
			st.sink.OnData(st.handle, emptyView{}, 0, true)
		}
	} else {
		want := in.Len() - n
		if st.flow != nil {
			st.owed += int64(n)
		}
		st.sink.OnData(st.handle, in, n, end)
		if extra := in.Len() - want; extra > 0 {
			in.Skip(extra)
		} else if extra < 0 {
			// The sink took bytes past the DATA payload: framing is lost.
			c.fail(http2.ErrCodeInternal, ErrProtocol, "sink consumed more than offered")
			return
		}
		if st.flow == nil {
			st.recvCredit += int64(n)
		}
	}
	in.Skip(pad)
	if st.closed {
		return
	}
	c.creditStream(st)
	if end {
		c.maybeDone(st)
	}
}

// creditConn returns received bytes to the connection window, in batches of half of it.
func (c *conn) creditConn(n int64) {
	c.recvCredit += n
	if c.recvCredit >= int64(c.cfg.InitialConnWindow)/2 {
		_ = c.fr.WriteWindowUpdate(0, uint32(c.recvCredit))
		c.countFrame()
		c.recvWindow += c.recvCredit
		c.recvCredit = 0
	}
}

// creditStream returns consumed bytes to a stream's window, in batches of half of it.
func (c *conn) creditStream(st *stream) {
	if !st.recvOpen || st.recvCredit == 0 || st.recvCredit < int64(c.cfg.InitialStreamWindow)/2 {
		return
	}
	_ = c.fr.WriteWindowUpdate(st.id, uint32(st.recvCredit))
	c.countFrame()
	st.recvWindow += st.recvCredit
	st.recvCredit = 0
}

// consume implements StreamFlow.Consume.
func (c *conn) consume(id protocol.StreamID, n int) {
	st := c.lookup(id)
	if st == nil || n <= 0 {
		return
	}
	k := min(int64(n), st.owed)
	st.owed -= k
	st.recvCredit += k
	c.creditStream(st)
	if !c.inDecode {
		c.flush()
	}
}

// lookup finds a live stream by the id its sink and Encode calls use.
func (c *conn) lookup(id protocol.StreamID) *stream {
	if c.handles != nil {
		return c.handles[id]
	}
	if id > maxStreamID {
		return nil
	}
	return c.streams[uint32(id)]
}

// newStream returns a stream with its windows set.
func (c *conn) newStream(id uint32, handle protocol.StreamID, sink protocol.Sink) *stream {
	st := &stream{
		id:         id,
		handle:     handle,
		sink:       sink,
		recvWindow: c.recvInit(),
		recvCL:     -1,
		sendWindow: c.peerInitWindow,
		sendCL:     -1,
	}
	if fs, ok := sink.(FlowSink); ok {
		st.flow = fs
	}
	if c.server {
		st.opened = time.Now()
	}
	return st
}
