package http2

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
)

func TestServerSettingsExchange(t *testing.T) {
	conn := &fakeConn{}
	s := NewCodec(Config{}).NewServer(conn, newRecSink()).(*serverCodec)
	p := newPeer(t)
	got := p.read(conn.out.Bytes())
	want := []string{
		"SETTINGS INITIAL_WINDOW_SIZE=65536,MAX_CONCURRENT_STREAMS=100,MAX_FRAME_SIZE=16384,MAX_HEADER_LIST_SIZE=61440",
		"WINDOW_UPDATE 0 983041",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("server preface\n got %q\nwant %q", got, want)
	}
	conn.out.Reset()
	// The preface arrives in pieces; nothing is decoded before it is whole.
	in := append([]byte(preface), 0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 10)
	pp := &pipe{t: t, conn: conn, codec: s}
	for i := range in {
		if err := pp.feed(in[i : i+1]); err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
	if got := p.read(conn.out.Bytes()); len(got) != 1 || got[0] != "SETTINGS ack" {
		t.Fatalf("ack: %q", got)
	}
	if s.peerMaxStreams != 10 {
		t.Fatalf("peer MAX_CONCURRENT_STREAMS = %d", s.peerMaxStreams)
	}
}

func TestServerBadPreface(t *testing.T) {
	for _, in := range []string{"GET / HTTP/1.1\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"} {
		conn := &fakeConn{}
		s := NewCodec(Config{}).NewServer(conn, newRecSink())
		conn.out.Reset()
		err := s.Decode(&fakeView{buf: []byte(in)})
		if !errors.Is(err, ErrPreface) || connCode(t, err) != http2.ErrCodeProtocol {
			t.Fatalf("%q: %v", in, err)
		}
		if conn.out.Len() != 0 {
			t.Fatalf("%q: wrote %q after a bad preface", in, conn.out.Bytes())
		}
	}
	// The first frame must be SETTINGS.
	conn := &fakeConn{}
	s := NewCodec(Config{}).NewServer(conn, newRecSink())
	p := newPeer(t)
	p.wbuf.WriteString(preface)
	_ = p.fr.WritePing(false, [8]byte{})
	err := s.Decode(&fakeView{buf: p.take()})
	if !errors.Is(err, ErrPreface) {
		t.Fatalf("PING first: %v", err)
	}
}

func TestServerGet(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	rec.onHeaders = func(id protocol.StreamID, hd protocol.Headers, end bool) {
		respond(t, h.s, id, "200", "hello", "content-type", "text/plain", "X-Custom", "v")
	}
	h.p.headers(1, true, append(get("/a?b=c"), "user-agent", "test", "accept", "*/*")...)
	h.mustFeed()
	if want := "H1 :method=GET :scheme=http :authority=example.com :path=/a?b=c user-agent=test accept=*/* end=true"; rec.events[0] != want {
		t.Fatalf("event %q\nwant %q", rec.events[0], want)
	}
	hd := rec.heads[1]
	if v, _ := hd.Get("Host"); v != "example.com" {
		t.Fatalf("Get(Host) = %q", v)
	}
	if v, _ := hd.Get("User-Agent"); v != "test" {
		t.Fatalf("Get(User-Agent) = %q", v)
	}
	got := h.frames()
	want := []string{"HEADERS 1 :status=200 content-length=5 content-type=text/plain x-custom=v", "DATA 1 5 end"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames\n got %q\nwant %q", got, want)
	}
	if h.p.bodies[1].String() != "hello" {
		t.Fatalf("body %q", h.p.bodies[1])
	}
	if len(h.s.streams) != 0 {
		t.Fatalf("stream not forgotten: %d left", len(h.s.streams))
	}
	if h.conn.writes != 3 { // preface, SETTINGS ack, and the whole response in one writev
		t.Fatalf("%d writes", h.conn.writes)
	}
	rec.release()
}

// TestServerBodySplits sends a request with a body as one byte stream split at every
// point, and in reads of every size, and checks the body arrives whole, in place.
func TestServerBodySplits(t *testing.T) {
	p := newPeer(t)
	p.headers(1, false, post("/up", "content-length", "40")...)
	p.data(1, false, []byte("0123456789"))
	_ = p.fr.WriteDataPadded(1, false, []byte("abcdefghij"), make([]byte, 7))
	p.data(1, false, nil)
	p.data(1, true, []byte("ABCDEFGHIJKLMNOPQRST"))
	p.headers(3, true, get("/next")...)
	stream := p.take()
	check := func(name string, feed func(h *serverHarness) error) {
		rec := newRecSink()
		h := newServerHarness(t, Config{}, rec)
		h.p = p // render with the same HPACK context
		if err := feed(h); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := rec.body(1); got != "0123456789abcdefghijABCDEFGHIJKLMNOPQRST" {
			t.Fatalf("%s: body %q", name, got)
		}
		if !rec.ended[1] || rec.headCount() != 2 {
			t.Fatalf("%s: events %q", name, rec.events)
		}
		rec.release()
	}
	for i := 0; i <= len(stream); i++ {
		check(fmt.Sprintf("split at %d", i), func(h *serverHarness) error {
			if err := h.pipe.feed(stream[:i]); err != nil {
				return err
			}
			return h.pipe.feed(stream[i:])
		})
	}
	for size := 1; size <= 17; size++ {
		for _, cp := range []bool{false, true} {
			check(fmt.Sprintf("reads of %d copy=%v", size, cp), func(h *serverHarness) error {
				h.pipe.copyPeek = cp
				for i := 0; i < len(stream); i += size {
					if err := h.pipe.feed(stream[i:min(i+size, len(stream))]); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
}

// TestServerLargeBody streams 1 MiB in 16 KiB frames; the codec returns the stream and
// connection windows as the sink consumes, so the peer never runs out.
func TestServerLargeBody(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	h.p.headers(1, false, post("/big")...)
	h.mustFeed()
	streamWin, connWin := 65536, 1<<20
	for off := 0; off < len(body); {
		n := min(16384, len(body)-off, streamWin, connWin)
		if n == 0 {
			t.Fatalf("peer out of window at %d (stream %d conn %d)", off, streamWin, connWin)
		}
		h.p.data(1, off+n == len(body), body[off:off+n])
		off += n
		streamWin -= n
		connWin -= n
		h.mustFeed()
		for _, f := range h.frames() {
			var id, inc int
			if _, err := fmt.Sscanf(f, "WINDOW_UPDATE %d %d", &id, &inc); err == nil {
				if id == 0 {
					connWin += inc
				} else {
					streamWin += inc
				}
			}
		}
	}
	if !bytes.Equal(rec.bodies[1].Bytes(), body) || !rec.ended[1] {
		t.Fatalf("body: %d bytes, ended %v", rec.bodies[1].Len(), rec.ended[1])
	}
	rec.release()
}

func TestServerTrailers(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	rec.onEnd = func(id protocol.StreamID) {
		if err := h.s.EncodeHeaders(id, protocol.NewHeaderList(":status", "200", "content-type", "application/grpc"), false); err != nil {
			t.Fatal(err)
		}
		if err := h.s.EncodeData(id, [][]byte{[]byte("\x00\x00\x00\x00\x02hi")}, false); err != nil {
			t.Fatal(err)
		}
		if err := h.s.EncodeTrailers(id, protocol.NewHeaderList("grpc-status", "0", "Grpc-Message", "ok")); err != nil {
			t.Fatal(err)
		}
	}
	h.p.headers(1, false, post("/svc/M", "content-type", "application/grpc", "te", "trailers")...)
	h.p.data(1, false, []byte("\x00\x00\x00\x00\x01x"))
	h.p.headers(1, true, "grpc-timeout", "1S")
	h.mustFeed()
	if rec.trailers[1] != "grpc-timeout=1S" || rec.body(1) != "\x00\x00\x00\x00\x01x" {
		t.Fatalf("events %q body %q", rec.events, rec.body(1))
	}
	got := h.frames()
	want := []string{
		"HEADERS 1 :status=200 content-type=application/grpc",
		"DATA 1 7",
		"HEADERS 1 end grpc-status=0 grpc-message=ok",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames\n got %q\nwant %q", got, want)
	}
	rec.release()
}

func TestServerTrailersWithoutEndStream(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, false, post("/")...)
	h.p.headers(1, false, "x-trailer", "1")
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[RST_STREAM 1 PROTOCOL_ERROR]" {
		t.Fatalf("frames %q", got)
	}
	var se *protocol.StreamError
	if !errors.As(rec.resets[1], &se) || http2.ErrCode(se.Code) != http2.ErrCodeProtocol || !errors.Is(se, ErrMalformed) {
		t.Fatalf("reset %v", rec.resets[1])
	}
}

func TestServerResetBothWays(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, false, post("/")...)
	h.p.headers(3, false, post("/")...)
	h.mustFeed()
	// The client cancels stream 1: the sink hears it with the code.
	_ = h.p.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	h.p.data(1, false, []byte("late")) // in flight before the client's reset: STREAM_CLOSED
	h.mustFeed()
	var se *protocol.StreamError
	if !errors.As(rec.resets[1], &se) || http2.ErrCode(se.Code) != http2.ErrCodeCancel || !errors.Is(se, ErrPeerReset) {
		t.Fatalf("reset %v", rec.resets[1])
	}
	if got := h.frames(); fmt.Sprint(got) != "[RST_STREAM 1 STREAM_CLOSED]" {
		t.Fatalf("frames after DATA on a stream the client reset: %q", got)
	}
	// The sink resets stream 3 propagating an upstream CANCEL: the code is kept; frames the
	// client sent before seeing it are ignored.
	h.s.Reset(3, fmt.Errorf("upstream: %w", streamErr(9, http2.ErrCodeCancel, ErrPeerReset)))
	if got := h.frames(); fmt.Sprint(got) != "[RST_STREAM 3 CANCEL]" {
		t.Fatalf("frames %q", got)
	}
	h.p.data(3, false, []byte("in flight"))
	h.mustFeed()
	if got := h.frames(); len(got) != 0 {
		t.Fatalf("frames after DATA on a stream we reset: %q", got)
	}
	if _, ok := rec.resets[3]; ok {
		t.Fatal("the sink was told of its own reset")
	}
	// Refused streams say so.
	h.p.headers(5, true, get("/")...)
	h.mustFeed()
	h.s.Reset(5, protocol.ErrRefusedStream)
	if got := h.frames(); fmt.Sprint(got) != "[RST_STREAM 5 REFUSED_STREAM]" {
		t.Fatalf("frames %q", got)
	}
	rec.release()
}

func TestServerDrain(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, true, get("/")...)
	h.p.headers(3, true, get("/")...)
	h.mustFeed()
	h.s.Drain()
	if got := h.frames(); fmt.Sprint(got) != "[GOAWAY 3 NO_ERROR]" {
		t.Fatalf("frames %q", got)
	}
	// A stream opened after the GOAWAY is not processed; its frames are dropped quietly.
	h.p.headers(5, false, post("/")...)
	h.p.data(5, false, []byte("body"))
	h.p.headers(5, true, "x-trailer", "1")
	h.mustFeed()
	if rec.headCount() != 2 {
		t.Fatalf("events %q", rec.events)
	}
	if got := h.frames(); len(got) != 0 {
		t.Fatalf("frames for a stream past the GOAWAY: %q", got)
	}
	respond(t, h.s, 1, "200", "a")
	if h.conn.closed {
		t.Fatal("closed with an active stream")
	}
	respond(t, h.s, 3, "200", "b")
	if !h.conn.writeClosed || h.conn.closed {
		t.Fatal("not half-closed (FIN, reading on) once the drained streams finished")
	}
	if got := h.frames(); len(got) != 4 || !has(got, "DATA 3 1 end") {
		t.Fatalf("frames %q", got)
	}
	rec.release()
	// An idle connection half-closes at once; what the client still sends is dropped.
	h2 := newServerHarness(t, Config{}, newRecSink())
	h2.s.Drain()
	if !h2.conn.writeClosed || fmt.Sprint(h2.frames()) != "[GOAWAY 0 NO_ERROR]" {
		t.Fatal("idle drain")
	}
	_ = h2.p.fr.WritePing(false, [8]byte{1})
	h2.mustFeed()
	if got := h2.frames(); len(got) != 0 {
		t.Fatalf("answered %q after the FIN", got)
	}
}

// TestServerContinuation receives a header block in HEADERS + CONTINUATION frames split at
// every point, and sends one larger than the peer's frame size.
func TestServerContinuation(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	big := strings.Repeat("v", 20000)
	block := h.p.block(append(get("/c"), "x-big", big, "x-small", "s")...)
	_ = h.p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:5], EndStream: true})
	_ = h.p.fr.WriteContinuation(1, false, block[5:9000])
	_ = h.p.fr.WriteContinuation(1, false, block[9000:9000])
	_ = h.p.fr.WriteContinuation(1, true, block[9000:])
	stream := h.p.take()
	for i := 0; i < len(stream); i += 997 {
		if err := h.pipe.feed(stream[i:min(i+997, len(stream))]); err != nil {
			t.Fatal(err)
		}
	}
	if rec.headCount() != 1 {
		t.Fatalf("events %d", len(rec.events))
	}
	if v, _ := rec.heads[1].Get("x-big"); v != big {
		t.Fatalf("x-big: %d bytes", len(v))
	}
	resp := protocol.NewHeaderList(":status", "200", "x-big", big+big)
	if err := h.s.EncodeHeaders(1, resp, true); err != nil {
		t.Fatal(err)
	}
	got := h.frames()
	if len(got) != 1 || !strings.HasPrefix(got[0], "HEADERS 1 end :status=200 x-big=vvv") {
		t.Fatalf("frames %d %.60q", len(got), got)
	}
	// Three frames on the wire: HEADERS and two CONTINUATION (40 KB in 16 KiB frames).
	if n := len(h.p.heads[1][1].Value); n != 40000 {
		t.Fatalf("x-big came back with %d bytes", n)
	}
	rec.release()
}

