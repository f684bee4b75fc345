package http1

import (
	"errors"
	"strings"
	"testing"
)

// sentinelOf returns the ErrXxx sentinel inside err (nil for nil).
func sentinelOf(t testing.TB, err error) error {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *http1.Error", err, err)
	}
	return e.Err
}

func mustRequestParser(t testing.TB, l Limits) *RequestParser {
	t.Helper()
	p, err := NewRequestParser(l)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustResponseParser(t testing.TB, l Limits) *ResponseParser {
	t.Helper()
	p, err := NewResponseParser(l)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustChunked(t testing.TB, l Limits) *ChunkedDecoder {
	t.Helper()
	d, err := NewChunkedDecoder(l)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// crlf turns "\n" into "\r\n", for readable test messages.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// manyHeaders returns n field lines "X-Hi: v\r\n".
func manyHeaders(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("X-H")
		b.WriteString(strings.Repeat("a", i%7))
		b.WriteString(": v\r\n")
	}
	return b.String()
}

// describe renders a parsed head for comparisons.
func describe(v any) string {
	switch h := v.(type) {
	case *RequestHead:
		return describeRequest(h)
	case *ResponseHead:
		return describeResponse(h)
	}
	panic("describe: unexpected type")
}

func describeRequest(h *RequestHead) string {
	var b strings.Builder
	b.WriteString(string(h.Method) + " " + string(h.Target) + " " + h.Version.String() + " form=" + h.Form.String())
	b.WriteString(" authority=" + q(h.Authority) + " path=" + q(h.Path) + " host=" + q(h.Host))
	b.WriteString(" cl=" + itoa(h.ContentLength))
	if h.Chunked {
		b.WriteString(" chunked")
	}
	if h.KeepAlive {
		b.WriteString(" keepalive")
	}
	if h.Upgrade != nil {
		b.WriteString(" upgrade=" + q(h.Upgrade))
	}
	if h.Expect100 {
		b.WriteString(" expect100")
	}
	for _, f := range h.Headers {
		b.WriteString(" [" + string(f.Name) + "=" + q(f.Value) + "]")
	}
	return b.String()
}

func describeResponse(h *ResponseHead) string {
	var b strings.Builder
	b.WriteString(h.Version.String() + " " + itoa(int64(h.Status)) + " " + q(h.Reason))
	b.WriteString(" cl=" + itoa(h.ContentLength))
	if h.Chunked {
		b.WriteString(" chunked")
	}
	if h.KeepAlive {
		b.WriteString(" keepalive")
	}
	if h.Upgrade != nil {
		b.WriteString(" upgrade=" + q(h.Upgrade))
	}
	for _, f := range h.Headers {
		b.WriteString(" [" + string(f.Name) + "=" + q(f.Value) + "]")
	}
	return b.String()
}

func q(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return "\"" + string(b) + "\""
}

func itoa(n int64) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// typicalRequest is a ~300-byte browser-like request head.
const typicalRequest = "GET /api/v1/items?id=12345&sort=desc HTTP/1.1\r\n" +
	"Host: service.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: session=abcdef0123456789\r\n" +
	"Connection: keep-alive\r\n\r\n"

// typicalResponse is a common API response head.
const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Wed, 26 Nov 2026 08:00:00 GMT\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 1234\r\n" +
	"Cache-Control: no-cache, no-store\r\n" +
	"Server: upstream/1.0\r\n" +
	"X-Request-Id: 0f1e2d3c4b5a69788796a5b4c3d2e1f0\r\n\r\n"
