package http1

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol"
)

func TestServerKeepAliveSequence(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	for i := 1; i <= 3; i++ {
		req := fmt.Sprintf("GET /r%d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n", i)
		if err := p.feed([]byte(req)); err != nil {
			t.Fatal(err)
		}
		id := protocol.StreamID(i)
		want := fmt.Sprintf("H%d :method=GET :scheme=http :authority=example.com :path=/r%d User-Agent=t end=true", i, i)
		if got := sink.events[len(sink.events)-1]; got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
		respond(t, s, id, "200", "hello")
		if got := p.conn.take(); got != "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" {
			t.Fatalf("response %d: %q", i, got)
		}
		if p.conn.closed || p.conn.paused {
			t.Fatalf("closed=%v paused=%v after a keep-alive response", p.conn.closed, p.conn.paused)
		}
	}
}

func TestServerPipelinedInOrder(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	in := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
		"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
	if err := p.feed([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if sink.headCount() != 1 || !p.conn.paused {
		t.Fatalf("before the first response: %d heads, paused=%v (want 1, true)", sink.headCount(), p.conn.paused)
	}
	for id := protocol.StreamID(1); id <= 3; id++ {
		if sink.headCount() != int(id) {
			t.Fatalf("stream %d: %d heads decoded: %v", id, sink.headCount(), sink.events)
		}
		respond(t, s, id, "200", fmt.Sprintf("r%d", id))
		if err := p.pump(); err != nil { // PauseRead(false) re-delivers
			t.Fatal(err)
		}
	}
	if sink.body(2) != "abc" || !sink.ended[2] {
		t.Fatalf("body of 2: %q ended=%v", sink.body(2), sink.ended[2])
	}
	want := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr1" +
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr2" +
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr3"
	if got := p.conn.take(); got != want {
		t.Fatalf("responses:\n%q\nwant\n%q", got, want)
	}
	if p.conn.paused || len(p.pending) != 0 {
		t.Fatalf("paused=%v pending=%q", p.conn.paused, p.pending)
	}
}

// A response sent synchronously from OnHeaders (a local reply) lets the next pipelined
// request be decoded within the same read.
func TestServerSynchronousAnswer(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	sink.onHeaders = func(id protocol.StreamID, _ protocol.Headers, end bool) {
		if end {
			respond(t, s, id, "404", "")
		}
	}
	in := strings.Repeat("GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 3)
	if err := p.feed([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if sink.headCount() != 3 || p.conn.paused {
		t.Fatalf("heads %d paused %v", sink.headCount(), p.conn.paused)
	}
	if got := p.conn.take(); got != strings.Repeat("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 3) {
		t.Fatalf("responses %q", got)
	}
}

// chunkedEncode frames body as chunks of at most size bytes, with optional trailers.
func chunkedEncode(body string, size int, trailers string) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n" + trailers + "\r\n")
	return b.String()
}

func pattern(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return string(b)
}

// Request bodies, Content-Length and chunked, from 0 B to 1 MiB, arrive whole and in order
// however the bytes are split into reads, with a pipelined request after them.
func TestServerBodiesAnySplit(t *testing.T) {
	type tc struct {
		name, msg, body, trailers string
	}
	var cases []tc
	for _, n := range []int{0, 1, 2, 17, 4096, 70000, 1 << 20} {
		body := pattern(n)
		cases = append(cases,
			tc{fmt.Sprintf("cl-%d", n), fmt.Sprintf("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", n, body), body, ""},
			tc{fmt.Sprintf("chunked-%d", n), "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedEncode(body, 3000, ""), body, ""},
			tc{fmt.Sprintf("chunked-trailers-%d", n), "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedEncode(body, 7, "X-Sum: 42\r\nX-B: 1\r\n"), body, "X-Sum=42 X-B=1"},
		)
	}
	next := "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
	run := func(t *testing.T, c tc, reads []int, copyPeek bool, detach bool) {
		s, p, sink := newServerPipe(t, Limits{})
		defer sink.release()
		p.copyPeek = copyPeek
		sink.detach = detach
		sink.onEnd = func(id protocol.StreamID) {
			if id == 1 {
				respond(t, s, 1, "204", "")
			}
		}
		in := []byte(c.msg + next)
		off := 0
		for _, r := range reads {
			if off >= len(in) {
				break
			}
			end := min(off+r, len(in))
			if err := p.feed(in[off:end]); err != nil {
				t.Fatalf("reads %v: %v", reads, err)
			}
			off = end
		}
		if off < len(in) {
			if err := p.feed(in[off:]); err != nil {
				t.Fatal(err)
			}
		}
		if got := sink.body(1); got != c.body {
			t.Fatalf("reads %v: body %d bytes, want %d", reads, len(got), len(c.body))
		}
		if !sink.ended[1] || sink.trailers[1] != c.trailers {
			t.Fatalf("reads %v: ended=%v trailers=%q events=%v", reads, sink.ended[1], sink.trailers[1], sink.events)
		}
		if sink.headCount() != 2 || !strings.Contains(sink.events[len(sink.events)-1], ":path=/next") {
			t.Fatalf("reads %v: events %v", reads, sink.events)
		}
		for _, e := range sink.events {
			if strings.Contains(e, "after end") {
				t.Fatalf("data after end: %v", sink.events)
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := c.msg + next
			if len(msg) <= 600 {
				for split := 0; split <= len(msg); split++ {
					run(t, c, []int{split}, split%2 == 0, split%3 == 0)
				}
				run(t, c, repeatInt(1, len(msg)), true, false)
			}
			for _, r := range []int{7, 1000, 4096, 16 << 10, 65536} {
				if len(msg)/r > 20000 {
					continue
				}
				run(t, c, repeatInt(r, len(msg)/r+1), r == 7, r == 4096)
			}
			run(t, c, []int{len(msg)}, false, false)
		})
	}
}

func repeatInt(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestServerTrailersAndChunkedResponse(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	h := protocol.NewHeaderList(protocol.Status, "200", "Content-Type", "text/plain", "Transfer-Encoding", "gzip, chunked")
	if err := s.EncodeHeaders(1, h, false); err != nil {
		t.Fatal(err)
	}
	if p.conn.writes != 0 {
		t.Fatal("a head with a body to follow was written on its own")
	}
	if err := s.EncodeData(1, [][]byte{[]byte("hel"), []byte("lo")}, false); err != nil {
		t.Fatal(err)
	}
	if p.conn.writes != 1 {
		t.Fatalf("head and first body bytes took %d writes", p.conn.writes)
	}
	tr := protocol.NewHeaderList("X-Checksum", "abc", "Content-Length", "5", "Host", "evil")
	if err := s.EncodeTrailers(1, tr); err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" +
		"0\r\nX-Checksum: abc\r\n\r\n"
	if got := p.conn.take(); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}

	// The same trailers on a Content-Length response are dropped.
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeHeaders(2, protocol.NewHeaderList(protocol.Status, "200", "Content-Length", "2"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeData(2, [][]byte{[]byte("ok")}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeTrailers(2, protocol.NewHeaderList("X-T", "1")); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" {
		t.Fatalf("got %q", got)
	}
	if p.conn.closed {
		t.Fatal("closed")
	}
}

func TestServerExpectContinue(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatalf("after the head: %q", got)
	}
	if _, ok := sink.heads[1].Get("expect"); ok {
		t.Fatal("Expect reached the stream (it would go upstream)")
	}
	if err := p.feed([]byte("data")); err != nil {
		t.Fatal(err)
	}
	// An upstream 100 after ours is not sent twice.
	if err := s.EncodeHeaders(1, protocol.NewHeaderList(protocol.Status, "100"), false); err != nil {
		t.Fatal(err)
	}
	respond(t, s, 1, "201", "")
	if got := p.conn.take(); got != "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n" || sink.body(1) != "data" {
		t.Fatalf("got %q body %q", got, sink.body(1))
	}

	// A request answered while its head is decoded gets no 100 Continue, and the
	// connection closes after the answer because the body was not read.
	s, p, sink2 := newServerPipe(t, Limits{})
	defer sink2.release()
	sink2.onHeaders = func(id protocol.StreamID, _ protocol.Headers, _ bool) { respond(t, s, id, "417", "") }
	if err := p.feed([]byte("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// (A lingering close: the write side is shut, the unread body is drained.)
	if got := p.conn.take(); got != "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" || !p.conn.writeShut {
		t.Fatalf("got %q writeShut=%v", got, p.conn.writeShut)
	}

	// HTTP/1.0 ignores Expect (and it is not forwarded).
	s, p, sink3 := newServerPipe(t, Limits{})
	defer sink3.release()
	if err := p.feed([]byte("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "" {
		t.Fatalf("HTTP/1.0 got %q", got)
	}
	if _, ok := sink3.heads[1].Get("Expect"); ok {
		t.Fatal("Expect kept")
	}
	_ = s
}

func TestServerUpgradeTunnel(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	head := "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n"
	if err := p.feed([]byte(head + "\x81\x05early")); err != nil {
		t.Fatal(err)
	}
	want := "H1 :method=GET :scheme=http :authority=a :path=/chat Connection=Upgrade Upgrade=websocket Sec-WebSocket-Key=k end=false"
	if len(sink.events) != 1 || sink.events[0] != want {
		t.Fatalf("events %v", sink.events)
	}
	if !p.conn.paused || sink.body(1) != "" {
		t.Fatal("bytes after an upgrade request were not held until the answer")
	}
	resp := protocol.NewHeaderList(protocol.Status, "101", "Upgrade", "websocket", "Connection", "upgrade", "Sec-WebSocket-Accept", "x")
	if err := s.EncodeHeaders(1, resp, false); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\nConnection: Upgrade\r\n\r\n" {
		t.Fatalf("101: %q", got)
	}
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if err := p.feed([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil { // tunnel data, not HTTP
		t.Fatal(err)
	}
	if sink.body(1) != "\x81\x05earlyGET / HTTP/1.1\r\n\r\n" || sink.headCount() != 1 {
		t.Fatalf("tunnel data %q, events %v", sink.body(1), sink.events)
	}
	if err := s.EncodeData(1, [][]byte{[]byte("\x81\x02hi")}, false); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "\x81\x02hi" {
		t.Fatalf("raw pass-through: %q", got)
	}
	s.OnEOF()
	if !sink.ended[1] {
		t.Fatal("client EOF did not end the request direction")
	}
	if err := s.EncodeData(1, nil, true); err != nil {
		t.Fatal(err)
	}
	if !p.conn.closed {
		t.Fatal("tunnel end did not close")
	}
}

// A refused upgrade ends the request; what the client sent after it is parsed as the next
// request, never forwarded as tunnel bytes.
func TestServerUpgradeRefused(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	in := "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n" +
		"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
	if err := p.feed([]byte(in)); err != nil {
		t.Fatal(err)
	}
	respond(t, s, 1, "400", "no")
	if !sink.ended[1] || sink.body(1) != "" {
		t.Fatalf("refused upgrade: ended=%v body=%q", sink.ended[1], sink.body(1))
	}
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if sink.headCount() != 2 || !strings.Contains(sink.events[len(sink.events)-1], ":path=/admin") {
		t.Fatalf("events %v", sink.events)
	}
	if got := p.conn.take(); got != "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno" {
		t.Fatalf("got %q", got)
	}

	// An unsolicited 101 is refused with 502.
	if err := s.EncodeHeaders(2, protocol.NewHeaderList(protocol.Status, "101"), false); err == nil {
		t.Fatal("101 without an upgrade request accepted")
	}
	if got := p.conn.take(); !strings.HasPrefix(got, "HTTP/1.1 502 Bad Gateway\r\n") || !p.conn.closed {
		t.Fatalf("got %q closed=%v", got, p.conn.closed)
	}
}

func TestServerConnect(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\nhello")); err != nil {
		t.Fatal(err)
	}
	if want := "H1 :method=CONNECT :scheme=http :authority=db.internal:5432 end=false"; sink.events[0] != want {
		t.Fatalf("got %q", sink.events[0])
	}
	if err := s.EncodeHeaders(1, protocol.NewHeaderList(protocol.Status, "200", "Content-Length", "0"), false); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "HTTP/1.1 200 OK\r\n\r\n" {
		t.Fatalf("got %q", got)
	}
	if err := p.pump(); err != nil {
		t.Fatal(err)
	}
	if sink.body(1) != "hello" {
		t.Fatalf("tunnel %q", sink.body(1))
	}

	// A CONNECT announcing a body is refused (its bytes would become tunnel data).
	_, p2, sink2 := newServerPipe(t, Limits{})
	err := p2.feed([]byte("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\nhello"))
	if !errors.Is(err, ErrConnectBody) || !errors.Is(err, protocol.ErrConnection) || sink2.headCount() != 0 {
		t.Fatalf("err %v events %v", err, sink2.events)
	}
}

func TestServerNoBodyResponses(t *testing.T) {
	cases := []struct {
		name, req string
		resp      *protocol.HeaderList
		end       bool
		data      string
		want      string
	}{
		{"HEAD keeps length, drops data", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
			protocol.NewHeaderList(protocol.Status, "200", "Content-Length", "1234"), false, "ignored",
			"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"},
		{"HEAD without length", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
			protocol.NewHeaderList(protocol.Status, "200"), true, "",
			"HTTP/1.1 200 OK\r\n\r\n"},
		{"204 drops length and data", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			protocol.NewHeaderList(protocol.Status, "204", "Content-Length", "3"), false, "abc",
			"HTTP/1.1 204 No Content\r\n\r\n"},
		{"304 keeps length", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			protocol.NewHeaderList(protocol.Status, "304", "Content-Length", "99", "ETag", "\"x\""), true, "",
			"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n"},
		{"end means empty", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			protocol.NewHeaderList(protocol.Status, "200"), true, "",
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, p, sink := newServerPipe(t, Limits{})
			defer sink.release()
			if err := p.feed([]byte(c.req)); err != nil {
				t.Fatal(err)
			}
			if err := s.EncodeHeaders(1, c.resp, c.end); err != nil {
				t.Fatal(err)
			}
			if !c.end {
				if err := s.EncodeData(1, [][]byte{[]byte(c.data)}, true); err != nil {
					t.Fatal(err)
				}
			}
			if got := p.conn.take(); got != c.want {
				t.Fatalf("got %q\nwant %q", got, c.want)
			}
			if p.conn.writes != 1 || p.conn.closed {
				t.Fatalf("writes %d closed %v", p.conn.writes, p.conn.closed)
			}
		})
	}
}

func TestServerConnectionManagement(t *testing.T) {
	type step struct {
		req       string
		resp      *protocol.HeaderList
		body      string // sent with EncodeData after a non-end head; "" = end at head
		drain     bool
		wantHead  string
		wantClose bool
	}
	cases := []struct {
		name string
		step
	}{
		{"client asked close", step{req: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			resp: protocol.NewHeaderList(protocol.Status, "200"), wantHead: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", wantClose: true}},
		{"HTTP/1.0 default close", step{req: "GET / HTTP/1.0\r\n\r\n",
			resp: protocol.NewHeaderList(protocol.Status, "200"), wantHead: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", wantClose: true}},
		{"HTTP/1.0 keep-alive", step{req: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			resp: protocol.NewHeaderList(protocol.Status, "200"), wantHead: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"}},
		{"HTTP/1.0 unknown length is close-delimited", step{req: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			resp: protocol.NewHeaderList(protocol.Status, "200"), body: "stream",
			wantHead: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstream", wantClose: true}},
		{"HTTP/1.1 unknown length is chunked", step{req: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			resp: protocol.NewHeaderList(protocol.Status, "200"), body: "stream",
			wantHead: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nstream\r\n0\r\n\r\n"}},
		{"drain", step{req: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", drain: true,
			resp: protocol.NewHeaderList(protocol.Status, "200"), wantHead: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", wantClose: true}},
		{"request body not read", step{req: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
			resp: protocol.NewHeaderList(protocol.Status, "413"), wantHead: "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", wantClose: true}},
		{"hop-by-hop removed", step{req: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			resp: protocol.NewHeaderList(protocol.Status, "200", "Connection", "keep-alive, X-Secret", "Keep-Alive", "timeout=5",
				"X-Secret", "s", "Proxy-Connection", "x", "TE", "trailers", "Upgrade", "h2c", "Transfer-Encoding", "chunked", "X-Kept", "k"),
			wantHead: "HTTP/1.1 200 OK\r\nX-Kept: k\r\nContent-Length: 0\r\n\r\n"}},
		{"unknown status", step{req: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			resp: protocol.NewHeaderList(protocol.Status, "599"), wantHead: "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, p, sink := newServerPipe(t, Limits{})
			defer sink.release()
			if err := p.feed([]byte(c.req)); err != nil {
				t.Fatal(err)
			}
			if c.drain {
				s.Drain()
			}
			if err := s.EncodeHeaders(1, c.resp, c.body == ""); err != nil {
				t.Fatal(err)
			}
			if c.body != "" {
				if err := s.EncodeData(1, [][]byte{[]byte(c.body)}, true); err != nil {
					t.Fatal(err)
				}
			}
			if got := p.conn.take(); got != c.wantHead {
				t.Fatalf("got  %q\nwant %q", got, c.wantHead)
			}
			// A connection whose request body is still arriving closes by lingering: its
			// write side shuts first (TestServerLingeringClose).
			if closed := p.conn.closed || p.conn.writeShut; closed != c.wantClose || p.conn.aborted {
				t.Fatalf("closed=%v writeShut=%v aborted=%v, want closed=%v", p.conn.closed, p.conn.writeShut, p.conn.aborted, c.wantClose)
			}
		})
	}
}

// Write coalescing: a head with a body to follow waits for the body (one writev), Flush
// sends it alone, and without Flush calls the Exec fallback sends it after the callback.
func TestServerWriteCoalescing(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	body := []byte("0123456789ab")
	if err := s.EncodeHeaders(1, protocol.NewHeaderList(protocol.Status, "200", "Content-Length", "12"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeData(1, [][]byte{body}, true); err != nil {
		t.Fatal(err)
	}
	if p.conn.writes != 1 || p.conn.take() != "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n0123456789ab" {
		t.Fatalf("writes %d", p.conn.writes)
	}
	p.conn.runExec() // the fallback finds nothing held
	if p.conn.writes != 1 {
		t.Fatal("fallback flush wrote again")
	}

	// Flush writes a held head; after that no Exec fallback is queued.
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeHeaders(2, protocol.NewHeaderList(protocol.Status, "200"), false); err != nil {
		t.Fatal(err)
	}
	p.conn.runExec()
	if got := p.conn.take(); got != "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" {
		t.Fatalf("fallback flush: %q", got)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeData(2, [][]byte{[]byte("x")}, true); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "1\r\nx\r\n0\r\n\r\n" {
		t.Fatalf("got %q", got)
	}
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeHeaders(3, protocol.NewHeaderList(protocol.Status, "200"), false); err != nil {
		t.Fatal(err)
	}
	if len(p.conn.execs) != 0 || p.conn.out.Len() != 0 {
		t.Fatal("Exec fallback queued although Flush is being called")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" {
		t.Fatalf("Flush: %q", got)
	}
}

func TestServerEncodeRejectsInjection(t *testing.T) {
	for _, h := range []*protocol.HeaderList{
		protocol.NewHeaderList(protocol.Status, "200", "X-A", "a\r\nSet-Cookie: evil"),
		protocol.NewHeaderList(protocol.Status, "200", "X-A\r\nB", "a"),
		protocol.NewHeaderList(protocol.Status, "200", "X-A", "a\x00"),
		protocol.NewHeaderList(protocol.Status, "2000"),
		protocol.NewHeaderList(protocol.Status, "abc"),
		protocol.NewHeaderList("x", "no status"),
		protocol.NewHeaderList(protocol.Status, "200", "Content-Length", "1, 2"),
		protocol.NewHeaderList(protocol.Status, "200", "Content-Length", "1", "Content-Length", "2"),
	} {
		s, p, sink := newServerPipe(t, Limits{})
		if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := s.EncodeHeaders(1, h, true); err == nil {
			t.Fatalf("%v accepted", h.Fields)
		}
		if got := p.conn.take(); got != "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" || !p.conn.closed {
			t.Fatalf("%v: got %q closed=%v", h.Fields, got, p.conn.closed)
		}
		sink.release()
	}
}

func TestServerBodyLengthMismatch(t *testing.T) {
	for _, c := range []struct {
		data []string
		end  bool
	}{{[]string{"toolong"}, false}, {[]string{"ab"}, true}} {
		s, p, sink := newServerPipe(t, Limits{})
		if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := s.EncodeHeaders(1, protocol.NewHeaderList(protocol.Status, "200", "Content-Length", "5"), false); err != nil {
			t.Fatal(err)
		}
		err := s.EncodeData(1, [][]byte{[]byte(c.data[0])}, c.end)
		if !errors.Is(err, ErrBodyLength) || !p.conn.aborted {
			t.Fatalf("%v: err %v aborted %v", c.data, err, p.conn.aborted)
		}
		sink.release()
	}
}

func TestServerReset(t *testing.T) {
	// Before the response: close (nothing to cut).
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	s.Reset(1, errors.New("gone"))
	if !p.conn.closed || p.conn.aborted {
		t.Fatalf("closed %v aborted %v", p.conn.closed, p.conn.aborted)
	}
	// After part of the response: abort.
	s, p, sink2 := newServerPipe(t, Limits{})
	defer sink2.release()
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeHeaders(1, protocol.NewHeaderList(protocol.Status, "200"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeData(1, [][]byte{[]byte("part")}, false); err != nil {
		t.Fatal(err)
	}
	s.Reset(1, errors.New("upstream reset"))
	if !p.conn.aborted {
		t.Fatal("a started response was not aborted")
	}
	if err := s.EncodeData(1, [][]byte{[]byte("more")}, true); err == nil {
		t.Fatal("data accepted after reset")
	}
}

func TestServerResetRefused(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	s.Reset(1, fmt.Errorf("%w: too many streams", protocol.ErrRefusedStream))
	if got := p.conn.take(); got != "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" || !p.conn.closed || p.conn.aborted {
		t.Fatalf("got %q closed %v aborted %v", got, p.conn.closed, p.conn.aborted)
	}
}

func TestServerDrainIdleCloses(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	respond(t, s, 1, "200", "")
	s.Drain()
	if !p.conn.closed {
		t.Fatal("idle connection not closed by Drain")
	}
}

// hostileRequestTail is a request an attacker hopes a proxy would pass on after a
// malformed one.
const hostileRequestTail = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

// Every input the parser rejects gets the parser's status with Connection: close, a
// connection error, and no stream for anything after it.
func TestServerHostileRequests(t *testing.T) {
	for _, c := range hostileRequests {
		for _, prefix := range []bool{false, true} {
			s, p, sink := newServerPipe(t, Limits{})
			sink.onHeaders = func(id protocol.StreamID, _ protocol.Headers, end bool) {
				if end {
					respond(t, s, id, "200", "")
				}
			}
			in := c.in + hostileRequestTail
			wantHeads := 0
			if prefix {
				in = "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n" + in
				wantHeads = 1
			}
			err := p.feed([]byte(in))
			if !errors.Is(err, protocol.ErrConnection) || !errors.Is(err, c.want) {
				t.Fatalf("%s: err %v, want %v", c.name, err, c.want)
			}
			out := p.conn.take()
			if prefix {
				ok := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
				if !strings.HasPrefix(out, ok) {
					t.Fatalf("%s: first response %q", c.name, out)
				}
				out = out[len(ok):]
			}
			code := StatusCode(err)
			want := fmt.Sprintf("HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", code, reasonPhrase(code))
			if out != want {
				t.Fatalf("%s: wrote %q, want %q", c.name, out, want)
			}
			if sink.headCount() != wantHeads {
				t.Fatalf("%s: %d heads, want %d: %v", c.name, sink.headCount(), wantHeads, sink.events)
			}
			if err := p.codec.Decode(&fakeView{buf: []byte(hostileRequestTail)}); err == nil || sink.headCount() != wantHeads {
				t.Fatalf("%s: decoding went on after the error", c.name)
			}
			sink.release()
		}
	}
}

// Hostile chunked bodies reset the stream, answer 400 when no response started, and the
// request after them is never decoded.
func TestServerHostileChunkedBodies(t *testing.T) {
	for _, c := range hostileChunked {
		for _, answered := range []bool{false, true} {
			s, p, sink := newServerPipe(t, Limits{})
			in := "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			if err := p.feed([]byte(in)); err != nil {
				t.Fatal(err)
			}
			if answered {
				if err := s.EncodeHeaders(1, protocol.NewHeaderList(protocol.Status, "200"), false); err != nil {
					t.Fatal(err)
				}
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
				p.conn.take()
			}
			err := p.feed([]byte(c.in + "\r\n" + hostileRequestTail))
			if !errors.Is(err, protocol.ErrConnection) || !errors.Is(err, c.want) {
				t.Fatalf("%s: err %v, want %v", c.name, err, c.want)
			}
			if sink.headCount() != 1 || sink.resets[1] == nil {
				t.Fatalf("%s: events %v", c.name, sink.events)
			}
			out := p.conn.take()
			if answered && out != "" {
				t.Fatalf("%s: wrote %q in the middle of a response", c.name, out)
			}
			code := StatusCode(err)
			if want := fmt.Sprintf("HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", code, reasonPhrase(code)); !answered && out != want {
				t.Fatalf("%s: wrote %q", c.name, out)
			}
			sink.release()
		}
	}
}

func TestServerClientEOFMidBody(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")); err != nil {
		t.Fatal(err)
	}
	s.OnEOF()
	if !errors.Is(sink.resets[1], ErrUnexpectedEOF) {
		t.Fatalf("events %v", sink.events)
	}
}

func TestServerHeadersView(t *testing.T) {
	_, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	in := "GET http://Example.com:8080/p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-A: 1\r\nx-a: 2\r\nCookie: c\r\n\r\n"
	if err := p.feed([]byte(in)); err != nil {
		t.Fatal(err)
	}
	h := sink.heads[1]
	for name, want := range map[string]string{
		":method": "GET", ":path": "/p?q=1", ":authority": "Example.com:8080", ":scheme": "http",
		"host": "Example.com:8080", "HOST": "Example.com:8080", "X-a": "1", "cookie": "c",
	} {
		if got, ok := h.Get(name); !ok || got != want {
			t.Errorf("Get(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	h.Set("x-a", "3")
	h.Add("X-New", "n")
	h.Set(protocol.Path, "/rewritten")
	h.Del("cookie")
	h.Set("Host", "upstream.internal")
	want := ":method=GET :scheme=http :path=/rewritten :authority=upstream.internal x-a=3 X-New=n"
	if got := renderHead(h); got != want {
		t.Fatalf("after edits: %s\nwant         %s", got, want)
	}
}

// TestServerLingeringClose: a response that ends before its request body was read (an
// upstream answering early) shuts the write side instead of closing with unread bytes (a
// TCP reset that could destroy the response at the client); the rest of the body is dropped
// without reaching the sink, until the client closes, the read timeout fires, or a read
// finds lingerTime passed.
func TestServerLingeringClose(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\nabc")); err != nil {
		t.Fatal(err)
	}
	respond(t, s, 1, "200", "ok")
	if got := p.conn.take(); got != "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok" {
		t.Fatalf("got %q", got)
	}
	if !p.conn.writeShut || p.conn.closed {
		t.Fatalf("writeShut=%v closed=%v, want a lingering close", p.conn.writeShut, p.conn.closed)
	}
	if left := time.Until(time.Unix(0, s.x.lingerUntil)); left <= 0 || left > lingerTime {
		t.Fatalf("lingering for %v", left)
	}
	before := sink.body(1)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range 100 {
		if err := p.feed(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if p.conn.closed || sink.body(1) != before || len(p.pending) != 0 {
		t.Fatalf("closed=%v early, dropped bytes reached the sink, or %d bytes not drained", p.conn.closed, len(p.pending))
	}
	s.x.lingerUntil = time.Now().Add(-time.Millisecond).UnixNano() // lingerTime passed
	if err := p.feed(chunk); err != nil {
		t.Fatal(err)
	}
	if !p.conn.closed || p.conn.aborted {
		t.Fatalf("closed=%v aborted=%v after lingerTime", p.conn.closed, p.conn.aborted)
	}
}
