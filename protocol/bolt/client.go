package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bytedance/gopkg/lang/mcache"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// cliState is where an upstream stream's request stands.
type cliState uint8

const (
	cliIdle      cliState = iota // allocated, no head encoded yet
	cliSending                   // head given to the writer, content to come
	cliBuffering                 // a non-Bolt request of unknown length: content buffered until its end
	cliSent                      // the whole request was given to the writer
)

type cliStream struct {
	sink   protocol.Sink
	oneway bool
	state  cliState
	head   []byte          // cliBuffering: the encoded head part (mcache), content length patched at the end
	buf    *reactor.Buffer // cliBuffering: the content so far
}

// clientCodec is the upstream side of a Bolt connection: it multiplexes streams by request
// ids it allocates itself, per connection.
type clientCodec struct {
	c        reactor.Conn
	lim      Limits
	opts     CodecOptions
	r        reader
	w        frameWriter
	streams  map[uint32]cliStream
	next     uint32
	scratch  []byte
	err      error // the connection error Decode returned
	broken   bool  // not reusable
	oneways  []uint32
	pending  bool   // runOneways is scheduled
	onewayFn func() // c.runOneways, bound once
}

var (
	_ protocol.ClientCodec = (*clientCodec)(nil)
	_ protocol.Flusher     = (*clientCodec)(nil)
)

func newClientCodec(c reactor.Conn, lim Limits, opts CodecOptions) *clientCodec {
	cc := &clientCodec{
		c:       c,
		lim:     lim,
		opts:    opts,
		r:       reader{lim: lim},
		w:       frameWriter{c: c, maxQueued: opts.MaxQueuedBytes},
		streams: make(map[uint32]cliStream),
		scratch: make([]byte, 0, 256),
	}
	cc.r.last = cc.responseDone
	cc.onewayFn = cc.runOneways
	return cc
}

// NewStream implements protocol.ClientCodec: it allocates the next request id of this
// connection (wrapping at 2^32, skipping 0 and ids still in flight).
func (c *clientCodec) NewStream(sink protocol.Sink) (protocol.StreamID, error) {
	if c.broken || c.err != nil {
		return 0, ErrNotReusable
	}
	if len(c.streams) >= c.opts.MaxStreams {
		return 0, fmt.Errorf("%w: %d active", ErrTooManyStreams, len(c.streams))
	}
	for {
		c.next++
		if c.next == 0 {
			continue
		}
		if _, busy := c.streams[c.next]; !busy && !c.w.has(protocol.StreamID(c.next)) {
			break
		}
	}
	c.streams[c.next] = cliStream{sink: sink}
	return protocol.StreamID(c.next), nil
}

// ActiveStreams implements protocol.ClientCodec.
func (c *clientCodec) ActiveStreams() int { return len(c.streams) }

// MaxStreams implements protocol.ClientCodec.
func (c *clientCodec) MaxStreams() int { return c.opts.MaxStreams }

// Reusable implements protocol.ClientCodec: false after a connection error.
func (c *clientCodec) Reusable() bool { return !c.broken && c.err == nil && c.w.broken == nil }

// EncodeHeaders implements protocol.Encoder. A *Headers request or oneway from a Bolt
// downstream is rewritten (its head part copied with this connection's request id) or, when
// its overlay changed it, re-encoded. Any other Headers becomes a Bolt request: class name
// from ":path", header map from the other fields (framing and hop-by-hop fields left out),
// timeout -1, Hessian2; its content length comes from "content-length", and a body of unknown
// length is buffered (at most Limits.MaxFrame) until its end.
func (c *clientCodec) EncodeHeaders(id protocol.StreamID, h protocol.Headers, end bool) error {
	rid := uint32(id)
	st, ok := c.streams[rid]
	if !ok || st.state != cliIdle || uint64(rid) != id {
		return fmt.Errorf("%w: request head for stream %d", ErrUnknownStream, id)
	}
	var head []byte
	var err error
	cl := 0
	if bh, ok := h.(*Headers); ok && (bh.Kind() == KindRequest || bh.Kind() == KindOneway) {
		if !end {
			cl = bh.contentLen
		}
		st.oneway = bh.typ == TypeOneway
		head, err = bh.appendHead(c.scratch[:0], rid, cl)
	} else {
		known := end
		if v, ok := h.Get("content-length"); ok && !end {
			if n, perr := strconv.Atoi(v); perr == nil && n >= 0 && n <= c.lim.MaxFrame {
				cl, known = n, true
			}
		}
		head, err = appendForeignRequest(c.scratch[:0], h, rid, cl)
		if err == nil && !known {
			c.scratch = head[:0]
			st.state = cliBuffering
			st.head = mcache.Malloc(len(head))
			copy(st.head, head)
			st.buf = reactor.NewBuffer()
			c.streams[rid] = st
			return nil
		}
	}
	if err != nil {
		return err
	}
	c.scratch = head[:0]
	if err := c.w.begin(id, head, cl); err != nil {
		return err
	}
	if cl > 0 {
		st.state = cliSending
		c.streams[rid] = st
		return nil
	}
	st.state = cliSent
	c.streams[rid] = st
	c.requestSent(rid, st)
	return nil
}

