package http2

import (
	"fmt"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// outbuf collects what a connection writes until the next flush: bytes the codec encoded
// (frame headers, control frames, header blocks) in buf, and body slices it references
// (the caller's, or queued Buffers) in order, so one Write or Writev sends everything.
type outbuf struct {
	buf    []byte
	segs   []outSeg
	vec    [][]byte
	rel    []*reactor.Buffer // released after the next flush
	hasExt bool
}

// outSeg is buf[off:end], or ext when ext is not nil.
type outSeg struct {
	off, end int
	ext      []byte
}

// Write implements io.Writer for the Framer: the frame is copied into buf.
func (o *outbuf) Write(p []byte) (int, error) {
	if k := len(o.segs); k > 0 && o.segs[k-1].ext == nil && o.segs[k-1].end == len(o.buf) {
		o.buf = append(o.buf, p...)
		o.segs[k-1].end = len(o.buf)
		return len(p), nil
	}
	off := len(o.buf)
	o.buf = append(o.buf, p...)
	o.segs = append(o.segs, outSeg{off: off, end: len(o.buf)})
	return len(p), nil
}

// smallBody is the largest body slice copied into buf instead of referenced: a separate
// iovec costs more than copying it, and a frame without references may wait for the
// driver's flush to leave together with everything else the same read produced (a
// reference must leave before the caller's buffer is reused).
const smallBody = 256

// ext appends a referenced slice; it must stay valid until the next flush. Slices up to
// smallBody are copied instead.
func (o *outbuf) ext(p []byte) {
	switch {
	case len(p) == 0:
	case len(p) <= smallBody:
		_, _ = o.Write(p)
	default:
		o.segs = append(o.segs, outSeg{ext: p})
		o.hasExt = true
	}
}

func (o *outbuf) empty() bool { return len(o.segs) == 0 }

// releaseLater releases b after the next flush (pending segments may reference it).
func (o *outbuf) releaseLater(b *reactor.Buffer) { o.rel = append(o.rel, b) }

// flush writes everything with one Write or Writev.
func (o *outbuf) flush(c reactor.Conn) error {
	var err error
	switch len(o.segs) {
	case 0:
	case 1:
		err = c.Write(o.seg(0))
	default:
		v := o.vec[:0]
		for i := range o.segs {
			v = append(v, o.seg(i))
		}
		err = c.Writev(v)
		clear(v)
		o.vec = v[:0]
	}
	clear(o.segs)
	o.segs = o.segs[:0]
	o.buf = o.buf[:0]
	if cap(o.buf) > 16<<10 {
		o.buf = nil
	}
	o.hasExt = false
	o.releaseAll()
	return err
}

func (o *outbuf) seg(i int) []byte {
	s := &o.segs[i]
	if s.ext != nil {
		return s.ext
	}
	return o.buf[s.off:s.end]
}

func (o *outbuf) releaseAll() {
	for i, b := range o.rel {
		b.Release()
		o.rel[i] = nil
	}
	o.rel = o.rel[:0]
}

func (o *outbuf) writeString(s string) {
	o.buf = append(o.buf, s...)
	o.segs = append(o.segs, outSeg{off: len(o.buf) - len(s), end: len(o.buf)})
}

// hpackBuf receives the HPACK encoder's output.
type hpackBuf struct{ b []byte }

func (h *hpackBuf) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	return len(p), nil
}

// --- flushing ---------------------------------------------------------------------------------

func (c *conn) flush() {
	if c.out.empty() {
		c.out.releaseAll()
	} else if err := c.out.flush(c.c); err != nil && c.writeErr == nil {
		c.writeErr = fmt.Errorf("%w: %w", protocol.ErrConnection, err)
	}
	if c.closeWhenDone {
		c.closeWhenDone = false
		if c.server {
			// Drained, or the client said it is done (GOAWAY), and nothing is active: send
			// FIN and read on until the client closes (the stream manager closes then, or at
			// its idle timeout). Closing the socket with frames of the client still unread
			// (a PING sent after its GOAWAY) would make the kernel answer with a TCP reset,
			// which can destroy what we wrote before the client reads it.
			c.halfClosed = true
			_ = c.c.CloseWrite()
			return
		}
		c.c.Close(nil)
	}
}