// TestServerMalformedRequests: every malformed request is refused with
// RST_STREAM(PROTOCOL_ERROR), never reaches the sink, and the connection carries on.
func TestServerMalformedRequests(t *testing.T) {
	cases := []struct {
		name   string
		fields []string
	}{
		{"uppercase name", append(get("/"), "X-Upper", "1")},
		{"connection", append(get("/"), "connection", "keep-alive")},
		{"keep-alive", append(get("/"), "keep-alive", "1")},
		{"proxy-connection", append(get("/"), "proxy-connection", "x")},
		{"transfer-encoding", append(get("/"), "transfer-encoding", "chunked")},
		{"upgrade", append(get("/"), "upgrade", "websocket")},
		{"te gzip", append(get("/"), "te", "gzip")},
		{"unknown pseudo", append(get("/"), ":foo", "bar")},
		{"response pseudo", append(get("/"), ":status", "200")},
		{"pseudo after regular", []string{":method", "GET", ":scheme", "http", "accept", "*/*", ":path", "/"}},
		{"missing method", []string{":scheme", "http", ":path", "/"}},
		{"missing scheme", []string{":method", "GET", ":path", "/"}},
		{"missing path", []string{":method", "GET", ":scheme", "http"}},
		{"empty path", []string{":method", "GET", ":scheme", "http", ":path", ""}},
		{"duplicate method", []string{":method", "GET", ":method", "GET", ":scheme", "http", ":path", "/"}},
		{"duplicate path", []string{":method", "GET", ":scheme", "http", ":path", "/", ":path", "/"}},
		{"CONNECT with path", []string{":method", "CONNECT", ":authority", "a:443", ":path", "/"}},
		{"CONNECT without authority", []string{":method", "CONNECT"}},
		{"host differs", append(get("/"), "host", "evil.com")},
		{"two hosts", []string{":method", "GET", ":scheme", "http", ":path", "/", "host", "a", "host", "b"}},
		{"CR in value", append(get("/"), "x", "a\r\nb: c")},
		{"NUL in value", append(get("/"), "x", "a\x00b")},
		{"leading space", append(get("/"), "x", " a")},
		{"space in name", append(get("/"), "x y", "a")},
		{"bad content-length", append(get("/"), "content-length", "1x")},
		{"conflicting content-length", append(get("/"), "content-length", "1", "content-length", "2")},
		{"content-length without body", append(get("/"), "content-length", "3")},
	}
	for _, tc := range cases {
		rec := newRecSink()
		h := newServerHarness(t, Config{}, rec)
		h.p.headers(1, true, tc.fields...)
		h.p.headers(3, true, get("/ok")...)
		h.mustFeed()
		got := h.frames()
		if len(got) == 0 || got[0] != "RST_STREAM 1 PROTOCOL_ERROR" {
			t.Errorf("%s: frames %q", tc.name, got)
		}
		if rec.headCount() != 1 || !strings.Contains(rec.events[0], ":path=/ok") {
			t.Errorf("%s: events %q", tc.name, rec.events)
		}
		rec.release()
	}
}