// hopByHop reports the HTTP fields that describe one HTTP connection or its framing; they are
// not carried into a Bolt header map.
func hopByHop(name string) bool {
	for _, hop := range [...]string{"content-length", "transfer-encoding", "connection", "keep-alive",
		"proxy-connection", "te", "upgrade", "trailer", "expect"} {
		if strings.EqualFold(name, hop) {
			return true
		}
	}
	return false
}

// appendForeignRequest encodes a Bolt request head part from protocol-neutral headers.
func appendForeignRequest(dst []byte, h protocol.Headers, id uint32, contentLen int) ([]byte, error) {
	start := len(dst)
	class, _ := h.Get(protocol.Path)
	dst = appendFixed(dst, TypeRequest, CmdRequest, CommandVersion, id, CodecHessian2)
	dst = append(dst, 0xFF, 0xFF, 0xFF, 0xFF) // timeout -1: none
	lens := len(dst)
	dst = appendEmptyLengths(dst)
	dst = append(dst, class...)
	hstart := len(dst)
	h.Range(func(name, value string) bool {
		if !isPseudo(name) && !hopByHop(name) {
			dst = AppendHeader(dst, name, value)
		}
		return true
	})
	hlen := len(dst) - hstart
	if len(class) > MaxWireClass || hlen > MaxWireHeader {
		return dst[:start], fmt.Errorf("%w: class name %d bytes, header map %d bytes", ErrTooLarge, len(class), hlen)
	}
	putLengths(dst[lens:], len(class), hlen, contentLen)
	return dst, nil
}

func putLengths(b []byte, class, header, content int) {
	binary.BigEndian.PutUint16(b, uint16(class))
	binary.BigEndian.PutUint16(b[2:], uint16(header))
	binary.BigEndian.PutUint32(b[4:], uint32(content))
}

// EncodeData implements protocol.Encoder. Content goes to the wire without a copy unless
// another request frame is being written on this connection (then it is queued) or the request
// came without a length (then it is buffered). A oneway stream completes once its last byte
// was accepted.
func (c *clientCodec) EncodeData(id protocol.StreamID, p [][]byte, end bool) error {
	rid := uint32(id)
	st, ok := c.streams[rid]
	if !ok || uint64(rid) != id {
		return fmt.Errorf("%w: request content for stream %d", ErrUnknownStream, id)
	}
	switch st.state {
	case cliBuffering:
		return c.buffer(rid, st, p, end)
	case cliSent:
		if vecLen(p) == 0 {
			return nil
		}
		return fmt.Errorf("%w: stream %d: content after the announced length", ErrContentLength, id)
	case cliIdle:
		return fmt.Errorf("%w: request content before its head on stream %d", ErrUnknownStream, id)
	}
	done, err := c.w.data(id, p, end)
	if err != nil {
		if errors.Is(err, protocol.ErrConnection) {
			c.broken = true
			c.c.Close(err)
		}
		return err
	}
	if done {
		st.state = cliSent
		c.streams[rid] = st
		c.requestSent(rid, st)
	}
	return nil
}

// buffer collects the content of a request of unknown length and sends the frame at its end.
func (c *clientCodec) buffer(rid uint32, st cliStream, p [][]byte, end bool) error {
	if st.buf.Len()+vecLen(p) > c.lim.MaxFrame-len(st.head) {
		return fmt.Errorf("%w: request body of stream %d past %d bytes", ErrTooLarge, rid, c.lim.MaxFrame)
	}
	for _, b := range p {
		st.buf.AppendCopy(b)
	}
	if !end {
		return nil
	}
	head, buf := st.head, st.buf
	st.head, st.buf, st.state = nil, nil, cliSending
	c.streams[rid] = st
	defer mcache.Free(head)
	defer buf.Release()
	n := buf.Len()
	binary.BigEndian.PutUint32(head[RequestHeadLen-4:], uint32(n))
	if err := c.w.begin(protocol.StreamID(rid), head, n); err != nil {
		return err
	}
	if n == 0 {
		st.state = cliSent
		c.streams[rid] = st
		c.requestSent(rid, st)
		return nil
	}
	return c.EncodeData(protocol.StreamID(rid), buf.Bytes(), true)
}

// EncodeTrailers implements protocol.Encoder: Bolt has no trailers, they end the content.
func (c *clientCodec) EncodeTrailers(id protocol.StreamID, _ protocol.Headers) error {
	return c.EncodeData(id, nil, true)
}

// requestSent runs once a request was wholly accepted: a oneway stream is then complete.
func (c *clientCodec) requestSent(rid uint32, st cliStream) {
	if !st.oneway {
		return
	}
	c.oneways = append(c.oneways, rid)
	if !c.pending {
		c.pending = c.c.Exec(c.onewayFn)
	}
}

