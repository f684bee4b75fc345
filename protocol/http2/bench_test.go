package http2

import (
	"bytes"
	"runtime"
	"testing"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// benchSink answers every request when it is complete, as a stream manager would.
type benchSink struct {
	s    protocol.Encoder
	resp protocol.Headers
	body [][]byte
	head protocol.Headers
	n    int
}

func (b *benchSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	b.head = h
	if end {
		b.answer(id)
	}
}

func (b *benchSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	b.n += n
	in.Skip(n)
	if end {
		b.answer(id)
	}
}

func (b *benchSink) OnTrailers(id protocol.StreamID, t protocol.Headers) { t.Release(); b.answer(id) }
func (b *benchSink) OnReset(protocol.StreamID, error)                    {}

func (b *benchSink) answer(id protocol.StreamID) {
	if b.s == nil {
		return
	}
	if b.body == nil {
		_ = b.s.EncodeHeaders(id, b.resp, true)
	} else {
		_ = b.s.EncodeHeaders(id, b.resp, false)
		_ = b.s.EncodeData(id, b.body, true)
	}
	b.head.Release()
}

// replayable encodes frames with an HPACK encoder whose dynamic table is off, so the same
// bytes can be decoded again and again (only the stream id changes): the most expensive
// case for the decoder, which gets literal strings instead of table references.
func replayablePeer(t testing.TB) *peer {
	p := newPeer(t)
	p.enc.SetMaxDynamicTableSize(0)
	p.block() // emit the table size update once
	return p
}

// setStreamID rewrites the stream id of every frame in b.
func setStreamID(b []byte, id uint32) {
	for off := 0; off+9 <= len(b); {
		n := int(b[off])<<16 | int(b[off+1])<<8 | int(b[off+2])
		if b[off+5]|b[off+6]|b[off+7]|b[off+8] != 0 {
			b[off+5], b[off+6], b[off+7], b[off+8] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
		}
		off += 9 + n
	}
}

func newBenchServer(b *testing.B, sink *benchSink) (*serverCodec, *fakeConn, *peer) {
	conn := &fakeConn{}
	s := NewCodec(Config{}).NewServer(conn, sink).(*serverCodec)
	sink.s = s
	p := replayablePeer(b)
	p.wbuf.WriteString(preface)
	_ = p.fr.WriteSettings()
	_ = p.fr.WriteSettingsAck()
	_ = p.fr.WriteWindowUpdate(0, maxWindow-initialWindow) // room for b.N response bodies
	p.headers(1, true, get("/")...)                        // carries the table size update
	if err := s.Decode(&fakeView{buf: p.take()}); err != nil {
		b.Fatal(err)
	}
	_ = s.Flush()
	conn.out.Reset()
	return s, conn, p
}

// BenchmarkServerGet: decode a GET (HEADERS with 7 fields), answer 200 with a 12-byte body
// (HEADERS and DATA in one writev), release the head.
func BenchmarkServerGet(b *testing.B) {
	sink := &benchSink{
		resp: protocol.NewHeaderList(protocol.Status, "200", "content-type", "text/plain", "content-length", "12"),
		body: [][]byte{[]byte("hello world\n")},
	}
	s, conn, p := newBenchServer(b, sink)
	p.headers(1, true, append(get("/index.html"), "user-agent", "bench/1.0", "accept", "*/*", "accept-encoding", "gzip")...)
	req := p.take()
	v := &fakeView{buf: req}
	id := uint32(3)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		setStreamID(req, id)
		id += 2
		v.off = 0
		if err := s.Decode(v); err != nil {
			b.Fatal(err)
		}
		conn.out.Reset()
	}
}

// BenchmarkServerUpload: decode a POST with a 64 KiB body in four DATA frames offered in
// place, answer 204.
func BenchmarkServerUpload(b *testing.B) {
	sink := &benchSink{resp: protocol.NewHeaderList(protocol.Status, "204")}
	s, conn, p := newBenchServer(b, sink)
	chunk := bytes.Repeat([]byte("u"), 16384)
	p.headers(1, false, post("/upload", "content-type", "application/octet-stream")...)
	for i := 0; i < 4; i++ {
		p.data(1, i == 3, chunk)
	}
	req := p.take()
	v := &fakeView{buf: req}
	id := uint32(3)
	b.SetBytes(4 * 16384)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		setStreamID(req, id)
		id += 2
		v.off = 0
		if err := s.Decode(v); err != nil {
			b.Fatal(err)
		}
		conn.out.Reset()
	}
}

