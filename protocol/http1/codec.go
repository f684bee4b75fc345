package http1

import (
	"errors"
	"fmt"
	"sync"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// CodecName is the codec's name in a protocol.Registry and in configuration.
const CodecName = "http1"

// Errors of the codec (connection and stream state), besides the parse sentinels.
var (
	// ErrUnexpectedData: bytes from an upstream that has no request outstanding, or after
	// the response ended.
	ErrUnexpectedData = errors.New("http1: data from upstream without an outstanding request")
	// ErrUnsolicitedUpgrade: a 101 response to a request that did not ask to upgrade.
	ErrUnsolicitedUpgrade = errors.New("http1: 101 Switching Protocols without an upgrade request")
	// ErrTooManyInterim: more 1xx responses before the final one than maxInterim.
	ErrTooManyInterim = errors.New("http1: too many interim (1xx) responses")
	// ErrConnectBody: a CONNECT request announcing a body (its bytes would become tunnel data).
	ErrConnectBody = errors.New("http1: CONNECT request with a body")
	// ErrStreamState: an Encode call for a stream that is not the active one, or out of order
	// (data before headers, headers twice).
	ErrStreamState = errors.New("http1: encode out of order or for an unknown stream")
	// ErrStreamBusy: NewStream while the connection still carries a stream.
	ErrStreamBusy = errors.New("http1: connection busy with another stream")
	// ErrNotReusable: NewStream on a connection that cannot carry another exchange.
	ErrNotReusable = errors.New("http1: connection not reusable")
	// ErrBodyLength: more or fewer body bytes encoded than the Content-Length announced.
	ErrBodyLength = errors.New("http1: body length differs from Content-Length")
	// ErrDataBeforeUpgrade: request body bytes for an upgrade or CONNECT before the upstream
	// accepted it.
	ErrDataBeforeUpgrade = errors.New("http1: tunnel data before the upgrade was accepted")
	// ErrUnexpectedEOF: the peer closed in the middle of a message.
	ErrUnexpectedEOF = errors.New("http1: connection closed in the middle of a message")
	// ErrMissingPseudo: a head to encode without :status (responses) or :method (requests).
	ErrMissingPseudo = errors.New("http1: head without its pseudo-header")
)

// maxInterim bounds the 1xx responses swallowed before a final response (1xx storms).
const maxInterim = 32

// NewCodec returns the HTTP/1.1 entry of a protocol.Registry, bound to lim. Limits come from
// validated configuration (call lim.Validate first); invalid limits are replaced by the
// defaults so the codec stays usable.
func NewCodec(lim Limits) protocol.Codec {
	cfg := newCodecConfig(lim)
	return protocol.Codec{
		Name:   CodecName,
		Detect: Detect,
		NewServer: func(c reactor.Conn, sink protocol.Sink) protocol.ServerCodec {
			return newServerCodec(c, sink, cfg)
		},
		NewClient: func(c reactor.Conn) protocol.ClientCodec {
			return newClientCodec(c, cfg)
		},
	}
}

// codecConfig is what every connection of one NewCodec shares, built once: the limits and
// the scanner settings derived from them. It is immutable, so a connection keeps a pointer
// to it instead of a copy.
type codecConfig struct {
	lim      Limits
	window   int      // chunk framing window (chunkWindow)
	reqMode  scanMode // request heads
	respMode scanMode // response heads
	trailer  scanMode // trailer sections
}

// newCodecConfig validates lim (invalid limits become the defaults) and derives the rest.
func newCodecConfig(lim Limits) *codecConfig {
	if lim.Validate() != nil {
		lim = Limits{}
	}
	lim = lim.WithDefaults()
	return &codecConfig{
		lim:      lim,
		window:   chunkWindow(lim),
		reqMode:  requestMode(lim),
		respMode: responseMode(lim),
		trailer:  trailerMode(lim),
	}
}

// methods Detect recognises without looking further (RFC 9110, 5789, 4918).
var detectMethods = [...]string{
	"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "CONNECT ", "OPTIONS ", "TRACE ", "PATCH ",
	"PROPFIND ", "PROPPATCH ", "MKCOL ", "COPY ", "MOVE ", "LOCK ", "UNLOCK ", "REPORT ",
	"SEARCH ", "PURGE ",
}

// Detect decides whether a connection's first bytes are an HTTP/1.x request: a known
// method followed by a space (empty lines before the request line are allowed, as the
// parser skips them). The HTTP/2 connection preface ("PRI * HTTP/2.0") is No.
func Detect(prefix []byte) protocol.Match {
	for len(prefix) >= 2 && prefix[0] == '\r' && prefix[1] == '\n' {
		prefix = prefix[2:]
	}
	if len(prefix) == 0 || (len(prefix) == 1 && prefix[0] == '\r') {
		return protocol.NeedMore
	}
	more := false
	for _, m := range detectMethods {
		n := min(len(m), len(prefix))
		if string(prefix[:n]) != m[:n] {
			continue
		}
		if n == len(m) {
			return protocol.Yes
		}
		more = true
	}
	if more {
		return protocol.NeedMore
	}
	return protocol.No
}

// requestHeadPool and responseHeadPool lend parse targets to codecs for the duration of one
// Decode call, so an idle connection does not keep a 100-field Headers array.
var (
	requestHeadPool  = sync.Pool{New: func() any { return new(RequestHead) }}
	responseHeadPool = sync.Pool{New: func() any { return new(ResponseHead) }}
)

// putRequestHead returns a parse target to its pool without references into the read view
// it was parsed from.
func putRequestHead(h *RequestHead) {
	clear(h.Headers)
	h.Reset()
	requestHeadPool.Put(h)
}

func putResponseHead(h *ResponseHead) {
	clear(h.Headers)
	h.Reset()
	responseHeadPool.Put(h)
}

// emptyView is the View given with OnData(id, v, 0, true): it holds nothing, so a sink
// calling Peek(0) ("all bytes") gets nothing instead of the bytes of the next message.
type emptyView struct{}

func (emptyView) Len() int                   { return 0 }
func (emptyView) Peek(int) []byte            { return nil }
func (emptyView) Skip(int)                   {}
func (emptyView) Detach(int) *reactor.Buffer { return reactor.NewBuffer() }

// offer hands n bytes at the front of in to sink and makes sure exactly n were consumed.
func offer(sink protocol.Sink, id protocol.StreamID, in reactor.View, n int, end bool) {
	if n == 0 {
		if end {
			sink.OnData(id, emptyView{}, 0, true)
		}
		return
	}
	want := in.Len() - n
	sink.OnData(id, in, n, end)
	if extra := in.Len() - want; extra > 0 {
		in.Skip(extra)
	}
}

// chunkedReader is the reading side of a codec whose current body is chunked.
type chunkedReader interface {
	readingChunked() bool            // the chunked body is still being read
	chunkedDecoder() *ChunkedDecoder // the exchange's decoder
	chunkedDone()                    // the last chunk and trailers are consumed; runs before the sink hears of the end
}

// decodeChunked offers a chunked body's data to sink in place as it arrives (the framing is
// skipped, the data never copied), then its trailers or an empty final OnData. more says the
// decoder needs more input; window is how much framing it is shown at once.
func decodeChunked(r chunkedReader, sink protocol.Sink, id protocol.StreamID, window int, in reactor.View) (more bool, err error) {
	for r.readingChunked() && in.Len() > 0 {
		cd := r.chunkedDecoder()
		if left := cd.dataLeft(); left > 0 {
			k := int(min(int64(in.Len()), left))
			cd.skipData(k)
			offer(sink, id, in, k, false)
			continue
		}
		win := in.Peek(min(in.Len(), window))
		data, n, err := cd.Decode(win)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return true, nil
		}
		if cd.Done() {
			var t *blockHeaders
			if tr := cd.Trailers(); len(tr) > 0 {
				t = newTrailerHeaders(win, int(spanOf(win, 0, tr[0].Name).off), n, tr)
			}
			in.Skip(n)
			r.chunkedDone()
			if t != nil {
				sink.OnTrailers(id, t)
			} else {
				sink.OnData(id, emptyView{}, 0, true)
			}
			return false, nil
		}
		in.Skip(n - len(data))
		offer(sink, id, in, len(data), false)
	}
	return false, nil
}