// runOneways completes the oneway streams whose request was written, on the executor after
// the encoder call that finished them returned (so the stream manager is never re-entered
// from its own EncodeData): each gets a synthetic response head, ":status" 200, end.
func (c *clientCodec) runOneways() {
	c.pending = false
	for i := 0; i < len(c.oneways); i++ {
		rid := c.oneways[i]
		st, ok := c.streams[rid]
		if !ok || !st.oneway || st.state != cliSent {
			continue
		}
		delete(c.streams, rid)
		st.sink.OnHeaders(protocol.StreamID(rid), newSyntheticResponse(StatusSuccess), true)
	}
	clear(c.oneways)
	c.oneways = c.oneways[:0]
}

// Reset implements protocol.Encoder: the stream is forgotten, a late response for it will be
// skipped. A request frame still held or queued is dropped; one already partly written cannot
// be completed, so the connection is closed (every other stream on it is reset).
func (c *clientCodec) Reset(id protocol.StreamID, err error) {
	rid := uint32(id)
	st, ok := c.streams[rid]
	if !ok || uint64(rid) != id {
		return
	}
	delete(c.streams, rid)
	c.release(&st)
	if c.r.sink != nil && c.r.id == rid {
		c.r.sink = nil // skip the rest of its response content
	}
	if c.w.drop(id) {
		c.broken = true
		c.c.Close(fmt.Errorf("%w: bolt: request %d abandoned after it started: %w", protocol.ErrConnection, id, err))
	}
}

func (c *clientCodec) release(st *cliStream) {
	if st.head != nil {
		mcache.Free(st.head)
		st.head = nil
	}
	if st.buf != nil {
		st.buf.Release()
		st.buf = nil
	}
}

// Decode implements protocol.ClientCodec. Responses are matched to streams by request id and
// reported with OnHeaders as soon as their head part arrived, their content with OnData as it
// arrives. Responses for unknown ids (reset or timed-out streams) are skipped. A response with
// a malformed header map resets its stream (a StreamError with CODEC_EXCEPTION). Heartbeats
// from the server are answered; heartbeat acks and requests are skipped. Any other framing
// error is returned wrapping protocol.ErrConnection, and the connection is not reusable.
func (c *clientCodec) Decode(in reactor.View) error {
	if c.err != nil {
		in.Skip(in.Len())
		return c.err
	}
	for {
		more, err := c.r.content(in)
		if err != nil {
			c.err = err
			return err
		}
		if !more {
			return nil
		}
		p, n, contentLen, err := c.r.head(in)
		if err == ErrNeedMore {
			return nil
		}
		if IsFatal(err) {
			c.err = fatal(err)
			return c.err
		}
		f := &c.r.f
		rid, kind := f.RequestID, f.Kind()
		st, known := c.streams[rid]
		switch {
		case kind == KindHeartbeat:
			in.Skip(n)
			c.r.skip(contentLen)
			c.scratch = AppendHeartbeatAck(c.scratch[:0], rid)
			if werr := c.w.begin(0, c.scratch, 0); werr != nil {
				c.err = werr
				return werr
			}
		case kind != KindResponse || !known || st.state == cliIdle || st.oneway:
			in.Skip(n)
			c.r.skip(contentLen)
		case err != nil: // ErrBadHeader
			in.Skip(n)
			c.r.skip(contentLen)
			c.responseDone(rid)
			st.sink.OnReset(protocol.StreamID(rid), &protocol.StreamError{
				ID: protocol.StreamID(rid), Code: uint32(StatusCodecException), Err: err})
		default:
			h := newHeaders(p[:n], f, contentLen)
			in.Skip(n)
			if contentLen == 0 {
				c.responseDone(rid)
			} else {
				c.r.deliver(rid, contentLen, st.sink)
			}
			st.sink.OnHeaders(protocol.StreamID(rid), h, contentLen == 0)
		}
	}
}

// responseDone forgets a stream whose response is complete, just before its last callback.
// A request the server answered before it was wholly sent is abandoned: dropped if it has not
// reached the wire, otherwise the connection cannot carry on (its frame would stay
// incomplete) and is closed.
func (c *clientCodec) responseDone(rid uint32) {
	st, ok := c.streams[rid]
	if !ok {
		return
	}
	delete(c.streams, rid)
	if st.state == cliSent {
		return
	}
	c.release(&st)
	if c.w.drop(protocol.StreamID(rid)) {
		c.broken = true
		c.c.Close(fmt.Errorf("%w: bolt: response %d arrived before its request was sent", protocol.ErrConnection, rid))
	}
}

// Flush implements protocol.Flusher: it writes a held request head when no other frame is
// pending (see frameWriter.flush).
func (c *clientCodec) Flush() error { return c.w.flush() }
