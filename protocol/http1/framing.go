package http1

// BodyKind says how the bytes after a head are delimited (RFC 9112 6.3).
type BodyKind uint8

const (
	// BodyNone: the message has no body; the next bytes are the next message.
	BodyNone BodyKind = iota
	// BodyLength: exactly the given number of bytes follow (LengthDecoder).
	BodyLength
	// BodyChunked: a chunked body follows (ChunkedDecoder).
	BodyChunked
	// BodyUntilClose: the body is every byte until the server closes; the connection cannot
	// be reused.
	BodyUntilClose
	// BodyTunnel: the connection stops being HTTP (2xx to CONNECT, 101 Switching Protocols):
	// bytes flow both ways unchanged until either side closes.
	BodyTunnel
)

func (k BodyKind) String() string {
	switch k {
	case BodyNone:
		return "none"
	case BodyLength:
		return "length"
	case BodyChunked:
		return "chunked"
	case BodyUntilClose:
		return "until-close"
	case BodyTunnel:
		return "tunnel"
	}
	return "unknown"
}

// RequestBody returns how the body of a parsed request is delimited and, for BodyLength,
// its length. A request body is never delimited by close: without Transfer-Encoding or a
// non-zero Content-Length there is none (RFC 9112 6.3 rule 6).
func RequestBody(h *RequestHead) (BodyKind, int64) {
	switch {
	case h.Chunked:
		return BodyChunked, 0
	case h.ContentLength > 0:
		return BodyLength, h.ContentLength
	}
	return BodyNone, 0
}

// ResponseBody returns how the body of a parsed response to a request with the given
// method is delimited, applying RFC 9112 6.3 in order:
//
//  1. 101 Switching Protocols: BodyTunnel (the caller checks the request asked to upgrade).
//  2. other 1xx (interim), 204, 304, and any response to HEAD: BodyNone, whatever
//     Content-Length or Transfer-Encoding say.
//  3. 2xx to CONNECT: BodyTunnel.
//  4. Transfer-Encoding chunked: BodyChunked.
//  5. Content-Length: BodyLength (BodyNone for 0).
//  6. otherwise BodyUntilClose.
func ResponseBody(method []byte, h *ResponseHead) (BodyKind, int64) {
	return responseBody(equalString(method, "HEAD"), equalString(method, "CONNECT"), h)
}

// responseBody is ResponseBody for a request method already classified.
func responseBody(head, connect bool, h *ResponseHead) (BodyKind, int64) {
	switch {
	case h.Status == 101:
		return BodyTunnel, 0
	case h.Status < 200, h.Status == 204, h.Status == 304, head:
		return BodyNone, 0
	case h.Status < 300 && connect:
		return BodyTunnel, 0
	case h.Chunked:
		return BodyChunked, 0
	case h.ContentLength > 0:
		return BodyLength, h.ContentLength
	case h.ContentLength == 0:
		return BodyNone, 0
	}
	return BodyUntilClose, 0
}

// ReusableAfter reports whether a connection may carry another exchange after this
// request and its response: both sides allowed keep-alive and the response body does not
// end at close or become a tunnel.
func ReusableAfter(req *RequestHead, resp *ResponseHead) bool {
	if !req.KeepAlive || !resp.KeepAlive {
		return false
	}
	k, _ := ResponseBody(req.Method, resp)
	return k != BodyUntilClose && k != BodyTunnel
}
