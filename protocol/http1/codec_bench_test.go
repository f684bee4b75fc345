package http1

import (
	"testing"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// benchSink keeps the last head (the stream manager owns it until the stream ends) and
// consumes body bytes the way the manager writes them on: Peek, then Skip.
type benchSink struct {
	head  protocol.Headers
	bytes int
	ends  int
}

func (b *benchSink) OnHeaders(_ protocol.StreamID, h protocol.Headers, end bool) {
	b.head = h
	if end {
		b.ends++
	}
}

func (b *benchSink) OnData(_ protocol.StreamID, in reactor.View, n int, end bool) {
	if n > 0 {
		b.bytes += len(in.Peek(n))
		in.Skip(n)
	}
	if end {
		b.ends++
	}
}

func (b *benchSink) OnTrailers(_ protocol.StreamID, t protocol.Headers) { t.Release(); b.ends++ }
func (b *benchSink) OnReset(protocol.StreamID, error)                   {}

// BenchmarkServerGet decodes a typical 310-byte GET and answers it with a 12-byte body
// (head held, then head and body in one writev), as one keep-alive exchange per op.
func BenchmarkServerGet(b *testing.B) {
	conn := &fakeConn{}
	sink := &benchSink{}
	s := newServer(conn, sink, Limits{}.WithDefaults())
	in := []byte(typicalRequest)
	v := &fakeView{buf: in}
	resp := protocol.NewHeaderList(protocol.Status, "200", "content-type", "text/plain", "content-length", "12")
	body := [][]byte{[]byte("hello world\n")}
	_ = s.Flush() // the stream manager calls Flush after each upstream read
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		v.off = 0
		if err := s.Decode(v); err != nil || v.off != len(in) {
			b.Fatal(err)
		}
		if err := s.EncodeHeaders(s.id, resp, false); err != nil {
			b.Fatal(err)
		}
		if err := s.EncodeData(s.id, body, true); err != nil {
			b.Fatal(err)
		}
		_ = s.Flush()
		sink.head.Release()
		conn.out.Reset()
	}
	if conn.closed {
		b.Fatal("closed")
	}
}

// BenchmarkServerChunkedUpload decodes a POST with a 16 KiB chunked body (4 KiB chunks)
// and answers 204.
func BenchmarkServerChunkedUpload(b *testing.B) {
	conn := &fakeConn{}
	sink := &benchSink{}
	s := newServer(conn, sink, Limits{}.WithDefaults())
	in := []byte("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(16<<10, 4<<10) + "0\r\n\r\n")
	v := &fakeView{buf: in}
	resp := protocol.NewHeaderList(protocol.Status, "204")
	_ = s.Flush()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		v.off = 0
		if err := s.Decode(v); err != nil || v.off != len(in) {
			b.Fatal(err, v.off)
		}
		if err := s.EncodeHeaders(s.id, resp, true); err != nil {
			b.Fatal(err)
		}
		sink.head.Release()
		conn.out.Reset()
	}
}

// BenchmarkClientRoundTrip encodes a request head (5 fields, hop-by-hop filtering) and
// decodes a typical response head with a 12-byte body.
func BenchmarkClientRoundTrip(b *testing.B) {
	conn := &fakeConn{}
	sink := &benchSink{}
	c := newClient(conn, Limits{}.WithDefaults())
	req := protocol.NewHeaderList(protocol.Method, "GET", protocol.Scheme, "http", protocol.Authority, "service.example.com",
		protocol.Path, "/api/v1/items?id=12345", "user-agent", "bench/1.0", "accept", "application/json",
		"accept-encoding", "gzip", "connection", "keep-alive", "x-request-id", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
	in := []byte("HTTP/1.1 200 OK\r\nDate: Wed, 26 Nov 2026 08:00:00 GMT\r\nContent-Type: application/json\r\n" +
		"Content-Length: 12\r\nServer: upstream/1.0\r\n\r\n{\"ok\":true}\n")
	v := &fakeView{buf: in}
	b.ReportAllocs()
	for b.Loop() {
		id, err := c.NewStream(sink)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.EncodeHeaders(id, req, true); err != nil {
			b.Fatal(err)
		}
		v.off = 0
		if err := c.Decode(v); err != nil || v.off != len(in) {
			b.Fatal(err)
		}
		sink.head.Release()
		conn.out.Reset()
	}
	if !c.Reusable() {
		b.Fatal("not reusable")
	}
}
