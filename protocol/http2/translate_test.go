package http2

import (
	"fmt"
	"strings"
	"testing"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/protocol/http1"
)

// TestTranslateHTTP1ToHTTP2: heads decoded by the HTTP/1.1 codec, encoded by this one:
// hop-by-hop fields (and those Connection names) dropped, names lower-cased, :authority
// from Host, TE kept only as "trailers".
func TestTranslateHTTP1ToHTTP2(t *testing.T) {
	// Request: HTTP/1.1 downstream, HTTP/2 upstream.
	h1rec := newRecSink()
	h1 := http1.NewCodec(http1.Limits{}).NewServer(&fakeConn{}, h1rec)
	req := "POST /api?q=1 HTTP/1.1\r\nHost: api.example:8080\r\nConnection: keep-alive, X-Hop\r\n" +
		"X-Hop: secret\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n" +
		"Upgrade: h2c\r\nProxy-Connection: x\r\nUser-Agent: curl/8\r\nCookie: a=1\r\nAccept: */*\r\n\r\n"
	if err := h1.Decode(&fakeView{buf: []byte(req)}); err != nil {
		t.Fatal(err)
	}
	c := newClientHarness(t, Config{})
	id, _ := c.c.NewStream(newRecSink())
	if err := c.c.EncodeHeaders(id, h1rec.heads[1], true); err != nil {
		t.Fatal(err)
	}
	got := c.frames()
	want := "HEADERS 1 end :method=POST :scheme=http :authority=api.example:8080 :path=/api?q=1 te=trailers user-agent=curl/8 cookie=a=1 accept=*/*"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("request\n got %q\nwant %q", got, want)
	}
	h1rec.release()

	// Response: HTTP/1.1 upstream, HTTP/2 downstream.
	h1c := http1.NewCodec(http1.Limits{}).NewClient(&fakeConn{})
	rrec := newRecSink()
	rid, _ := h1c.NewStream(rrec)
	_ = h1c.EncodeHeaders(rid, protocol.NewHeaderList(":method", "GET", ":authority", "a", ":path", "/"), true)
	resp := "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Type: text/html\r\n" +
		"Content-Length: 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nok"
	if err := h1c.Decode(&fakeView{buf: []byte(resp)}); err != nil {
		t.Fatal(err)
	}
	rec := newRecSink()
	s := newServerHarness(t, Config{}, rec)
	s.p.headers(1, true, get("/")...)
	s.mustFeed()
	if err := s.s.EncodeHeaders(1, rrec.heads[rid], false); err != nil {
		t.Fatal(err)
	}
	if err := s.s.EncodeData(1, [][]byte{[]byte(rrec.body(rid))}, true); err != nil {
		t.Fatal(err)
	}
	got = s.frames()
	want2 := []string{"HEADERS 1 :status=200 content-type=text/html content-length=2 set-cookie=a=1 set-cookie=b=2", "DATA 1 2 end"}
	if fmt.Sprint(got) != fmt.Sprint(want2) {
		t.Fatalf("response\n got %q\nwant %q", got, want2)
	}
	rrec.release()
	rec.release()
}

// TestTranslateHTTP2ToHTTP1: heads decoded by this codec, encoded by the HTTP/1.1 codec.
func TestTranslateHTTP2ToHTTP1(t *testing.T) {
	rec := newRecSink()
	s := newServerHarness(t, Config{}, rec)
	s.p.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "www.example", ":path", "/x",
		"cookie", "a=1", "cookie", "b=2", "accept", "text/html")
	s.mustFeed()
	conn := &fakeConn{}
	h1c := http1.NewCodec(http1.Limits{}).NewClient(conn)
	id, _ := h1c.NewStream(newRecSink())
	if err := h1c.EncodeHeaders(id, rec.heads[1], true); err != nil {
		t.Fatal(err)
	}
	got := conn.out.String()
	want := "GET /x HTTP/1.1\r\nHost: www.example\r\ncookie: a=1; b=2\r\naccept: text/html\r\n\r\n"
	if got != want {
		t.Fatalf("HTTP/1.1 request\n got %q\nwant %q", got, want)
	}
	// An HTTP/2 value HTTP/1.1 could not carry never arrives: it is refused at decode.
	s.p.headers(3, true, append(get("/"), "x-inject", "a\r\nX-Evil: 1")...)
	s.mustFeed()
	if got := s.frames(); fmt.Sprint(got) != "[RST_STREAM 3 PROTOCOL_ERROR]" || rec.headCount() != 1 {
		t.Fatalf("frames %q", got)
	}
	if strings.Contains(conn.out.String(), "Evil") {
		t.Fatal("injected")
	}
	rec.release()
}
