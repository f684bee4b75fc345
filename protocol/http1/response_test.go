package http1

import (
	"errors"
	"strings"
	"testing"
)

var hostileResponses = []struct {
	name string
	in   string
	want error
}{
	{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", ErrContentLengthWithTransferEncoding},
	{"duplicate CL equal", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", ErrDuplicateContentLength},
	{"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", ErrDuplicateContentLength},
	{"CL sign", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", ErrInvalidContentLength},
	{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE duplicate", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ErrDuplicateTransferEncoding},
	{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncodingHTTP10},
	{"TE space before colon", "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n", ErrSpaceBeforeColon},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", ErrObsFold},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", ErrBareLF},
	{"bare CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n", ErrBareCR},
	{"bare CR line", "HTTP/1.0 100\r\n\r\r\n\r\n", ErrBareCR},
	{"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", ErrInvalidReason},
	{"NUL in value", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", ErrInvalidHeaderValue},
	{"status two digits", "HTTP/1.1 20 OK\r\n\r\n", ErrInvalidStatus},
	{"status four digits", "HTTP/1.1 2000 OK\r\n\r\n", ErrInvalidStatus},
	{"status 099", "HTTP/1.1 099 X\r\n\r\n", ErrInvalidStatus},
	{"status letters", "HTTP/1.1 2x0 OK\r\n\r\n", ErrInvalidStatus},
	{"HTTP/2", "HTTP/2.0 200 OK\r\n\r\n", ErrUnsupportedVersion},
	{"garbage", "ICY 200 OK\r\n\r\n", ErrInvalidVersion},
	{"no space after version", "HTTP/1.1200 OK\r\n\r\n", ErrMalformedStatusLine},
	{"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", ErrMalformedStatusLine},
	{"too many headers", "HTTP/1.1 200 OK\r\n" + manyHeaders(101) + "\r\n", ErrTooManyHeaders},
	{"head too large", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("x", 61<<10) + "\r\n\r\n", ErrHeadTooLarge},
	{"status line too long", "HTTP/1.1 200 " + strings.Repeat("x", 9<<10) + "\r\n\r\n", ErrStartLineTooLong},
}

var validResponses = []struct {
	name string
	in   string
	want string
}{
	{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", `HTTP/1.1 200 "OK" cl=2 keepalive [Content-Length="2"]`},
	{"empty reason", "HTTP/1.1 204 \r\n\r\n", `HTTP/1.1 204 "" cl=-1 keepalive`},
	{"no reason no space", "HTTP/1.1 304\r\nETag: \"x\"\r\n\r\n", `HTTP/1.1 304 <nil> cl=-1 keepalive [ETag=""x""]`},
	{"reason with spaces and obs-text", "HTTP/1.1 404 Not \xe2\x80\x94 Found\r\n\r\n", "HTTP/1.1 404 \"Not \xe2\x80\x94 Found\" cl=-1 keepalive"},
	{"HTTP/1.0 close", "HTTP/1.0 200 OK\r\n\r\n", `HTTP/1.0 200 "OK" cl=-1`},
	{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", `HTTP/1.0 200 "OK" cl=0 keepalive [Connection="keep-alive"] [Content-Length="0"]`},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", `HTTP/1.1 200 "OK" cl=-1 chunked keepalive [Transfer-Encoding="chunked"]`},
	{"close", "HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n", `HTTP/1.1 500 "Oops" cl=-1 [Connection="close"]`},
	{"101", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", `HTTP/1.1 101 "Switching Protocols" cl=-1 keepalive upgrade="websocket" [Connection="Upgrade"] [Upgrade="websocket"]`},
	{"100", "HTTP/1.1 100 Continue\r\n\r\n", `HTTP/1.1 100 "Continue" cl=-1 keepalive`},
	{"status 599", "HTTP/1.1 599 X\r\n\r\n", `HTTP/1.1 599 "X" cl=-1 keepalive`},
	{"no Host needed", "HTTP/1.1 200 OK\r\nHost: x\r\nHost: y\r\n\r\n", `HTTP/1.1 200 "OK" cl=-1 keepalive [Host="x"] [Host="y"]`},
}

func TestResponseHostile(t *testing.T) {
	p := mustResponseParser(t, Limits{})
	var h ResponseHead
	for _, tc := range hostileResponses {
		t.Run(tc.name, func(t *testing.T) {
			n, err := p.Parse([]byte(tc.in), &h)
			if n != 0 || sentinelOf(t, err) != tc.want {
				t.Fatalf("Parse = %d, %v; want %v", n, err, tc.want)
			}
			q := mustResponseParser(t, Limits{})
			var err2 error
			in := []byte(tc.in)
			for i := 1; i <= len(in) && err2 == nil; i++ {
				var k int
				k, err2 = q.Parse(in[:i], &h)
				if k != 0 {
					t.Fatalf("prefix %d complete", i)
				}
			}
			if sentinelOf(t, err2) != tc.want {
				t.Fatalf("bytewise: %v, want %v", err2, tc.want)
			}
		})
	}
}

func TestResponseValid(t *testing.T) {
	p := mustResponseParser(t, Limits{})
	var h ResponseHead
	for _, tc := range validResponses {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			n, err := p.Parse(in, &h)
			if err != nil || n != strings.Index(tc.in, "\r\n\r\n")+4 {
				t.Fatalf("Parse = %d, %v", n, err)
			}
			if describe(&h) != tc.want {
				t.Fatalf("head\n got %s\nwant %s", describe(&h), tc.want)
			}
			want := describe(&h)
			// Byte by byte and at every split, from copied buffers.
			q := mustResponseParser(t, Limits{})
			for split := 0; split <= n; split++ {
				got, err := q.Parse(append([]byte(nil), in[:split]...), &h)
				if err != nil || (got != 0) != (split == n) {
					t.Fatalf("split %d prefix: %d %v", split, got, err)
				}
				if got == 0 {
					got, err = q.Parse(append([]byte(nil), in...), &h)
				}
				if err != nil || got != n || describe(&h) != want {
					t.Fatalf("split %d: %d %v %s", split, got, err, describe(&h))
				}
			}
		})
	}
}

func TestResponseNoAlloc(t *testing.T) {
	p := mustResponseParser(t, Limits{})
	var h ResponseHead
	in := []byte(typicalResponse)
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := p.Parse(in, &h); err != nil || n != len(in) {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per parse", allocs)
	}
}

func TestConstructorsRejectBadLimits(t *testing.T) {
	bad := Limits{MaxHeaders: -1}
	if _, err := NewRequestParser(bad); !errors.Is(err, ErrInvalidLimits) {
		t.Fatalf("request parser: %v", err)
	}
	if _, err := NewResponseParser(bad); !errors.Is(err, ErrInvalidLimits) {
		t.Fatalf("response parser: %v", err)
	}
	if _, err := NewChunkedDecoder(bad); !errors.Is(err, ErrInvalidLimits) {
		t.Fatalf("chunked decoder: %v", err)
	}
}

// Reset drops a partial head, so a parser can be reused for an unrelated exchange.
func TestResponseParserReset(t *testing.T) {
	p := mustResponseParser(t, Limits{})
	var h ResponseHead
	if n, err := p.Parse([]byte("HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 100)), &h); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	p.Reset()
	in := []byte("HTTP/1.1 404 Nope\r\n\r\n")
	if n, err := p.Parse(in, &h); n != len(in) || err != nil || h.Status != 404 {
		t.Fatal(n, err, describe(&h))
	}
}