// BenchmarkClientRoundTrip: open a stream, encode a 9-field request head, decode a response
// head and a 12-byte body.
func BenchmarkClientRoundTrip(b *testing.B) {
	conn := &fakeConn{}
	c := NewCodec(Config{}).NewClient(conn).(*clientCodec)
	p := replayablePeer(b)
	_ = p.fr.WriteSettings()
	_ = p.fr.WriteSettingsAck()
	sink := &benchSink{}
	id, _ := c.NewStream(sink)
	_ = c.EncodeHeaders(id, getReq("/"), true)
	p.headers(1, true, ":status", "200") // carries the table size update
	if err := c.Decode(&fakeView{buf: p.take()}); err != nil {
		b.Fatal(err)
	}
	sink.head.Release()
	_ = c.Flush()
	req := protocol.NewHeaderList(":method", "GET", ":scheme", "http", ":authority", "upstream.local", ":path", "/api/v1/items",
		"user-agent", "strait", "accept", "application/json", "x-request-id", "5f0c", "x-forwarded-for", "10.0.0.1", "te", "trailers")
	p.headers(1, false, ":status", "200", "content-type", "application/json", "content-length", "12")
	p.data(1, true, []byte("{\"ok\":true}\n"))
	resp := p.take()
	v := &fakeView{buf: resp}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id, err := c.NewStream(sink)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.EncodeHeaders(id, req, true); err != nil {
			b.Fatal(err)
		}
		setStreamID(resp, c.nextID-2)
		v.off = 0
		if err := c.Decode(v); err != nil {
			b.Fatal(err)
		}
		sink.head.Release()
		conn.out.Reset()
	}
}

// BenchmarkEncodeHeaders: HPACK-encode a 10-field HTTP/1.1-style response head
// (translation: lower-casing, hop-by-hop filtering, interning).
func BenchmarkEncodeHeaders(b *testing.B) {
	c := &NewCodec(Config{}).NewServer(&fakeConn{}, newRecSink()).(*serverCodec).conn
	h := protocol.NewHeaderList(":status", "200", "Content-Type", "text/html; charset=utf-8", "Content-Length", "5120",
		"Cache-Control", "max-age=60", "Server", "upstream", "Date", "Thu, 26 Nov 2026 10:00:00 GMT",
		"Connection", "keep-alive", "Vary", "Accept-Encoding", "X-Request-Id", "5f0c2a", "Set-Cookie", "s=1; Path=/")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.encodeBlock(h, kindResponse); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDataThroughput: EncodeData of 64 KiB in 16 KiB frames referencing the caller's
// slices (one writev), windows kept open by WINDOW_UPDATE frames.
func BenchmarkDataThroughput(b *testing.B) {
	rec := newRecSink()
	conn := &fakeConn{}
	s := NewCodec(Config{}).NewServer(conn, rec).(*serverCodec)
	p := newPeer(b)
	p.wbuf.WriteString(preface)
	_ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: maxWindow})
	_ = p.fr.WriteWindowUpdate(0, maxWindow-initialWindow)
	p.headers(1, true, get("/")...)
	if err := s.Decode(&fakeView{buf: p.take()}); err != nil {
		b.Fatal(err)
	}
	_ = s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200"), false)
	chunk := [][]byte{bytes.Repeat([]byte("d"), 65536)}
	_ = p.fr.WriteWindowUpdate(0, 65536)
	_ = p.fr.WriteWindowUpdate(1, 65536)
	wu := p.take()
	v := &fakeView{buf: wu}
	b.SetBytes(65536)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.EncodeData(1, chunk, false); err != nil {
			b.Fatal(err)
		}
		v.off = 0
		s.windowUpdates = 0
		if err := s.Decode(v); err != nil {
			b.Fatal(err)
		}
		conn.out.Reset()
	}
	rec.release()
}

// BenchmarkIdleServerConn reports the heap one idle server connection keeps after its
// handshake and one GET exchange (the Framer's read buffer, HPACK tables, the maps).
func BenchmarkIdleServerConn(b *testing.B) {
	p := replayablePeer(b)
	p.wbuf.WriteString(preface)
	_ = p.fr.WriteSettings()
	_ = p.fr.WriteSettingsAck()
	p.headers(1, true, append(get("/index.html"), "user-agent", "bench/1.0", "accept", "*/*")...)
	in := p.take()
	resp := protocol.NewHeaderList(protocol.Status, "200", "content-type", "text/plain", "content-length", "12")
	codec := NewCodec(Config{})
	conns := make([]protocol.ServerCodec, b.N)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink := &benchSink{resp: resp, body: [][]byte{[]byte("hello world\n")}}
		conn := &fakeConn{}
		s := codec.NewServer(conn, sink)
		sink.s = s
		if err := s.Decode(&fakeView{buf: in}); err != nil {
			b.Fatal(err)
		}
		conn.out = bytes.Buffer{}
		conns[i] = s
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heapB/conn")
	runtime.KeepAlive(conns)
}