func TestServerHostAndCookies(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, true, ":method", "GET", ":scheme", "https", ":path", "/", "host", "h.example:8443",
		"cookie", "a=1", "cookie", "b=2", "x", "y", "cookie", "c=3")
	h.mustFeed()
	want := "H1 :method=GET :scheme=https :path=/ :authority=h.example:8443 cookie=a=1; b=2; c=3 x=y end=true"
	if rec.events[0] != want {
		t.Fatalf("event %q\nwant %q", rec.events[0], want)
	}
	hd := rec.heads[1]
	hd.Set("Host", "other")
	if v, _ := hd.Get(protocol.Authority); v != "other" {
		t.Fatalf(":authority after Set(Host): %q", v)
	}
	rec.release()
}

func TestServerConcurrencyLimit(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{MaxConcurrentStreams: 3}, rec)
	for id := uint32(1); id <= 9; id += 2 {
		h.p.headers(id, false, post("/")...)
	}
	h.mustFeed()
	got := h.frames()
	if fmt.Sprint(got) != "[RST_STREAM 7 REFUSED_STREAM RST_STREAM 9 REFUSED_STREAM]" || rec.headCount() != 3 {
		t.Fatalf("frames %q events %d", got, rec.headCount())
	}
	// A finished stream makes room.
	h.p.data(1, true, nil)
	h.mustFeed()
	respond(t, h.s, 1, "204", "")
	h.p.headers(11, true, get("/")...)
	h.mustFeed()
	if rec.headCount() != 4 {
		t.Fatalf("events %q", rec.events)
	}
	rec.release()
}

