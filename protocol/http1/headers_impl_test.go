package http1

import (
	"errors"
	"strings"
	"testing"

	"github.com/strait-proxy/strait/protocol"
)

func parseForHeaders(t *testing.T, in string) *blockHeaders {
	t.Helper()
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	buf := []byte(in)
	n, err := p.Parse(buf, &h)
	if err != nil || n == 0 {
		t.Fatalf("parse: %d %v", n, err)
	}
	hs := newRequestHeaders(buf[:n], &h)
	// The block is a copy: scribbling over the input must not show through.
	for i := range buf {
		buf[i] = '#'
	}
	return hs
}

func TestBlockHeadersRequestForms(t *testing.T) {
	cases := []struct{ in, want string }{
		{"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n", ":method=GET :scheme=http :authority=h :path=/a?b=1 X=1"},
		{"GET https://Ex.com/p HTTP/1.1\r\nHost: ex.com:443\r\n\r\n", ":method=GET :scheme=https :authority=Ex.com :path=/p"},
		{"GET http://ex.com HTTP/1.1\r\nHost: ex.com\r\n\r\n", ":method=GET :scheme=http :authority=ex.com :path=/"},
		{"GET http://ex.com?q HTTP/1.0\r\n\r\n", ":method=GET :scheme=http :authority=ex.com :path=/?q"},
		{"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", ":method=OPTIONS :scheme=http :authority=h :path=*"},
		{"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", ":method=CONNECT :scheme=http :authority=h:443"},
		{"GET / HTTP/1.0\r\nEmpty:\r\n\r\n", ":method=GET :scheme=http :path=/ Empty="},
		{"GET / HTTP/1.1\r\nHost:\r\n\r\n", ":method=GET :scheme=http :authority= :path=/"},
	}
	for _, c := range cases {
		h := parseForHeaders(t, c.in)
		if got := renderHead(h); got != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.in, got, c.want)
		}
		h.Release()
	}
}

func TestBlockHeadersEdits(t *testing.T) {
	h := parseForHeaders(t, "POST /p HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX-Dup: 1\r\nx-dup: 2\r\nContent-Length: 0\r\n\r\n")
	defer h.Release()
	if v, _ := h.Get("X-DUP"); v != "1" {
		t.Fatalf("first duplicate: %q", v)
	}
	if _, ok := h.Get("missing"); ok {
		t.Fatal("found a missing field")
	}
	h.Add("x-dup", "3")
	h.Del("X-Dup")
	if _, ok := h.Get("x-dup"); ok {
		t.Fatal("Del left a value (block or overlay)")
	}
	h.Set("accept", "b")
	h.Set("Accept", "c")
	h.Del(protocol.Scheme)
	h.Add(protocol.Method, "PUT") // a second :method, from the overlay
	if v, _ := h.Get("accept"); v != "c" {
		t.Fatalf("Set twice: %q", v)
	}
	h.Set("HOST", "new")
	if v, _ := h.Get(protocol.Authority); v != "new" {
		t.Fatalf("host alias: %q", v)
	}
	want := ":method=POST :path=/p :method=PUT :authority=new Content-Length=0 Accept=c"
	if got := renderHead(h); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Range stops when asked.
	n := 0
	h.Range(func(string, string) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Range went on after false: %d", n)
	}
}

func TestBlockHeadersResponseAndTrailers(t *testing.T) {
	p := mustResponseParser(t, Limits{})
	var r ResponseHead
	in := []byte("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nHost: not-an-alias\r\n\r\n")
	n, err := p.Parse(in, &r)
	if err != nil {
		t.Fatal(err)
	}
	h := newResponseHeaders(in[:n], &r)
	if got := renderHead(h); got != ":status=404 Content-Type=text/plain Host=not-an-alias" {
		t.Fatalf("response: %s", got)
	}
	h.Set(protocol.Status, "502")
	if got := renderHead(h); got != ":status=502 Content-Type=text/plain Host=not-an-alias" {
		t.Fatalf("after Set: %s", got)
	}
	h.Release()

	d := mustChunked(t, Limits{})
	body := []byte("0\r\nX-A: 1\r\nX-B:\r\n\r\n")
	_, m, err := d.Decode(body)
	if err != nil || !d.Done() {
		t.Fatal(err)
	}
	tr := d.Trailers()
	th := newTrailerHeaders(body, int(spanOf(body, 0, tr[0].Name).off), m, tr)
	if got := renderHead(th); got != "X-A=1 X-B=" {
		t.Fatalf("trailers: %s", got)
	}
	th.Release()
}

func TestDetect(t *testing.T) {
	cases := []struct {
		in   string
		want protocol.Match
	}{
		{"GET / HTTP/1.1\r\n", protocol.Yes},
		{"GET ", protocol.Yes},
		{"POST /x", protocol.Yes},
		{"DELETE /", protocol.Yes},
		{"OPTIONS * HTTP/1.1", protocol.Yes},
		{"CONNECT a:1 HTTP/1.1", protocol.Yes},
		{"\r\nGET / HTTP/1.1", protocol.Yes},
		{"PROPFIND / HTTP/1.1", protocol.Yes},
		{"", protocol.NeedMore},
		{"G", protocol.NeedMore},
		{"GE", protocol.NeedMore},
		{"P", protocol.NeedMore},
		{"PR", protocol.NeedMore},
		{"\r", protocol.NeedMore},
		{"\r\n", protocol.NeedMore},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", protocol.No},
		{"PRI", protocol.No},
		{"GETX / HTTP/1.1", protocol.No},
		{"get / HTTP/1.1", protocol.No},
		{"\x16\x03\x01\x02\x00", protocol.No}, // TLS ClientHello
		{"\x01\x01\x00\x01", protocol.No},     // Bolt request
		{"\xda\xbb\xc2\x00", protocol.No},     // Dubbo magic
		{"HTTP/1.1 200 OK", protocol.No},
	}
	for _, c := range cases {
		if got := Detect([]byte(c.in)); got != c.want {
			t.Errorf("Detect(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestNewCodecRegistry(t *testing.T) {
	r := protocol.NewRegistry()
	c := NewCodec(Limits{})
	if err := r.Register(c); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Lookup("http1"); !ok || got.Name != CodecName || got.NewClient == nil {
		t.Fatalf("lookup: %+v %v", got, ok)
	}
	// Invalid limits fall back to the defaults: the codec still works.
	bad := NewCodec(Limits{MaxHeadBytes: -1})
	sink := newRecSink()
	defer sink.release()
	conn := &fakeConn{}
	s := bad.NewServer(conn, sink)
	if err := s.Decode(&fakeView{buf: []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")}); err != nil || sink.headCount() != 1 {
		t.Fatalf("codec with invalid limits: %v", err)
	}
	// Configured limits are enforced.
	small := NewCodec(Limits{MaxHeadBytes: 64, MaxStartLine: 32})
	s = small.NewServer(&fakeConn{}, newRecSink())
	err := s.Decode(&fakeView{buf: []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("a", 80) + "\r\n\r\n")})
	if !errors.Is(err, ErrHeadTooLarge) {
		t.Fatalf("a head over MaxHeadBytes: %v", err)
	}
}