// flushIfIdle writes now unless a Decode is running (it flushes when it returns) or the
// driver's FlushQueue takes the codec (it flushes when its callback returns).
func (c *conn) flushIfIdle() {
	if c.inDecode || c.fqPending {
		return
	}
	if c.fq != nil && c.flushSeen && !c.out.empty() && c.fq.QueueFlush(c) {
		c.fqPending = true
		return
	}
	c.flush()
}

// SetFlushQueue implements protocol.Batcher.
func (c *conn) SetFlushQueue(q protocol.FlushQueue) { c.fq = q }

// hold keeps a head for coalescing with what follows. Until the driver has called Flush
// once, a held head is also flushed by a function queued with Conn.Exec, which runs after
// the current callback: correct without the driver's help, at one Exec per held head.
func (c *conn) hold() {
	if c.inDecode || c.flushSeen || c.flushQueued {
		return
	}
	if c.c.Exec(c.flushFn) {
		c.flushQueued = true
	}
}

func (c *conn) flushQueuedFn() {
	c.flushQueued = false
	c.flush()
}

// Flush implements protocol.Flusher.
func (c *conn) Flush() error {
	c.flushSeen = true
	c.fqPending = false
	c.flush()
	return c.writeErr
}

// --- header blocks ---------------------------------------------------------------------------

// encState is the scratch state of encoding one header block.
type encState struct {
	fn      func(name, value string) bool // c.encodeField, bound once
	collect func(name, value string) bool // c.collectTrailer, bound once
	mode    blockKind
	err     error
	status  int
	cl      int64
	isHead  bool
	conn    []string // tokens of the Connection field
	scratch []byte
	target  *stream // collectTrailer's stream
	names   interner
	values  interner
}

// interner hands the HPACK encoder strings it may keep in its dynamic table: the values
// given to Encode calls alias read buffers or pooled header blocks that are reused once the
// call returns. Repeated names and values cost nothing after their first use; the set is
// bounded and cleared when full.
type interner struct {
	m     map[string]string
	bytes int
	max   int
}

func (in *interner) get(s string) string {
	if v, ok := in.m[s]; ok {
		return v
	}
	return in.add(strings.Clone(s))
}

func (in *interner) getBytes(b []byte) string {
	if v, ok := in.m[string(b)]; ok {
		return v
	}
	return in.add(string(b))
}

func (in *interner) add(s string) string {
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if in.bytes+len(s) > in.max {
		clear(in.m)
		in.bytes = 0
	}
	in.m[s] = s
	in.bytes += len(s)
	return s
}

const (
	maxInternedNames  = 4 << 10
	maxInternedValues = 16 << 10
)

// encodeBlock HPACK-encodes h into c.hbuf as a request, response or trailers, translating
// from any protocol: names lower-cased, connection-specific fields (and those the
// Connection field names) dropped, TE kept only as "trailers", :authority from Host,
// values checked for bytes HTTP/2 cannot carry.
func (c *conn) encodeBlock(h protocol.Headers, mode blockKind) error {
	e := &c.enc
	c.hbuf.b = c.hbuf.b[:0]
	e.mode, e.err, e.status, e.cl, e.isHead = mode, nil, 0, -1, false
	e.conn = e.conn[:0]
	if e.names.max == 0 {
		e.names.max, e.values.max = maxInternedNames, maxInternedValues
	}
	if v, ok := h.Get("connection"); ok {
		for v != "" {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if tok = trimOWS(tok); tok != "" {
				e.conn = append(e.conn, tok)
			}
		}
	}
	switch mode {
	case kindRequest:
		if err := c.encodeRequestPseudo(h); err != nil {
			return err
		}
	case kindResponse:
		v, _ := h.Get(protocol.Status)
		if !validStatus(v) || v == "101" {
			return fmt.Errorf("%w: :status %q", ErrInvalidHeader, v)
		}
		e.status = int(v[0]-'0')*100 + int(v[1]-'0')*10 + int(v[2]-'0')
		c.writeField(protocol.Status, v)
	}
	h.Range(e.fn)
	return e.err
}

