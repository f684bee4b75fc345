//go:build !race

// The race detector makes sync.Pool drop objects at random, so allocation counts of pooled
// paths are only meaningful without it.

package http1

import (
	"testing"

	"github.com/strait-proxy/strait/protocol"
)

// TestCodecSteadyStateNoAlloc pins the 0 allocs/op of the hot paths measured above.
func TestCodecSteadyStateNoAlloc(t *testing.T) {
	conn := &fakeConn{}
	sink := &benchSink{}
	s := newServer(conn, sink, Limits{}.WithDefaults())
	in := []byte(typicalRequest)
	v := &fakeView{buf: in}
	resp := protocol.NewHeaderList(protocol.Status, "200", "content-length", "12")
	body := [][]byte{[]byte("hello world\n")}
	_ = s.Flush()
	server := func() {
		v.off = 0
		if err := s.Decode(v); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{protocol.Method, protocol.Path, "user-agent", "host"} {
			if _, ok := sink.head.Get(n); !ok {
				t.Fatalf("Get(%q) failed", n)
			}
		}
		if err := s.EncodeHeaders(s.id, resp, false); err != nil {
			t.Fatal(err)
		}
		if err := s.EncodeData(s.id, body, true); err != nil {
			t.Fatal(err)
		}
		sink.head.Release()
		conn.out.Reset()
	}
	server()
	if n := testing.AllocsPerRun(200, server); n != 0 {
		t.Errorf("server exchange: %v allocs", n)
	}
	c := newClient(&fakeConn{}, Limits{}.WithDefaults())
	req := protocol.NewHeaderList(protocol.Method, "GET", protocol.Authority, "a", protocol.Path, "/", "accept", "*/*")
	rin := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	rv := &fakeView{buf: rin}
	client := func() {
		id, err := c.NewStream(sink)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.EncodeHeaders(id, req, true); err != nil {
			t.Fatal(err)
		}
		rv.off = 0
		if err := c.Decode(rv); err != nil {
			t.Fatal(err)
		}
		sink.head.Release()
	}
	client()
	if n := testing.AllocsPerRun(200, client); n != 0 {
		t.Errorf("client exchange: %v allocs", n)
	}
}

// Reading a decoded head allocates nothing; neither does a pooled decode + release cycle.
func TestBlockHeadersNoAlloc(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var r RequestHead
	in := []byte(typicalRequest)
	n, err := p.Parse(in, &r)
	if err != nil {
		t.Fatal(err)
	}
	h := newRequestHeaders(in[:n], &r)
	count := 0
	fn := func(string, string) bool { count++; return true }
	read := func() {
		for _, name := range []string{protocol.Method, protocol.Path, protocol.Authority, "host", "cookie", "Accept-Language", "nope"} {
			h.Get(name)
		}
		h.Range(fn)
	}
	if a := testing.AllocsPerRun(100, read); a != 0 {
		t.Errorf("reading: %v allocs", a)
	}
	h.Release()
	cycle := func() {
		hs := newRequestHeaders(in[:n], &r)
		hs.Release()
	}
	cycle()
	if a := testing.AllocsPerRun(100, cycle); a != 0 {
		t.Errorf("copy + release: %v allocs", a)
	}
}
