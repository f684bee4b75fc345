package http1

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"

	"github.com/strait-proxy/strait/protocol"
)

// An idle keep-alive connection holds only its small codec struct: every kind of exchange
// gives its pooled state back once it is over, and a head that arrives in pieces keeps it
// (with its progress) until it is complete.
func TestServerIdleHoldsNoExchange(t *testing.T) {
	if n := unsafe.Sizeof(serverCodec{}); n > 80 {
		t.Errorf("serverCodec is %d bytes; an idle connection should hold at most 80", n)
	}
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if s.x != nil {
		t.Fatal("a new connection holds an exchange")
	}
	idle := func(step string) {
		t.Helper()
		if s.x != nil {
			t.Fatalf("%s: the idle connection still holds its exchange", step)
		}
		if p.conn.closed {
			t.Fatalf("%s: connection closed", step)
		}
	}
	feed := func(in string) {
		t.Helper()
		if err := p.feed([]byte(in)); err != nil {
			t.Fatal(err)
		}
	}

	feed("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
	respond(t, s, 1, "200", "one")
	idle("Content-Length response")

	feed("POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
	respond(t, s, 2, "200", "")
	idle("request body")

	// A chunked request with trailers, a chunked response with trailers, head held until
	// the first body bytes.
	feed("POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
	if err := s.EncodeHeaders(3, protocol.NewHeaderList(protocol.Status, "200"), false); err != nil {
		t.Fatal(err)
	}
	if s.x == nil {
		t.Fatal("a held head without its exchange")
	}
	if err := s.EncodeData(3, [][]byte{[]byte("xyz")}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeTrailers(3, protocol.NewHeaderList("grpc-status", "0")); err != nil {
		t.Fatal(err)
	}
	idle("chunked both ways")

	// A head in three pieces: the scan progress survives between reads.
	feed("GET /4 HTTP/1.1\r\nHo")
	if s.x == nil || s.x.scan == (scanner{}) {
		t.Fatal("a partial head lost its progress")
	}
	feed("st: a\r\nX-Y: ")
	feed("z\r\n\r\n")
	if got := sink.events[len(sink.events)-1]; got != "H4 :method=GET :scheme=http :authority=a :path=/4 X-Y=z end=true" {
		t.Fatalf("head in pieces: %q", got)
	}
	respond(t, s, 4, "204", "")
	idle("head in pieces")

	// Pipelined requests answered synchronously from OnHeaders (local replies): the
	// exchange is given back when Decode returns.
	sink.onHeaders = func(id protocol.StreamID, _ protocol.Headers, _ bool) { respond(t, s, id, "404", "") }
	feed("GET /5 HTTP/1.1\r\nHost: a\r\n\r\nGET /6 HTTP/1.1\r\nHost: a\r\n\r\n")
	sink.onHeaders = nil
	idle("local replies inside Decode")

	// 100-continue is written from the exchange's scratch buffer too.
	feed("PUT /7 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	feed("ok")
	respond(t, s, 7, "201", "")
	idle("100-continue")

	want := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none" +
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\ngrpc-status: 0\r\n\r\n" +
		"HTTP/1.1 204 No Content\r\n\r\n" +
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 100 Continue\r\n\r\n" +
		"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
	if got := p.conn.take(); got != want {
		t.Fatalf("responses:\n%q\nwant\n%q", got, want)
	}
}

// A failed connection keeps its exchange: the error it answers with lives there.
func TestServerFailedKeepsError(t *testing.T) {
	s, p, sink := newServerPipe(t, Limits{})
	defer sink.release()
	if err := p.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")); err == nil {
		t.Fatal("duplicate Host accepted")
	}
	if s.connErr() == nil {
		t.Fatal("the connection error was lost")
	}
	if err := s.EncodeHeaders(1, protocol.NewHeaderList(protocol.Status, "200"), true); err == nil {
		t.Fatal("EncodeHeaders after a connection error succeeded")
	}
}

func TestClientIdleHoldsNoExchange(t *testing.T) {
	if n := unsafe.Sizeof(clientCodec{}); n > 96 {
		t.Errorf("clientCodec is %d bytes, want at most 96", n)
	}
	c, p := newClientPipe(t, Limits{})
	sink := newRecSink()
	defer sink.release()
	req := protocol.NewHeaderList(protocol.Method, "GET", protocol.Authority, "a", protocol.Path, "/")
	for i, resp := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	} {
		id, err := c.NewStream(sink)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.EncodeHeaders(id, req, true); err != nil {
			t.Fatal(err)
		}
		// The response in two reads: the exchange keeps the scan progress between them.
		half := len(resp) / 2
		if err := p.feed([]byte(resp[:half])); err != nil {
			t.Fatal(err)
		}
		if c.x == nil {
			t.Fatalf("response %d: exchange released mid-response", i)
		}
		if err := p.feed([]byte(resp[half:])); err != nil {
			t.Fatal(err)
		}
		if !sink.ended[id] {
			t.Fatalf("response %d did not end: %v", i, sink.events)
		}
		if c.x != nil {
			t.Fatalf("response %d: the idle connection still holds its exchange", i)
		}
	}
	if !c.Reusable() || p.conn.closed {
		t.Fatalf("reusable=%v closed=%v", c.Reusable(), p.conn.closed)
	}
	if got := p.conn.take(); strings.Count(got, "GET / HTTP/1.1\r\nHost: a\r\n") != 3 {
		t.Fatalf("requests: %q", got)
	}
	// A reset stream gives it back too.
	id, err := c.NewStream(sink)
	if err != nil {
		t.Fatal(err)
	}
	c.Reset(id, protocol.ErrConnection)
	if c.x != nil {
		t.Fatal("a reset stream kept its exchange")
	}
}

// An exchange going back to the pool drops every reference into heads and a scratch buffer
// grown by a huge head.
func TestExchangeReset(t *testing.T) {
	x := exchangePool.Get().(*exchange)
	x.enc.begin(protocol.NewHeaderList(protocol.Status, "200", "connection", "x"))
	x.enc.dst = append(x.enc.dst, bytes.Repeat([]byte("a"), maxPooledScratch+1)...)
	x.vec = append(x.vec, x.enc.dst)
	x.scan.pos, x.remaining, x.err = 7, 9, protocol.ErrConnection
	x.chunked.trailers = append(x.chunked.trailers, Header{Name: []byte("a")})
	x.reset()
	if x.enc.dst != nil || x.enc.status != "" || len(x.enc.conn) != 0 || x.vec[:1][0] != nil ||
		x.scan != (scanner{}) || x.remaining != 0 || x.err != nil || x.chunked.trailers[:1][0].Name != nil {
		t.Fatalf("reset left state behind: %+v", x)
	}
	// The encoder still works after reset (its callbacks were bound once).
	x.enc.begin(protocol.NewHeaderList(protocol.Status, "204"))
	if !x.enc.hasStatus || x.enc.status != "204" {
		t.Fatal("encoder callbacks lost")
	}
	x.reset()
	exchangePool.Put(x)
}