func TestServerHeaderListTooLarge(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{MaxHeaderListSize: 1024}, rec)
	h.p.headers(1, false, append(get("/"), "x-big", strings.Repeat("a", 1000))...)
	h.p.data(1, true, []byte("body in flight"))
	h.p.headers(3, true, get("/small")...)
	h.mustFeed()
	got := h.frames()
	want := []string{"HEADERS 1 end :status=431 content-length=0", "RST_STREAM 1 NO_ERROR"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames\n got %q\nwant %q", got, want)
	}
	if rec.headCount() != 1 || !strings.Contains(rec.events[0], ":path=/small") {
		t.Fatalf("events %q", rec.events)
	}
	rec.release()
}

func TestServerHeadResponseHasNoBody(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, true, ":method", "HEAD", ":scheme", "http", ":path", "/")
	h.mustFeed()
	if err := h.s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200", "content-length", "5"), false); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EncodeData(1, [][]byte{[]byte("hello")}, true); err != nil {
		t.Fatal(err)
	}
	if got := h.frames(); fmt.Sprint(got) != "[HEADERS 1 :status=200 content-length=5 DATA 1 0 end]" {
		t.Fatalf("frames %q", got)
	}
	rec.release()
}

// TestServerTranslatesHeads: a head from another protocol (HTTP/1.1 names, hop-by-hop
// fields) is encoded the HTTP/2 way, and one HTTP/2 cannot carry becomes a 502.
func TestServerTranslatesHeads(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, true, get("/")...)
	h.p.headers(3, true, get("/")...)
	h.mustFeed()
	resp := protocol.NewHeaderList(":status", "200", "Content-Type", "text/html", "Connection", "keep-alive, X-Hop",
		"Keep-Alive", "timeout=5", "Transfer-Encoding", "chunked", "X-Hop", "1", "TE", "trailers, deflate",
		"Upgrade", "h2c", "Set-Cookie", "a=1", "Set-Cookie", "b=2")
	if err := h.s.EncodeHeaders(1, resp, true); err != nil {
		t.Fatal(err)
	}
	if got := h.frames(); fmt.Sprint(got) != "[HEADERS 1 end :status=200 content-type=text/html set-cookie=a=1 set-cookie=b=2]" {
		t.Fatalf("frames %q", got)
	}
	bad := protocol.NewHeaderList(":status", "200", "x-injected", "a\r\nset-cookie: evil")
	if err := h.s.EncodeHeaders(3, bad, true); !errors.Is(err, ErrInvalidHeader) {
		t.Fatalf("EncodeHeaders: %v", err)
	}
	if got := h.frames(); fmt.Sprint(got) != "[HEADERS 3 end :status=502 content-length=0]" {
		t.Fatalf("frames %q", got)
	}
	rec.release()
}

