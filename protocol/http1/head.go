package http1

// Header is one field line. Name and Value are subslices of the parsed input (Value without
// leading or trailing whitespace); for encoding they may point anywhere.
type Header struct {
	Name  []byte
	Value []byte
}

// Headers is a field section in wire order. Duplicate names are kept as separate entries.
type Headers []Header

// Get returns the value of the first field named name (ASCII case-insensitive; name must be
// lower case), or nil when there is none. A parsed field with an empty value gives a non-nil
// empty slice; Has tells absence from emptiness for any Headers.
func (hs Headers) Get(name string) []byte {
	for i := range hs {
		if equalFold(hs[i].Name, name) {
			return hs[i].Value
		}
	}
	return nil
}

// Has reports whether a field named name (lower case) is present.
func (hs Headers) Has(name string) bool {
	for i := range hs {
		if equalFold(hs[i].Name, name) {
			return true
		}
	}
	return false
}

// IsHopByHop reports whether a proxy must drop the field named name instead of forwarding
// it: Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade, and every
// field named by a Connection header in hs (RFC 9110 7.6.1). Framing and upgrade headers
// are for the encoder to set again for the next hop.
func (hs Headers) IsHopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		if equalFold(name, "te") {
			return true
		}
	case 7:
		if equalFold(name, "upgrade") {
			return true
		}
	case 10:
		if equalFold(name, "connection") || equalFold(name, "keep-alive") {
			return true
		}
	case 16:
		if equalFold(name, "proxy-connection") {
			return true
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return true
		}
	}
	for i := range hs {
		if !equalFold(hs[i].Name, "connection") {
			continue
		}
		v := hs[i].Value
		for len(v) > 0 {
			var tok []byte
			tok, v = nextListElement(v)
			if equalFoldBytes(tok, name) {
				return true
			}
		}
	}
	return false
}

// nextListElement splits a comma-separated list: it returns the first element with OWS
// trimmed (possibly empty) and the rest after the comma.
func nextListElement(v []byte) (elem, rest []byte) {
	for i := 0; i < len(v); i++ {
		if v[i] == ',' {
			return trimOWS(v[:i]), v[i+1:]
		}
	}
	return trimOWS(v), nil
}

// Version is an HTTP/1.x protocol version. The zero value is invalid.
type Version uint8

// The versions this package speaks.
const (
	HTTP10 Version = 10
	HTTP11 Version = 11
)

func (v Version) String() string {
	switch v {
	case HTTP10:
		return "HTTP/1.0"
	case HTTP11:
		return "HTTP/1.1"
	}
	return "HTTP/?"
}

// TargetForm is the form of a request-target (RFC 9112 3.2).
type TargetForm uint8

const (
	// FormOrigin is absolute-path [ "?" query ], e.g. "/index.html?x=1".
	FormOrigin TargetForm = iota + 1
	// FormAbsolute is an absolute URI, e.g. "http://example.com/x" (requests to proxies).
	FormAbsolute
	// FormAuthority is host:port, CONNECT only.
	FormAuthority
	// FormAsterisk is "*", OPTIONS only.
	FormAsterisk
)

func (f TargetForm) String() string {
	switch f {
	case FormOrigin:
		return "origin"
	case FormAbsolute:
		return "absolute"
	case FormAuthority:
		return "authority"
	case FormAsterisk:
		return "asterisk"
	}
	return "unknown"
}

// RequestHead is a parsed request line and header section. Every []byte is a subslice of
// the input given to RequestParser.Parse and is valid only as long as that input. Reuse one
// RequestHead across messages: Parse keeps the Headers backing array.
type RequestHead struct {
	Method  []byte
	Target  []byte
	Form    TargetForm
	Version Version
	Headers Headers

	// Authority is the target's authority for absolute- and authority-form, else the Host
	// header value (nil when absent). This is what a proxy routes on (RFC 9112 3.3).
	Authority []byte
	// Path is the origin-form target, or the path and query of an absolute-form target
	// (empty there means "/"); nil for authority- and asterisk-form.
	Path []byte
	// Host is the Host header value, nil when absent (HTTP/1.0 only).
	Host []byte
	// ContentLength is the Content-Length value, -1 when absent.
	ContentLength int64
	// Chunked is true when Transfer-Encoding is chunked.
	Chunked bool
	// KeepAlive is true when the connection may carry another request after this one: by
	// default for HTTP/1.1 unless Connection has "close", for HTTP/1.0 only with
	// "keep-alive" and no "close".
	KeepAlive bool
	// Upgrade is the Upgrade header value when the client asks to switch protocols
	// (HTTP/1.1, Connection has "upgrade", Upgrade present), else nil.
	Upgrade []byte
	// Expect100 is true for "Expect: 100-continue" on HTTP/1.1.
	Expect100 bool
}

// Reset clears h, keeping the Headers backing array.
func (h *RequestHead) Reset() {
	*h = RequestHead{Headers: h.Headers[:0]}
}

// ResponseHead is a parsed status line and header section, with the same validity rules as
// RequestHead.
type ResponseHead struct {
	Version Version
	Status  int
	Reason  []byte
	Headers Headers

	// ContentLength is the Content-Length value, -1 when absent.
	ContentLength int64
	// Chunked is true when Transfer-Encoding is chunked.
	Chunked bool
	// KeepAlive is true when the server lets the connection carry another response, by the
	// same rules as RequestHead.KeepAlive. A body read until close ends it regardless.
	KeepAlive bool
	// Upgrade is the Upgrade header value of a 101 response, else nil.
	Upgrade []byte
}

// Reset clears h, keeping the Headers backing array.
func (h *ResponseHead) Reset() {
	*h = ResponseHead{Headers: h.Headers[:0]}
}
