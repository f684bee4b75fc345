package http1

import (
	"strconv"
	"strings"

	"github.com/strait-proxy/strait/protocol"
)

// headEncoder turns any protocol.Headers into an HTTP/1.1 head in a scratch buffer. Two
// passes over Range: collect (pseudo-headers, framing and Connection fields), then emit
// (every other field, hop-by-hop ones dropped, names and values validated so that nothing
// from another protocol can inject a line). It lives in a pooled exchange, and its Range
// callbacks are method values bound once per pooled exchange, so encoding allocates nothing.
type headEncoder struct {
	dst []byte // the scratch buffer: a held head, chunk framing

	// collected
	status, method, path, authority, host string
	hasStatus, hasMethod, hasPath         bool
	hasAuthority, hasHost                 bool
	contentLength                         int64 // -1 when absent
	upgrade                               string
	connUpgrade                           bool
	conn                                  []string // values of Connection fields
	err                                   error

	// emit options
	request     bool // dropping Host and Expect: 100-continue (request heads)
	keepUpgrade bool // Upgrade is forwarded (101 responses, upgrade requests)
	dropLength  bool // Content-Length is not forwarded as is (the encoder writes its own)
	forbidden   bool // drop fields not allowed as trailers (trailer sections)

	collectFn, emitFn func(name, value string) bool
}

func (e *headEncoder) init() {
	e.collectFn = e.collect
	e.emitFn = e.emit
}

// begin resets the collected state and runs the collect pass over h.
func (e *headEncoder) begin(h protocol.Headers) {
	e.clearRefs()
	h.Range(e.collectFn)
}

// clearRefs resets the collected state, which refers to the last head encoded.
func (e *headEncoder) clearRefs() {
	e.status, e.method, e.path, e.authority, e.host, e.upgrade = "", "", "", "", "", ""
	e.hasStatus, e.hasMethod, e.hasPath, e.hasAuthority, e.hasHost = false, false, false, false, false
	e.contentLength = -1
	e.connUpgrade = false
	clear(e.conn)
	e.conn = e.conn[:0]
	e.err = nil
}

func (e *headEncoder) fail(err error) bool {
	if e.err == nil {
		e.err = &Error{Err: err, Offset: -1}
	}
	return false
}

func (e *headEncoder) collect(name, value string) bool {
	if len(name) > 0 && name[0] == ':' {
		switch name {
		case protocol.Status:
			if !e.hasStatus {
				e.status, e.hasStatus = value, true
			}
		case protocol.Method:
			if !e.hasMethod {
				e.method, e.hasMethod = value, true
			}
		case protocol.Path:
			if !e.hasPath {
				e.path, e.hasPath = value, true
			}
		case protocol.Authority:
			if !e.hasAuthority {
				e.authority, e.hasAuthority = value, true
			}
		}
		return true
	}
	switch len(name) {
	case 4:
		if strings.EqualFold(name, "host") && !e.hasHost {
			e.host, e.hasHost = value, true
		}
	case 7:
		if strings.EqualFold(name, "upgrade") && e.upgrade == "" {
			e.upgrade = trimOWSString(value)
		}
	case 10:
		if strings.EqualFold(name, "connection") {
			e.conn = append(e.conn, value)
			if hasToken(value, "upgrade") {
				e.connUpgrade = true
			}
		}
	case 14:
		if strings.EqualFold(name, "content-length") {
			n, ok := parseContentLengthString(trimOWSString(value))
			switch {
			case !ok:
				return e.fail(ErrInvalidContentLength)
			case e.contentLength >= 0 && e.contentLength != n:
				return e.fail(ErrDuplicateContentLength)
			}
			e.contentLength = n
		}
	}
	return true
}

// hopByHop reports whether a field is not forwarded: the fixed hop-by-hop set (RFC 9110
// 7.6.1), every field named in a Connection field, and what the encoder writes itself.
func (e *headEncoder) hopByHop(name, value string) bool {
	switch len(name) {
	case 2:
		if strings.EqualFold(name, "te") {
			return true
		}
	case 4:
		if e.request && strings.EqualFold(name, "host") {
			return true
		}
	case 6:
		if e.request && strings.EqualFold(name, "expect") && strings.EqualFold(trimOWSString(value), "100-continue") {
			return true
		}
	case 7:
		if strings.EqualFold(name, "upgrade") {
			return !e.keepUpgrade
		}
	case 10:
		if strings.EqualFold(name, "connection") || strings.EqualFold(name, "keep-alive") {
			return true
		}
	case 14:
		if strings.EqualFold(name, "content-length") {
			return e.dropLength || e.forbidden
		}
	case 16:
		if strings.EqualFold(name, "proxy-connection") {
			return true
		}
	case 17:
		if strings.EqualFold(name, "transfer-encoding") {
			return true
		}
	}
	if e.forbidden && len(name) == 4 && strings.EqualFold(name, "host") {
		return true
	}
	for _, v := range e.conn {
		if hasToken(v, name) {
			return true
		}
	}
	return false
}

