package stream

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/strait-proxy/strait/protocol"
)

// gRPC status codes a local reply can carry (grpc/grpc doc/statuscodes.md).
const (
	grpcUnknown          = 2
	grpcDeadlineExceeded = 4
	grpcPermissionDenied = 7
	grpcUnimplemented    = 12
	grpcInternal         = 13
	grpcUnavailable      = 14
	grpcUnauthenticated  = 16
)

// isGRPC reports whether a request is a gRPC call: its content-type is application/grpc,
// alone or with a "+format" or parameters. Envoy uses the same test to decide that a local
// reply must be a gRPC status instead of an HTTP error page.
func isGRPC(h protocol.Headers) bool {
	ct, ok := h.Get("content-type")
	const p = "application/grpc"
	if !ok || len(ct) < len(p) || !strings.EqualFold(ct[:len(p)], p) {
		return false
	}
	return len(ct) == len(p) || ct[len(p)] == '+' || ct[len(p)] == ';'
}

// grpcTimeout parses a grpc-timeout header: 1 to 8 digits and a unit (H, M, S, m, u, n).
func grpcTimeout(h protocol.Headers) (time.Duration, bool) {
	v, ok := h.Get("grpc-timeout")
	if !ok || len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	if err != nil || v[0] == '+' {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > uint64(math.MaxInt64/unit) {
		return math.MaxInt64, true // 99999999H does not fit a Duration: as good as no deadline
	}
	return time.Duration(n) * unit, true
}

// grpcStatusFor maps the HTTP status of a local reply to a gRPC status, as gRPC's
// doc/http-grpc-status-mapping.md and Envoy do.
func grpcStatusFor(status int) int {
	switch status {
	case 400:
		return grpcInternal
	case 401:
		return grpcUnauthenticated
	case 403:
		return grpcPermissionDenied
	case 404:
		return grpcUnimplemented
	case 429, 502, 503, 504:
		return grpcUnavailable
	}
	return grpcUnknown
}

// grpcMessage is body as a grpc-message value: without its trailing newline, and
// percent-encoded outside printable ASCII (and '%' itself), as the gRPC spec requires.
func grpcMessage(body string) string {
	body = strings.TrimRight(body, "\r\n")
	clean := true
	for i := 0; i < len(body); i++ {
		if c := body[i]; c < 0x20 || c > 0x7e || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return body
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// grpcReply makes a local reply to a gRPC call a "trailers-only" response: HTTP 200,
// content-type application/grpc, and the status in grpc-status and grpc-message, so the
// client sees a gRPC status it can act on instead of an HTTP error it cannot interpret.
// A reply that ends the call for an upstream reason (timeout, reset, connect failure) after
// the call's own grpc-timeout has elapsed is DEADLINE_EXCEEDED: the deadline is what ended
// it, and a server that enforces the deadline itself resets the stream at that moment.
func (s *Stream) grpcReply(status int, body, flag string) protocol.Headers {
	code := grpcStatusFor(status)
	switch flag {
	case FlagTimeout, FlagUpstreamReset, FlagConnectFailure:
		if d, ok := grpcTimeout(s.req); ok && time.Since(s.info.Start) >= d {
			code = grpcDeadlineExceeded
			body = "deadline exceeded (" + body
			body = strings.TrimRight(body, "\r\n") + ")"
		}
	}
	h := protocol.NewHeaderList(protocol.Status, "200", "content-type", "application/grpc",
		"grpc-status", strconv.Itoa(code))
	if m := grpcMessage(body); m != "" {
		h.Add("grpc-message", m)
	}
	h.Add("content-length", "0")
	return h
}
