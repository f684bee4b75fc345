package http1

import (
	"strings"
	"testing"
)

func TestAppendRequestHeadRoundTrip(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	in := []byte(typicalRequest)
	if _, err := p.Parse(in, &h); err != nil {
		t.Fatal(err)
	}
	out, err := AppendRequestHead(nil, &h)
	if err != nil || string(out) != typicalRequest {
		t.Fatalf("re-encoded %q, %v", out, err)
	}
}

// A proxy forwarding an absolute-form HTTP/1.0 request: origin-form target, HTTP/1.1,
// hop-by-hop fields removed, one field added.
func TestAppendRequestHeadEdited(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	in := []byte("GET http://a.example/x?y HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 300\r\nAccept: */*\r\n\r\n")
	if _, err := p.Parse(in, &h); err != nil {
		t.Fatal(err)
	}
	kept := h.Headers[:0:0]
	for _, f := range h.Headers {
		if !h.Headers.IsHopByHop(f.Name) {
			kept = append(kept, f)
		}
	}
	kept = append(kept, Header{Name: []byte("X-Forwarded-For"), Value: []byte("192.0.2.1")})
	out := RequestHead{Method: h.Method, Target: h.Path, Version: HTTP11, Headers: kept}
	b, err := AppendRequestHead(make([]byte, 0, 256), &out)
	want := "GET /x?y HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n"
	if err != nil || string(b) != want {
		t.Fatalf("got %q, %v\nwant %q", b, err, want)
	}
}

func TestAppendRejectsInjection(t *testing.T) {
	good := func() RequestHead {
		return RequestHead{Method: []byte("GET"), Target: []byte("/"), Version: HTTP11,
			Headers: Headers{{Name: []byte("Host"), Value: []byte("a")}}}
	}
	cases := []struct {
		name string
		edit func(*RequestHead)
		want error
	}{
		{"CRLF in value", func(h *RequestHead) { h.Headers[0].Value = []byte("a\r\nTransfer-Encoding: chunked") }, ErrInvalidHeaderValue},
		{"LF in value", func(h *RequestHead) { h.Headers[0].Value = []byte("a\nb") }, ErrInvalidHeaderValue},
		{"NUL in value", func(h *RequestHead) { h.Headers[0].Value = []byte("a\x00") }, ErrInvalidHeaderValue},
		{"leading space in value", func(h *RequestHead) { h.Headers[0].Value = []byte(" a") }, ErrInvalidHeaderValue},
		{"trailing tab in value", func(h *RequestHead) { h.Headers[0].Value = []byte("a\t") }, ErrInvalidHeaderValue},
		{"colon in name", func(h *RequestHead) { h.Headers[0].Name = []byte("Host:") }, ErrInvalidHeaderName},
		{"space in name", func(h *RequestHead) { h.Headers[0].Name = []byte("Ho st") }, ErrInvalidHeaderName},
		{"empty name", func(h *RequestHead) { h.Headers[0].Name = nil }, ErrEmptyHeaderName},
		{"bad method", func(h *RequestHead) { h.Method = []byte("GET /x HTTP/1.1\r\n") }, ErrInvalidMethod},
		{"empty method", func(h *RequestHead) { h.Method = nil }, ErrInvalidMethod},
		{"space in target", func(h *RequestHead) { h.Target = []byte("/a HTTP/1.1") }, ErrInvalidTarget},
		{"empty target", func(h *RequestHead) { h.Target = nil }, ErrInvalidTarget},
		{"bad version", func(h *RequestHead) { h.Version = 20 }, ErrUnsupportedVersion},
	}
	for _, tc := range cases {
		h := good()
		tc.edit(&h)
		dst := []byte("prefix")
		out, err := AppendRequestHead(dst, &h)
		if sentinelOf(t, err) != tc.want || string(out) != "prefix" {
			t.Errorf("%s: %q %v, want %v and dst unchanged", tc.name, out, err, tc.want)
		}
	}
	resp := []struct {
		h    ResponseHead
		want error
	}{
		{ResponseHead{Version: HTTP11, Status: 42}, ErrInvalidStatus},
		{ResponseHead{Version: HTTP11, Status: 1000}, ErrInvalidStatus},
		{ResponseHead{Version: 0, Status: 200}, ErrUnsupportedVersion},
		{ResponseHead{Version: HTTP11, Status: 200, Reason: []byte("OK\r\nSet-Cookie: x")}, ErrInvalidReason},
		{ResponseHead{Version: HTTP11, Status: 200, Headers: Headers{{Name: []byte("X"), Value: []byte("\r")}}}, ErrInvalidHeaderValue},
	}
	for i, tc := range resp {
		out, err := AppendResponseHead(nil, &tc.h)
		if sentinelOf(t, err) != tc.want || len(out) != 0 {
			t.Errorf("response %d: %q %v, want %v", i, out, err, tc.want)
		}
	}
}