func connError(err error) error {
	return fmt.Errorf("%w: %w", protocol.ErrConnection, err)
}

// chunkWindow is how many bytes the codecs show the chunked decoder at once outside chunk
// data: enough for a size line with extensions followed by a whole trailer section.
func chunkWindow(l Limits) int {
	return l.MaxChunkExtension + l.MaxTrailerBytes + 64
}

// exchange is a codec's state for one exchange in progress: the head scanner's progress,
// the chunked decoder, body counters and the write side's scratch buffer and vector. A
// connection takes one from exchangePool when an exchange starts (the first byte of a
// request head on the server, NewStream on the client) and gives it back as soon as the
// connection is idle again, so an idle keep-alive connection holds only its small codec
// struct. A connection that fails keeps its exchange until it is collected with the
// connection (nothing returns it to the pool; that is only a pool miss).
type exchange struct {
	enc         headEncoder // the scratch buffer (held head, chunk framing) and the encode passes
	vec         [][]byte    // the writev vector
	scan        scanner     // progress through a head that arrives in pieces
	chunked     ChunkedDecoder
	remaining   int64 // body bytes still expected from the peer
	wremaining  int64 // body bytes still allowed in our direction (Content-Length)
	interim     int   // client: 1xx responses swallowed for the current request
	lingerUntil int64 // server: when a lingering close stops dropping bytes (UnixNano), 0 if none
	err         error // server: the connection error, once failed
}

