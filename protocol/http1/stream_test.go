package http1

import (
	"fmt"
	"strings"
	"testing"
)

// requestStream is a miniature codec: it consumes a connection's bytes the way an OnData
// callback would (parse a head, then its body, then the next head) and records what it saw.
// Bytes left unconsumed stay pending and are offered again with the next delivery.
type requestStream struct {
	p       *RequestParser
	d       *ChunkedDecoder
	length  LengthDecoder
	head    RequestHead
	inBody  BodyKind
	body    strings.Builder
	events  []string
	pending []byte
}

func newRequestStream(t testing.TB) *requestStream {
	return &requestStream{p: mustRequestParser(t, Limits{}), d: mustChunked(t, Limits{})}
}

// deliver appends newly read bytes and consumes as much as possible. Like a transport that
// moves unconsumed bytes, it copies them into a fresh buffer first.
func (s *requestStream) deliver(b []byte) error {
	s.pending = append(append(make([]byte, 0, len(s.pending)+len(b)), s.pending...), b...)
	for {
		n, err := s.step(s.pending)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		s.pending = s.pending[n:]
	}
}

func (s *requestStream) step(in []byte) (int, error) {
	switch s.inBody {
	case BodyNone:
		if len(in) == 0 {
			return 0, nil
		}
		n, err := s.p.Parse(in, &s.head)
		if n == 0 || err != nil {
			return 0, err
		}
		s.events = append(s.events, fmt.Sprintf("head %s %s", s.head.Method, s.head.Path))
		kind, length := RequestBody(&s.head)
		s.inBody = kind
		s.length.Reset(length)
		s.d.Reset()
		s.body.Reset()
		return n, nil
	case BodyLength:
		data := s.length.Decode(in)
		s.body.Write(data)
		if s.length.Done() {
			s.endBody("")
		}
		return len(data), nil
	case BodyChunked:
		data, n, err := s.d.Decode(in)
		if err != nil {
			return 0, err
		}
		s.body.Write(data)
		if s.d.Done() {
			s.endBody(renderHeaders(s.d.Trailers()))
		}
		return n, nil
	}
	return 0, fmt.Errorf("unexpected body kind %v", s.inBody)
}

func (s *requestStream) endBody(trailers string) {
	s.events = append(s.events, fmt.Sprintf("body %q %s", s.body.String(), trailers))
	s.inBody = BodyNone
}

// A pipelined stream of requests with every body kind gives the same events however the
// bytes are split into reads.
func TestStreamSplitInvariance(t *testing.T) {
	stream := []byte("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 9\r\n\r\n" +
		"GET /c HTTP/1.1\r\nHost: h\r\n\r\n" +
		"\r\nGET /d HTTP/1.0\r\n\r\n")
	whole := newRequestStream(t)
	if err := whole.deliver(stream); err != nil {
		t.Fatal(err)
	}
	want := strings.Join(whole.events, "\n")
	if want != "head POST /a\nbody \"hello\" \nhead POST /b\nbody \"abcde\" [X-T=9]\nhead GET /c\nhead GET /d" {
		t.Fatalf("events:\n%s", want)
	}
	for size := 1; size <= 16; size++ {
		s := newRequestStream(t)
		for off := 0; off < len(stream); off += size {
			if err := s.deliver(stream[off:min(off+size, len(stream))]); err != nil {
				t.Fatalf("reads of %d: %v", size, err)
			}
		}
		if got := strings.Join(s.events, "\n"); got != want || len(s.pending) != 0 {
			t.Fatalf("reads of %d bytes:\n%s\npending %q", size, got, s.pending)
		}
	}
	for split := 0; split <= len(stream); split++ {
		s := newRequestStream(t)
		if err := s.deliver(stream[:split]); err != nil {
			t.Fatal(err)
		}
		if err := s.deliver(stream[split:]); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(s.events, "\n"); got != want {
			t.Fatalf("split %d:\n%s", split, got)
		}
	}
}

// Example shows the shape of a codec's read loop over a transport view: parse a head, pick
// the body framing, decode the body without copying, then go on to the next message.
func Example() {
	p, _ := NewRequestParser(Limits{})
	d, _ := NewChunkedDecoder(Limits{})
	var h RequestHead
	in := []byte("POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

	n, err := p.Parse(in, &h)
	if err != nil {
		fmt.Println("reply", StatusCode(err), "and close:", err)
		return
	}
	fmt.Printf("%s %s host=%s\n", h.Method, h.Path, h.Authority)
	in = in[n:]
	if kind, _ := RequestBody(&h); kind == BodyChunked {
		for !d.Done() {
			data, n, err := d.Decode(in)
			if err != nil {
				fmt.Println("reply 400 and close:", err)
				return
			}
			if n == 0 {
				break // wait for more bytes
			}
			if len(data) > 0 {
				fmt.Printf("body %q\n", data) // a view into in: forward it, don't keep it
			}
			in = in[n:]
		}
	}
	out, _ := AppendRequestHead(nil, &RequestHead{Method: h.Method, Target: h.Path, Version: HTTP11,
		Headers: Headers{{Name: []byte("Host"), Value: h.Authority}, {Name: []byte("Content-Length"), Value: []byte("11")}}})
	fmt.Printf("%q\n", out)
	// Output:
	// POST /upload host=example.com
	// body "hello"
	// body " world"
	// "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\n"
}