// TestServerCoalescing: a head waits for the first body bytes and leaves with them; the
// Exec fallback flushes a held head when the driver never calls Flush.
func TestServerCoalescing(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, true, get("/")...)
	h.mustFeed()
	w := h.conn.writes
	if err := h.s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200"), false); err != nil {
		t.Fatal(err)
	}
	if h.conn.writes != w || len(h.conn.execs) != 1 {
		t.Fatalf("head written at once (writes %d->%d, execs %d)", w, h.conn.writes, len(h.conn.execs))
	}
	if err := h.s.EncodeData(1, [][]byte{[]byte("ab"), []byte("cd")}, false); err != nil {
		t.Fatal(err)
	}
	if h.conn.writes != w+1 {
		t.Fatalf("head and body in %d writes", h.conn.writes-w)
	}
	h.conn.runExec() // nothing left to flush
	if h.conn.writes != w+1 {
		t.Fatal("the Exec fallback wrote again")
	}
	if got := h.frames(); fmt.Sprint(got) != "[HEADERS 1 :status=200 DATA 1 4]" {
		t.Fatalf("frames %q", got)
	}
	// Once the driver calls Flush, no Exec fallback.
	h.p.headers(3, true, get("/")...)
	h.mustFeed()
	_ = h.s.Flush()
	_ = h.s.EncodeHeaders(3, protocol.NewHeaderList(":status", "200"), false)
	if len(h.conn.execs) != 0 {
		t.Fatal("Exec fallback after Flush was seen")
	}
	_ = h.s.Flush()
	if got := h.frames(); fmt.Sprint(got) != "[HEADERS 3 :status=200]" {
		t.Fatalf("frames %q", got)
	}
	rec.release()
}

func TestServerPingAndUnknownFrames(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	_ = h.p.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	_ = h.p.fr.WriteRawFrame(0x42, 0xff, 0, []byte("ext"))
	_ = h.p.fr.WritePing(true, [8]byte{})
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[PING ack 0102030405060708]" {
		t.Fatalf("frames %q", got)
	}
}

func TestServerClientGoAwayClosesWhenIdle(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, true, get("/")...)
	_ = h.p.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	h.mustFeed()
	if h.conn.closed {
		t.Fatal("closed with an active stream")
	}
	respond(t, h.s, 1, "200", "x")
	if !h.conn.writeClosed || h.conn.closed {
		t.Fatal("not half-closed after the client's GOAWAY and its last stream")
	}
	rec.release()
}

func TestServerEOFResetsStreams(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, false, post("/")...)
	h.mustFeed()
	h.s.OnEOF()
	if !errors.Is(rec.resets[1], ErrPeerClosed) {
		t.Fatalf("reset %v", rec.resets[1])
	}
	if err := h.s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200"), true); err == nil {
		t.Fatal("encode after EOF")
	}
	rec.release()
}