// maxPooledScratch bounds the scratch buffer an exchange keeps when it returns to the pool:
// a rare huge head does not stay pinned in every pooled exchange.
const maxPooledScratch = 16 << 10

var exchangePool = sync.Pool{New: func() any {
	x := new(exchange)
	x.enc.init() // binds the encoder's Range callbacks once per pooled exchange
	return x
}}

// reset clears x for the pool (or for the next exchange of the same connection), dropping
// every reference into heads and views.
func (x *exchange) reset() {
	x.enc.clearRefs()
	if cap(x.enc.dst) > maxPooledScratch {
		x.enc.dst = nil
	}
	x.enc.dst = x.enc.dst[:0]
	clear(x.vec[:cap(x.vec)])
	x.vec = x.vec[:0]
	x.scan.reset()
	clear(x.chunked.trailers[:cap(x.chunked.trailers)])
	x.chunked = ChunkedDecoder{trailers: x.chunked.trailers[:0]}
	x.remaining, x.wremaining, x.interim, x.lingerUntil, x.err = 0, 0, 0, 0, nil
}

// writer is the write half shared by both codecs: the connection, the exchange in progress
// (whose scratch buffer holds heads and chunk framing, and whose vector feeds writev), and
// head holding for write coalescing.
//
// A head followed by a body is held in the scratch buffer and leaves with the first body
// bytes in one writev (head, chunk-size line, the body slices themselves, CRLF): the body is
// never copied. Whoever drives the codec calls Flush after each read of the peer
// (protocol.Flusher), so a held head waits at most one read. Until Flush was seen once on a
// connection, a held head is also flushed by a function queued with Conn.Exec, which runs
// after the current callback: correct, at the price of one Exec (and one small allocation)
// per held head.
type writer struct {
	conn        reactor.Conn
	x           *exchange // nil while the connection is idle
	held        bool      // x.enc.dst starts with a head not yet written
	flushSeen   bool      // Flush is being called: no Exec fallback needed
	flushQueued bool
	decoding    bool // inside Decode: the exchange is given back when Decode returns
}