func (c *conn) encodeRequestPseudo(h protocol.Headers) error {
	method, _ := h.Get(protocol.Method)
	if !validToken(method) {
		return fmt.Errorf("%w: :method %q", ErrInvalidHeader, method)
	}
	authority, hasAuth := h.Get(protocol.Authority)
	if !hasAuth {
		authority, hasAuth = h.Get("host")
	}
	authority = trimOWS(authority)
	if hasAuth && (authority == "" || !validValue(authority) || strings.ContainsAny(authority, " \t")) {
		return fmt.Errorf("%w: :authority %q", ErrInvalidHeader, authority)
	}
	c.enc.isHead = method == "HEAD"
	c.writeField(protocol.Method, method)
	if method == "CONNECT" {
		if !hasAuth {
			return fmt.Errorf("%w: CONNECT without :authority", ErrInvalidHeader)
		}
		c.writeField(protocol.Authority, authority)
		return nil
	}
	scheme, ok := h.Get(protocol.Scheme)
	if !ok || scheme == "" {
		scheme = "http"
	}
	path, ok := h.Get(protocol.Path)
	if !ok || path == "" {
		path = "/"
	}
	if !validValue(scheme) || !validValue(path) || strings.ContainsAny(path, " \t") {
		return fmt.Errorf("%w: :scheme or :path", ErrInvalidHeader)
	}
	c.writeField(protocol.Scheme, scheme)
	if hasAuth {
		c.writeField(protocol.Authority, authority)
	}
	c.writeField(protocol.Path, path)
	return nil
}

// checkField applies the translation rules to one regular field: it returns the lower-case
// name (interned) and the value to send, keep false for a field that is dropped, and an
// error for one that cannot be encoded.
func (c *conn) checkField(name, value string) (lname, v string, keep bool, err error) {
	e := &c.enc
	if name == "" || name[0] == ':' {
		return "", "", false, nil // pseudo-headers are written first, by encodeBlock
	}
	lname, ok := c.lowerName(name)
	if !ok {
		return "", "", false, fmt.Errorf("%w: field name %q", ErrInvalidHeader, name)
	}
	if connectionSpecific(lname) || lname == "host" {
		return "", "", false, nil
	}
	for _, t := range e.conn {
		if equalFold(t, lname) {
			return "", "", false, nil
		}
	}
	v = trimOWS(value)
	switch lname {
	case "te":
		if !equalFold(v, "trailers") {
			return "", "", false, nil
		}
		v = "trailers"
	case "content-length":
		if e.mode == kindTrailers {
			return "", "", false, nil
		}
		n, ok := parseContentLength(v)
		if !ok {
			return "", "", false, fmt.Errorf("%w: content-length %q", ErrInvalidHeader, v)
		}
		e.cl = n
	}
	if !validValue(v) {
		return "", "", false, fmt.Errorf("%w: value of %q", ErrInvalidHeader, lname)
	}
	return lname, v, true, nil
}

// encodeField is the Range callback of encodeBlock.
func (c *conn) encodeField(name, value string) bool {
	lname, v, keep, err := c.checkField(name, value)
	if err != nil {
		c.enc.err = err
		return false
	}
	if keep {
		c.writeField(lname, v)
	}
	return true
}