func TestAppendResponseHead(t *testing.T) {
	p := mustResponseParser(t, Limits{})
	var h ResponseHead
	if _, err := p.Parse([]byte(typicalResponse), &h); err != nil {
		t.Fatal(err)
	}
	out, err := AppendResponseHead(nil, &h)
	if err != nil || string(out) != typicalResponse {
		t.Fatalf("%q %v", out, err)
	}
	empty := ResponseHead{Version: HTTP10, Status: 204}
	out, err = AppendResponseHead(nil, &empty)
	if err != nil || string(out) != "HTTP/1.0 204 \r\n\r\n" {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := p.Parse(out, &h); err != nil || h.Status != 204 || len(h.Reason) != 0 {
		t.Fatalf("re-parse: %v %s", err, describe(&h))
	}
}

func TestAppendNoAlloc(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var req RequestHead
	if _, err := p.Parse([]byte(typicalRequest), &req); err != nil {
		t.Fatal(err)
	}
	rp := mustResponseParser(t, Limits{})
	var resp ResponseHead
	if _, err := rp.Parse([]byte(typicalResponse), &resp); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	trailers := Headers{{Name: []byte("X-Checksum"), Value: []byte("abc")}}
	allocs := testing.AllocsPerRun(100, func() {
		b, err := AppendRequestHead(buf[:0], &req)
		if err != nil {
			t.Fatal(err)
		}
		b, err = AppendResponseHead(b, &resp)
		if err != nil {
			t.Fatal(err)
		}
		b = AppendChunkHeader(b, 12345)
		b = AppendChunkEnd(b)
		if _, err = AppendLastChunk(b, trailers); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

func TestChunkFraming(t *testing.T) {
	if got := string(AppendChunkHeader([]byte("x"), 0x1a2b)); got != "x1a2b\r\n" {
		t.Fatalf("%q", got)
	}
	if got := string(AppendChunkHeader([]byte("x"), 0)); got != "x" {
		t.Fatalf("size 0: %q", got)
	}
	if got := string(AppendChunkEnd(nil)); got != "\r\n" {
		t.Fatalf("%q", got)
	}
	last, err := AppendLastChunk(nil, Headers{{Name: []byte("X-A"), Value: []byte("1")}, {Name: []byte("X-B"), Value: nil}})
	if err != nil || string(last) != "0\r\nX-A: 1\r\nX-B: \r\n\r\n" {
		t.Fatalf("%q %v", last, err)
	}
	if last, err := AppendLastChunk(nil, nil); err != nil || string(last) != "0\r\n\r\n" {
		t.Fatalf("%q %v", last, err)
	}
	for _, name := range []string{"Content-Length", "transfer-encoding", "HOST"} {
		if out, err := AppendLastChunk([]byte("p"), Headers{{Name: []byte(name), Value: []byte("1")}}); sentinelOf(t, err) != ErrForbiddenTrailer || string(out) != "p" {
			t.Fatalf("%s: %q %v", name, out, err)
		}
	}
	if _, err := AppendLastChunk(nil, Headers{{Name: []byte("X"), Value: []byte("a\r\nb")}}); sentinelOf(t, err) != ErrInvalidHeaderValue {
		t.Fatal(err)
	}
	// Encoded framing decodes back to the same body and trailers.
	body := strings.Repeat("0123456789", 700)
	var enc []byte
	for i := 0; i < len(body); i += 999 {
		piece := body[i:min(i+999, len(body))]
		enc = AppendChunkHeader(enc, len(piece))
		enc = append(enc, piece...)
		enc = AppendChunkEnd(enc)
	}
	enc, err = AppendLastChunk(enc, Headers{{Name: []byte("X-Sum"), Value: []byte("7000")}})
	if err != nil {
		t.Fatal(err)
	}
	d := mustChunked(t, Limits{})
	got, trailers, consumed, done, err := decodeStream(d, enc, 333)
	if err != nil || !done || got != body || trailers != "[X-Sum=7000]" || consumed != len(enc) {
		t.Fatalf("round trip: len %d trailers %q consumed %d done %v err %v", len(got), trailers, consumed, done, err)
	}
}