// ex returns the exchange in progress, taking one from the pool if there is none.
func (w *writer) ex() *exchange {
	if w.x == nil {
		w.x = exchangePool.Get().(*exchange)
	}
	return w.x
}

// release gives the exchange back to the pool. The caller checked that nothing in it is
// still needed.
func (w *writer) release() {
	x := w.x
	w.x = nil
	w.held = false
	x.reset()
	exchangePool.Put(x)
}

// hold keeps the head just encoded in the scratch buffer.
func (w *writer) hold() {
	w.held = true
	if !w.flushSeen && !w.flushQueued && w.conn.Exec(w.flushQueued0) {
		w.flushQueued = true
	}
}

func (w *writer) flushQueued0() {
	w.flushQueued = false
	if w.held {
		_ = w.writeScratch()
	}
}

// Flush implements protocol.Flusher: it writes a head held for coalescing.
func (w *writer) Flush() error {
	w.flushSeen = true
	if !w.held {
		return nil
	}
	return w.writeScratch()
}

// writeScratch writes the scratch buffer (a held head, framing) on its own.
func (w *writer) writeScratch() error {
	w.held = false
	x := w.x
	if x == nil || len(x.enc.dst) == 0 {
		return nil
	}
	err := w.conn.Write(x.enc.dst)
	x.enc.dst = x.enc.dst[:0]
	return err
}

// dropScratch forgets a held head and pending framing.
func (w *writer) dropScratch() {
	w.held = false
	if w.x != nil {
		w.x.enc.dst = w.x.enc.dst[:0]
	}
}

// writeBody writes the scratch buffer (held head, chunk-size line), the n bytes of p and
// tail with one writev, p by reference.
func (w *writer) writeBody(p [][]byte, n int, tail string) error {
	x := w.ex()
	k := len(x.enc.dst)
	x.enc.dst = append(x.enc.dst, tail...)
	v := x.vec[:0]
	if k > 0 {
		v = append(v, x.enc.dst[:k])
	}
	if n > 0 {
		for _, b := range p {
			if len(b) > 0 {
				v = append(v, b)
			}
		}
	}
	if len(tail) > 0 {
		v = append(v, x.enc.dst[k:])
	}
	w.held = false
	var err error
	switch len(v) {
	case 0:
	case 1:
		err = w.conn.Write(v[0])
	default:
		err = w.conn.Writev(v)
	}
	clear(v)
	x.vec = v[:0]
	x.enc.dst = x.enc.dst[:0]
	return err
}

// chunkFrame prepares the framing of n chunked body bytes in the scratch buffer and returns
// the tail that follows the data.
func (w *writer) chunkFrame(n int, end bool) string {
	e := &w.ex().enc
	switch {
	case n > 0 && end:
		e.dst = AppendChunkHeader(e.dst, n)
		return tailCRLFLastChunk
	case n > 0:
		e.dst = AppendChunkHeader(e.dst, n)
		return tailCRLF
	case end:
		e.dst = append(e.dst, tailLastChunk...)
	}
	return ""
}

// lastChunkWithTrailers appends the last chunk and the trailers t (hop-by-hop and framing
// fields dropped; an invalid section is dropped whole) to the scratch buffer.
func (w *writer) lastChunkWithTrailers(t protocol.Headers) {
	e := &w.ex().enc
	mark := len(e.dst)
	e.dst = append(e.dst, '0', '\r', '\n')
	e.begin(t)
	e.request, e.keepUpgrade, e.dropLength, e.forbidden = false, false, true, true
	if e.fields(t) != nil {
		e.dst = append(e.dst[:mark], '0', '\r', '\n')
	}
	e.dst = append(e.dst, tailCRLF...)
}

func totalLen(p [][]byte) int {
	n := 0
	for _, b := range p {
		n += len(b)
	}
	return n
}

const (
	tailCRLF          = "\r\n"
	tailLastChunk     = "0\r\n\r\n"
	tailCRLFLastChunk = "\r\n0\r\n\r\n"
)