func (e *headEncoder) emit(name, value string) bool {
	if len(name) > 0 && name[0] == ':' {
		return true
	}
	if e.hopByHop(name, value) {
		return true
	}
	if !validTokenString(name) {
		return e.fail(ErrInvalidHeaderName)
	}
	value = trimOWSString(value)
	if !validValueString(value) {
		return e.fail(ErrInvalidHeaderValue)
	}
	e.field(name, value)
	return true
}

// field appends one field line.
func (e *headEncoder) field(name, value string) {
	e.dst = append(e.dst, name...)
	e.dst = append(e.dst, ':', ' ')
	e.dst = append(e.dst, value...)
	e.dst = append(e.dst, '\r', '\n')
}

// fields runs the emit pass over h.
func (e *headEncoder) fields(h protocol.Headers) error {
	h.Range(e.emitFn)
	return e.err
}

func (e *headEncoder) contentLengthField(n int64) {
	e.dst = append(e.dst, "Content-Length: "...)
	e.dst = strconv.AppendInt(e.dst, n, 10)
	e.dst = append(e.dst, '\r', '\n')
}

// hasToken reports whether the comma-separated list v has the element tok (ASCII
// case-insensitive).
func hasToken(v, tok string) bool {
	for len(v) > 0 {
		var el string
		if i := strings.IndexByte(v, ','); i >= 0 {
			el, v = v[:i], v[i+1:]
		} else {
			el, v = v, ""
		}
		if strings.EqualFold(trimOWSString(el), tok) {
			return true
		}
	}
	return false
}

func trimOWSString(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func validTokenString(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// validValueString accepts field-value bytes: VCHAR, SP, HTAB, obs-text; never CR, LF, NUL.
func validValueString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isFieldVchar(s[i]) {
			return false
		}
	}
	return true
}

// validTargetString accepts what the request parser accepts in an origin-form or asterisk
// target: visible ASCII except '#', '%' followed by two hex digits.
func validTargetString(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
		if c == '%' {
			if i+2 >= len(s) {
				return false
			}
			if _, ok := hexVal(s[i+1]); !ok {
				return false
			}
			if _, ok := hexVal(s[i+2]); !ok {
				return false
			}
		}
	}
	return true
}

// validAuthorityString accepts uri-host [":" port], or empty.
func validAuthorityString(s string, requirePort bool) bool {
	if len(s) > 1024 {
		return false
	}
	var buf [1024]byte
	return validHostPort(append(buf[:0], s...), requirePort)
}

func parseContentLengthString(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// parseStatus parses a three-digit status code 100-999.
func parseStatus(s string) (int, bool) {
	if len(s) != 3 || !isDigit(s[0]) || !isDigit(s[1]) || !isDigit(s[2]) || s[0] == '0' {
		return 0, false
	}
	return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0'), true
}

// appendStatusLine appends "HTTP/1.1 <code> <reason>\r\n".
func appendStatusLine(dst []byte, code int, status string) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = append(dst, status...)
	dst = append(dst, ' ')
	dst = append(dst, reasonPhrase(code)...)
	return append(dst, '\r', '\n')
}

// reasonPhrase is the RFC 9110 reason phrase of a status code ("" when unknown).
func reasonPhrase(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 102:
		return "Processing"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 203:
		return "Non-Authoritative Information"
	case 204:
		return "No Content"
	case 205:
		return "Reset Content"
	case 206:
		return "Partial Content"
	case 207:
		return "Multi-Status"
	case 208:
		return "Already Reported"
	case 226:
		return "IM Used"
	case 300:
		return "Multiple Choices"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 305:
		return "Use Proxy"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 402:
		return "Payment Required"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Range Not Satisfiable"
	case 417:
		return "Expectation Failed"
	case 418:
		return "I'm a teapot"
	case 421:
		return "Misdirected Request"
	case 422:
		return "Unprocessable Content"
	case 423:
		return "Locked"
	case 424:
		return "Failed Dependency"
	case 425:
		return "Too Early"
	case 426:
		return "Upgrade Required"
	case 428:
		return "Precondition Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 451:
		return "Unavailable For Legal Reasons"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	case 506:
		return "Variant Also Negotiates"
	case 507:
		return "Insufficient Storage"
	case 508:
		return "Loop Detected"
	case 510:
		return "Not Extended"
	case 511:
		return "Network Authentication Required"
	}
	return ""
}