// lowerName returns name in lower case, interned; false if it is not a token.
func (c *conn) lowerName(name string) (string, bool) {
	upper := false
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !tokenTable[ch] {
			return "", false
		}
		if 'A' <= ch && ch <= 'Z' {
			upper = true
		}
	}
	if !upper {
		return c.enc.names.get(name), true
	}
	b := c.enc.scratch[:0]
	for i := 0; i < len(name); i++ {
		b = append(b, lower(name[i]))
	}
	c.enc.scratch = b
	return c.enc.names.getBytes(b), true
}

// writeField HPACK-encodes one field; name must be owned (a constant or interned).
func (c *conn) writeField(name, value string) {
	if uint32(len(name)+len(value)+32) <= c.henc.MaxDynamicTableSize() {
		value = c.enc.values.get(value) // the encoder may keep it in its dynamic table
	}
	_ = c.henc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

// writeHeaderBlock queues c.hbuf as HEADERS and CONTINUATION frames of at most the peer's
// maximum frame size, contiguous in the output.
func (c *conn) writeHeaderBlock(id uint32, end bool) {
	block := c.hbuf.b
	maxf := int(c.peerMaxFrame)
	first := true
	for first || len(block) > 0 {
		n := min(len(block), maxf)
		frag := block[:n]
		block = block[n:]
		endHeaders := len(block) == 0
		if first {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: end, EndHeaders: endHeaders})
		} else {
			_ = c.fr.WriteContinuation(id, endHeaders, frag)
		}
		c.countFrame()
		first = false
	}
}

// answerLocal answers a request the codec refuses itself (431) on a stream it never
// opened; the request's remaining body is refused with RST_STREAM(NO_ERROR).
func (c *conn) answerLocal(id uint32, status string, reqEnded bool) {
	c.hbuf.b = c.hbuf.b[:0]
	c.writeField(protocol.Status, status)
	c.writeField("content-length", "0")
	c.writeHeaderBlock(id, true)
	if !reqEnded {
		c.writeRST(id, http2.ErrCodeNo)
	}
}

// --- DATA and the send queue -----------------------------------------------------------------

