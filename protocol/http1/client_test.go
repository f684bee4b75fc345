package http1

import (
	"errors"
	"strings"
	"testing"

	"github.com/strait-proxy/strait/protocol"
)

// startStream opens a stream on c and encodes req (end as given).
func startStream(t testing.TB, c *clientCodec, sink protocol.Sink, req protocol.Headers, end bool) protocol.StreamID {
	t.Helper()
	id, err := c.NewStream(sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EncodeHeaders(id, req, end); err != nil {
		t.Fatal(err)
	}
	return id
}

func getReq(pairs ...string) *protocol.HeaderList {
	return protocol.NewHeaderList(append([]string{protocol.Method, "GET", protocol.Scheme, "http",
		protocol.Authority, "svc.internal", protocol.Path, "/x"}, pairs...)...)
}

func TestClientRequestEncoding(t *testing.T) {
	cases := []struct {
		name string
		req  *protocol.HeaderList
		end  bool
		data []string
		want string
	}{
		{"GET", getReq("Accept", "*/*"), true, nil,
			"GET /x HTTP/1.1\r\nHost: svc.internal\r\nAccept: */*\r\n\r\n"},
		{"hop-by-hop and Host field dropped", getReq("Connection", "close, X-Hop", "X-Hop", "1", "Keep-Alive", "t=1",
			"Proxy-Connection", "k", "TE", "trailers", "Transfer-Encoding", "chunked", "Upgrade", "websocket",
			"Host", "other", "Expect", "100-continue", "X-End", "e"), true, nil,
			"GET /x HTTP/1.1\r\nHost: svc.internal\r\nX-End: e\r\n\r\n"},
		{"Host field when no :authority", protocol.NewHeaderList(protocol.Method, "GET", protocol.Path, "/", "host", "h.example"), true, nil,
			"GET / HTTP/1.1\r\nHost: h.example\r\n\r\n"},
		{"empty path is /", protocol.NewHeaderList(protocol.Method, "OPTIONS", protocol.Authority, "a"), true, nil,
			"OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"POST without body gets a length", protocol.NewHeaderList(protocol.Method, "POST", protocol.Path, "/p", protocol.Authority, "a"), true, nil,
			"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"},
		{"Content-Length body coalesced", protocol.NewHeaderList(protocol.Method, "PUT", protocol.Path, "/p", protocol.Authority, "a", "content-length", "11"), false,
			[]string{"hello ", "world"},
			"PUT /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"},
		{"unknown length is chunked", protocol.NewHeaderList(protocol.Method, "POST", protocol.Path, "/p", protocol.Authority, "a"), false,
			[]string{"abc", "", "defg"},
			"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"},
		{"CONNECT", protocol.NewHeaderList(protocol.Method, "CONNECT", protocol.Authority, "db:5432"), false, nil,
			"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n"},
		{"upgrade", getReq("Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "k"), false, nil,
			"GET /x HTTP/1.1\r\nHost: svc.internal\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: Upgrade\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc, p := newClientPipe(t, Limits{})
			id := startStream(t, cc, newRecSink(), c.req, c.end)
			for i, d := range c.data {
				if err := cc.EncodeData(id, [][]byte{[]byte(d)}, i == len(c.data)-1); err != nil {
					t.Fatal(err)
				}
			}
			if got := p.conn.take(); got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
			if len(c.data) > 0 && p.conn.writes != len(c.data)-countEmpty(c.data) {
				t.Fatalf("%d writes for %d data calls: the head was not coalesced", p.conn.writes, len(c.data))
			}
		})
	}
}

func countEmpty(d []string) int {
	n := 0
	for _, s := range d {
		if s == "" {
			n++
		}
	}
	return n
}

func TestClientRequestTrailers(t *testing.T) {
	cc, p := newClientPipe(t, Limits{})
	id := startStream(t, cc, newRecSink(), protocol.NewHeaderList(protocol.Method, "POST", protocol.Path, "/", protocol.Authority, "a"), false)
	if err := cc.EncodeData(id, [][]byte{[]byte("ab")}, false); err != nil {
		t.Fatal(err)
	}
	if err := cc.EncodeTrailers(id, protocol.NewHeaderList("grpc-status", "0", "content-length", "9")); err != nil {
		t.Fatal(err)
	}
	want := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\ngrpc-status: 0\r\n\r\n"
	if got := p.conn.take(); got != want {
		t.Fatalf("got %q", got)
	}
}

func TestClientRequestRejectsInjection(t *testing.T) {
	for _, h := range []*protocol.HeaderList{
		getReq("X-A", "v\r\nX-Injected: 1"),
		protocol.NewHeaderList(protocol.Method, "GET", protocol.Path, "/a b", protocol.Authority, "a"),
		protocol.NewHeaderList(protocol.Method, "GET", protocol.Path, "/a\r\n", protocol.Authority, "a"),
		protocol.NewHeaderList(protocol.Method, "G ET", protocol.Path, "/", protocol.Authority, "a"),
		protocol.NewHeaderList(protocol.Method, "GET", protocol.Path, "/", protocol.Authority, "a\r\nX: y"),
		protocol.NewHeaderList(protocol.Path, "/", protocol.Authority, "a"),
		protocol.NewHeaderList(protocol.Method, "GET", protocol.Path, "http://x/", protocol.Authority, "a"),
	} {
		cc, p := newClientPipe(t, Limits{})
		id, _ := cc.NewStream(newRecSink())
		if err := cc.EncodeHeaders(id, h, true); err == nil {
			t.Fatalf("%v accepted", h.Fields)
		}
		if p.conn.out.Len() != 0 || cc.Reusable() || cc.ActiveStreams() != 0 {
			t.Fatalf("%v: wrote %q reusable=%v", h.Fields, p.conn.out.String(), cc.Reusable())
		}
	}
}

// responseCase is one upstream answer to a request with the given method.
type responseCase struct {
	name, method, in string
	head, body       string
	trailers         string
	end              bool // the response ended (before EOF)
	reusable         bool
}

var responseCases = []responseCase{
	{name: "content-length", method: "GET", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		head: ":status=200 Content-Length=5", body: "hello", end: true, reusable: true},
	{name: "empty", method: "GET", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		head: ":status=200 Content-Length=0", end: true, reusable: true},
	{name: "chunked with trailers", method: "GET", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 7\r\n\r\n",
		head: ":status=200 Transfer-Encoding=chunked", body: "hello!", trailers: "X-Sum=7", end: true, reusable: true},
	{name: "HEAD ignores length", method: "HEAD", in: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
		head: ":status=200 Content-Length=1234", end: true, reusable: true},
	{name: "HEAD ignores chunked", method: "HEAD", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		head: ":status=200 Transfer-Encoding=chunked", end: true, reusable: true},
	{name: "204", method: "GET", in: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
		head: ":status=204 Content-Length=10", end: true, reusable: true},
	{name: "304", method: "GET", in: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
		head: ":status=304 Transfer-Encoding=chunked", end: true, reusable: true},
	{name: "100 continue swallowed", method: "POST", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
		head: ":status=201 Content-Length=2", body: "ok", end: true, reusable: true},
	{name: "connection close", method: "GET", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		head: ":status=200 Connection=close Content-Length=2", body: "ok", end: true},
	{name: "HTTP/1.0 without keep-alive", method: "GET", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		head: ":status=200 Content-Length=2", body: "ok", end: true},
	{name: "HTTP/1.0 keep-alive", method: "GET", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
		head: ":status=200 Connection=keep-alive Content-Length=2", body: "ok", end: true, reusable: true},
	{name: "close-delimited", method: "GET", in: "HTTP/1.1 200 OK\r\n\r\nuntil the end",
		head: ":status=200", body: "until the end"},
}

func TestClientResponseFraming(t *testing.T) {
	for _, c := range responseCases {
		t.Run(c.name, func(t *testing.T) {
			for split := 0; split <= len(c.in); split++ {
				cc, p := newClientPipe(t, Limits{})
				p.copyPeek = split%2 == 1
				sink := newRecSink()
				req := protocol.NewHeaderList(protocol.Method, c.method, protocol.Path, "/", protocol.Authority, "a")
				id := startStream(t, cc, sink, req, true)
				if err := p.feed([]byte(c.in[:split])); err != nil {
					t.Fatal(err)
				}
				if err := p.feed([]byte(c.in[split:])); err != nil {
					t.Fatalf("split %d: %v", split, err)
				}
				if !c.end {
					if sink.ended[id] || cc.ActiveStreams() != 1 {
						t.Fatalf("split %d: ended before EOF", split)
					}
					cc.OnEOF()
				}
				if sink.headCount() != 1 || !strings.HasPrefix(sink.events[0], "H1 "+c.head+" end=") {
					t.Fatalf("split %d: events %v, want head %q", split, sink.events, c.head)
				}
				if sink.body(id) != c.body || sink.trailers[id] != c.trailers || !sink.ended[id] {
					t.Fatalf("split %d: body %q trailers %q ended %v", split, sink.body(id), sink.trailers[id], sink.ended[id])
				}
				if cc.ActiveStreams() != 0 || cc.Reusable() != c.reusable {
					t.Fatalf("split %d: active %d reusable %v, want reusable %v", split, cc.ActiveStreams(), cc.Reusable(), c.reusable)
				}
				if c.reusable {
					if _, err := cc.NewStream(sink); err != nil {
						t.Fatalf("reuse: %v", err)
					}
				}
				sink.release()
			}
		})
	}
}

// A response that arrives before the request was sent whole ends the exchange, and the
// connection is not reused.
func TestClientEarlyResponse(t *testing.T) {
	cc, p := newClientPipe(t, Limits{})
	sink := newRecSink()
	defer sink.release()
	id := startStream(t, cc, sink, protocol.NewHeaderList(protocol.Method, "POST", protocol.Path, "/", protocol.Authority, "a", "content-length", "100"), false)
	if err := cc.EncodeData(id, [][]byte{[]byte("part")}, false); err != nil {
		t.Fatal(err)
	}
	if err := p.feed([]byte("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if !sink.ended[id] || cc.ActiveStreams() != 0 || cc.Reusable() {
		t.Fatalf("ended %v active %d reusable %v", sink.ended[id], cc.ActiveStreams(), cc.Reusable())
	}
	p.conn.take()
	if err := cc.EncodeData(id, [][]byte{[]byte("rest")}, true); err != nil || p.conn.out.Len() != 0 {
		t.Fatalf("data after the response: err %v wrote %q", err, p.conn.out.String())
	}
	if _, err := cc.NewStream(sink); !errors.Is(err, ErrNotReusable) {
		t.Fatalf("NewStream: %v", err)
	}
}

func TestClientUpgrade(t *testing.T) {
	cc, p := newClientPipe(t, Limits{})
	sink := newRecSink()
	defer sink.release()
	id := startStream(t, cc, sink, getReq("Connection", "upgrade", "Upgrade", "websocket"), false)
	p.conn.take()
	if err := cc.EncodeData(id, [][]byte{[]byte("early")}, false); !errors.Is(err, ErrDataBeforeUpgrade) {
		t.Fatalf("tunnel data before 101: %v", err)
	}

	cc, p = newClientPipe(t, Limits{})
	id = startStream(t, cc, sink, getReq("Connection", "upgrade", "Upgrade", "websocket"), false)
	if err := p.feed([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x01a")); err != nil {
		t.Fatal(err)
	}
	if sink.body(id) != "\x81\x01a" || sink.ended[id] || cc.Reusable() {
		t.Fatalf("body %q ended %v reusable %v", sink.body(id), sink.ended[id], cc.Reusable())
	}
	p.conn.take()
	if err := cc.EncodeData(id, [][]byte{[]byte("\x81\x01b")}, true); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "\x81\x01b" || !p.conn.writeShut {
		t.Fatalf("client direction %q, half-closed %v", got, p.conn.writeShut)
	}
	cc.OnEOF()
	if !sink.ended[id] || cc.ActiveStreams() != 0 {
		t.Fatal("upstream EOF did not end the tunnel")
	}

	// A refused upgrade completes the request: the connection stays reusable.
	cc, p = newClientPipe(t, Limits{})
	sink2 := newRecSink()
	defer sink2.release()
	id = startStream(t, cc, sink2, getReq("Connection", "upgrade", "Upgrade", "websocket"), false)
	if err := p.feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")); err != nil {
		t.Fatal(err)
	}
	if err := cc.EncodeData(id, nil, true); err != nil {
		t.Fatal(err)
	}
	if !sink2.ended[id] || !cc.Reusable() || cc.ActiveStreams() != 0 {
		t.Fatalf("refused upgrade: ended %v reusable %v active %d", sink2.ended[id], cc.Reusable(), cc.ActiveStreams())
	}
}

func TestClientConnectTunnel(t *testing.T) {
	cc, p := newClientPipe(t, Limits{})
	sink := newRecSink()
	defer sink.release()
	id := startStream(t, cc, sink, protocol.NewHeaderList(protocol.Method, "CONNECT", protocol.Authority, "db:5432"), false)
	if err := p.feed([]byte("HTTP/1.1 200 Connection Established\r\n\r\nserver-first")); err != nil {
		t.Fatal(err)
	}
	if sink.body(id) != "server-first" || sink.ended[id] {
		t.Fatalf("body %q", sink.body(id))
	}
	p.conn.take()
	if err := cc.EncodeData(id, [][]byte{[]byte("client bytes")}, false); err != nil {
		t.Fatal(err)
	}
	if got := p.conn.take(); got != "client bytes" {
		t.Fatalf("got %q", got)
	}
}

// Hostile or broken responses reset the stream and end the connection; nothing of them
// reaches the sink as a head.
func TestClientHostileResponses(t *testing.T) {
	type hc struct {
		name, in string
		want     error
	}
	var cases []hc
	for _, c := range hostileResponses {
		cases = append(cases, hc{"head " + c.name, c.in, c.want})
	}
	for _, c := range hostileChunked {
		cases = append(cases, hc{"chunked " + c.name, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + c.in + "\r\n", c.want})
	}
	cases = append(cases,
		hc{"unsolicited 101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", ErrUnsolicitedUpgrade},
		hc{"1xx storm", strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", maxInterim+1), ErrTooManyInterim},
	)
	for _, c := range cases {
		cc, p := newClientPipe(t, Limits{})
		sink := newRecSink()
		id := startStream(t, cc, sink, getReq(), true)
		err := p.feed([]byte(c.in))
		if !errors.Is(err, protocol.ErrConnection) || !errors.Is(err, c.want) {
			t.Fatalf("%s: err %v, want %v", c.name, err, c.want)
		}
		if sink.resets[id] == nil || cc.Reusable() || cc.ActiveStreams() != 0 {
			t.Fatalf("%s: events %v reusable %v", c.name, sink.events, cc.Reusable())
		}
		isHead := strings.HasPrefix(c.name, "head ") || c.name == "unsolicited 101" || c.name == "1xx storm"
		if isHead && sink.headCount() != 0 {
			t.Fatalf("%s: head delivered: %v", c.name, sink.events)
		}
		if err := cc.Decode(&fakeView{buf: []byte("HTTP/1.1 200 OK\r\n\r\n")}); err == nil || sink.headCount() > 1 {
			t.Fatalf("%s: decoding went on after the error", c.name)
		}
		sink.release()
	}
}

func TestClientUnexpectedData(t *testing.T) {
	cc, p := newClientPipe(t, Limits{})
	if err := p.feed([]byte("HTTP/1.1 408 Request Timeout\r\n\r\n")); !errors.Is(err, ErrUnexpectedData) || cc.Reusable() {
		t.Fatalf("idle connection: %v", err)
	}
	// Bytes after a complete response.
	cc, p = newClientPipe(t, Limits{})
	sink := newRecSink()
	defer sink.release()
	startStream(t, cc, sink, getReq(), true)
	err := p.feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA"))
	if !errors.Is(err, ErrUnexpectedData) || sink.body(1) != "x" || !sink.ended[1] {
		t.Fatalf("err %v events %v", err, sink.events)
	}
}

func TestClientStreamRules(t *testing.T) {
	cc, p := newClientPipe(t, Limits{})
	sink := newRecSink()
	defer sink.release()
	if cc.MaxStreams() != 1 || cc.ActiveStreams() != 0 || !cc.Reusable() {
		t.Fatal("fresh codec state")
	}
	id := startStream(t, cc, sink, getReq(), true)
	if _, err := cc.NewStream(sink); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("second stream: %v", err)
	}
	if err := cc.EncodeHeaders(id, getReq(), true); !errors.Is(err, ErrStreamState) {
		t.Fatalf("head twice: %v", err)
	}
	cc.Reset(id, errors.New("abandoned"))
	if !p.conn.aborted || cc.Reusable() || cc.ActiveStreams() != 0 {
		t.Fatalf("reset: aborted %v reusable %v", p.conn.aborted, cc.Reusable())
	}
}

func TestClientTruncatedResponse(t *testing.T) {
	cc, p := newClientPipe(t, Limits{})
	sink := newRecSink()
	defer sink.release()
	startStream(t, cc, sink, getReq(), true)
	if err := p.feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")); err != nil {
		t.Fatal(err)
	}
	cc.OnEOF()
	if sink.ended[1] || cc.Reusable() {
		t.Fatal("a truncated Content-Length body was reported complete")
	}
}