// dataHeader queues the 9-byte header of a DATA frame of n bytes.
func (c *conn) dataHeader(id uint32, n int, end bool) {
	var flags http2.Flags
	if end {
		flags = http2.FlagDataEndStream
	}
	h := [frameHeaderLen]byte{byte(n >> 16), byte(n >> 8), byte(n), byte(http2.FrameData), byte(flags),
		byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	_, _ = c.out.Write(h[:])
	c.dataFramesSent++
	c.countFrame()
}

// slicer walks a vector of slices.
type slicer struct {
	p      [][]byte
	i, off int
}

// take appends the next n bytes to out by reference.
func (s *slicer) take(o *outbuf, n int) {
	for n > 0 {
		b := s.p[s.i][s.off:]
		k := min(len(b), n)
		o.ext(b[:k])
		n -= k
		s.off += k
		if s.off == len(s.p[s.i]) {
			s.i, s.off = s.i+1, 0
		}
	}
}

// copyRest copies what is left into a pooled Buffer.
func (s *slicer) copyRest(b *reactor.Buffer) {
	for ; s.i < len(s.p); s.i, s.off = s.i+1, 0 {
		b.AppendCopy(s.p[s.i][s.off:])
	}
}

func totalLen(p [][]byte) int {
	n := 0
	for _, b := range p {
		n += len(b)
	}
	return n
}

// encodeData implements EncodeData for both sides: the bytes the peer's windows allow
// leave now as DATA frames referencing p (one writev with anything held); the rest is
// copied into the stream's queue and sent as WINDOW_UPDATE frames arrive.
func (c *conn) encodeData(id protocol.StreamID, p [][]byte, end bool) error {
	if c.err != nil {
		return c.err
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	st := c.lookup(id)
	if st == nil || st.send != sendOpen {
		return fmt.Errorf("%w: data on stream %d", ErrStreamState, id)
	}
	n := totalLen(p)
	if st.noBody {
		n, p = 0, nil // a response to HEAD, a 204 or a 304 has no body
	} else if st.sendCL >= 0 && (st.sentN+int64(n) > st.sendCL || end && st.sentN+int64(n) != st.sendCL) {
		return c.failStream(st, ErrBodyLength)
	}
	if n == 0 && !end {
		return nil
	}
	st.sentN += int64(n)
	sl := slicer{p: p}
	sent := 0
	if st.qLen == 0 {
		for sent < n {
			w := int(min(st.sendWindow, c.sendWindow, int64(c.peerMaxFrame), int64(n-sent)))
			if w <= 0 {
				break
			}
			c.dataHeader(st.id, w, end && sent+w == n)
			sl.take(&c.out, w)
			sent += w
			st.sendWindow -= int64(w)
			c.sendWindow -= int64(w)
		}
		if n == 0 && end {
			c.dataHeader(st.id, 0, true)
		}
	}
	var err error
	switch {
	case sent < n:
		b := reactor.NewBuffer()
		sl.copyRest(b)
		err = c.enqueue(st, b, end)
	case st.qLen > 0 && end:
		st.send = sendEnding // END_STREAM rides on the last queued frame
	case end:
		st.send = sendClosed
		c.maybeDone(st)
	}
	if c.out.hasExt {
		c.flush() // p belongs to the caller
	} else {
		c.flushIfIdle()
	}
	return err
}

// enqueue adds b to a stream's queue, bounded by MaxStreamSendBuffer and MaxConnSendBuffer.
func (c *conn) enqueue(st *stream, b *reactor.Buffer, end bool) error {
	st.q = append(st.q, b)
	st.qLen += b.Len()
	c.queued += b.Len()
	if end {
		st.send = sendEnding
	}
	st.congested = true
	if !st.inSendQ {
		st.inSendQ = true
		c.sendQ = append(c.sendQ, st)
	}
	if st.qLen > c.cfg.MaxStreamSendBuffer || c.queued > c.cfg.MaxConnSendBuffer {
		return c.failStream(st, ErrSendBufferOverflow)
	}
	return nil
}

// failStream resets a stream this end can no longer send correctly (RST_STREAM
// INTERNAL_ERROR) and returns the error for the Encode call.
func (c *conn) failStream(st *stream, sentinel error) error {
	if st.id != 0 {
		c.writeRST(st.id, http2.ErrCodeInternal)
	}
	st.known = false
	c.removeStream(st)
	c.flushIfIdle()
	return streamErr(st.handle, http2.ErrCodeInternal, sentinel)
}

// drainQueues sends queued bytes the windows now allow, one frame per stream per round.
func (c *conn) drainQueues() {
	for len(c.sendQ) > 0 {
		progress := false
		for i := 0; i < len(c.sendQ); i++ {
			if c.sendQueued(c.sendQ[i]) {
				progress = true
			}
		}
		// Streams whose queue emptied leave the send queue.
		out := c.sendQ[:0]
		for _, st := range c.sendQ {
			if st.qLen > 0 && !st.closed {
				out = append(out, st)
				continue
			}
			st.inSendQ = false
			c.queueDone(st)
		}
		clear(c.sendQ[len(out):])
		c.sendQ = out
		if !progress {
			return
		}
	}
}

// sendQueued sends one frame of a stream's queue if the windows allow.
func (c *conn) sendQueued(st *stream) bool {
	if st.closed || st.qLen == 0 {
		return false
	}
	w := int(min(st.sendWindow, c.sendWindow, int64(c.peerMaxFrame), int64(st.qLen)))
	if w <= 0 {
		return false
	}
	last := w == st.qLen
	c.dataHeader(st.id, w, last && st.send == sendEnding && !st.hasQTrail)
	for rem := w; rem > 0; {
		b := st.q[0]
		s := b.Bytes()[0]
		k := min(len(s), rem)
		c.out.ext(s[:k])
		b.Consume(k)
		rem -= k
		if b.Len() == 0 {
			c.out.releaseLater(b)
			st.q[0] = nil
			st.q = st.q[1:]
		}
	}
	st.qLen -= w
	c.queued -= w
	st.sendWindow -= int64(w)
	c.sendWindow -= int64(w)
	return true
}

// queueDone runs when a stream's queue emptied: queued trailers or END_STREAM complete
// the stream, and a FlowSink learns the stream is writable again.
func (c *conn) queueDone(st *stream) {
	if st.closed {
		return
	}
	if st.hasQTrail {
		c.hbuf.b = c.hbuf.b[:0]
		for _, f := range st.qTrailers {
			c.writeField(f.Name, f.Value)
		}
		st.qTrailers, st.hasQTrail = nil, false
		c.writeHeaderBlock(st.id, true)
	}
	if st.congested {
		st.congested = false
		c.writable = append(c.writable, st)
	}
	if st.send == sendEnding {
		st.send = sendClosed
		c.maybeDone(st)
	}
}

// notifyWritable tells FlowSinks about streams whose queue emptied.
func (c *conn) notifyWritable() {
	for i := 0; i < len(c.writable); i++ {
		st := c.writable[i]
		c.writable[i] = nil
		if !st.closed && st.flow != nil {
			st.flow.OnStreamWritable(st.handle)
		}
	}
	c.writable = c.writable[:0]
}

// streamCongested implements StreamFlow.StreamCongested.
func (c *conn) streamCongested(id protocol.StreamID) bool {
	st := c.lookup(id)
	return st != nil && st.qLen > 0
}

// encodeTrailers implements EncodeTrailers for both sides.
func (c *conn) encodeTrailers(id protocol.StreamID, t protocol.Headers) error {
	if c.err != nil {
		return c.err
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	st := c.lookup(id)
	if st == nil || st.send != sendOpen {
		return fmt.Errorf("%w: trailers on stream %d", ErrStreamState, id)
	}
	if !st.noBody && st.sendCL >= 0 && st.sentN != st.sendCL {
		return c.failStream(st, ErrBodyLength)
	}
	if st.qLen > 0 {
		// Trailers wait behind the queued bytes; HPACK-encoding them now would put the
		// encoder's table out of step with the order blocks reach the peer, so the fields
		// are copied and encoded when they are sent.
		c.enc.mode, c.enc.err, c.enc.target = kindTrailers, nil, st
		c.enc.conn = c.enc.conn[:0]
		t.Range(c.enc.collect)
		c.enc.target = nil
		if err := c.enc.err; err != nil {
			return c.failStream(st, err)
		}
		st.hasQTrail = true
		st.send = sendEnding
		c.flushIfIdle()
		return nil
	}
	if err := c.encodeBlock(t, kindTrailers); err != nil {
		return c.failStream(st, err)
	}
	c.writeHeaderBlock(st.id, true)
	st.send = sendClosed
	c.maybeDone(st)
	c.flushIfIdle()
	return nil
}

// collectTrailer copies one trailer field for a stream whose trailers wait in its queue.
func (c *conn) collectTrailer(name, value string) bool {
	lname, v, keep, err := c.checkField(name, value)
	if err != nil {
		c.enc.err = err
		return false
	}
	if keep {
		st := c.enc.target
		st.qTrailers = append(st.qTrailers, hpack.HeaderField{Name: lname, Value: strings.Clone(v)})
	}
	return true
}

// reset implements Reset for both sides: RST_STREAM with the code the reason maps to.
func (c *conn) reset(id protocol.StreamID, err error, def http2.ErrCode) {
	st := c.lookup(id)
	if st == nil || st.closed {
		return
	}
	if st.id != 0 && c.err == nil {
		_ = c.fr.WriteRSTStream(st.id, resetCode(err, def))
		c.ring.add(st.id)
		c.countFrame()
	}
	st.known = false
	c.removeStream(st)
	c.flushIfIdle()
}
