package http1

// RequestParser parses request heads from a connection's inbound bytes. Between calls it
// keeps only a few integers, so one parser per connection is cheap; it is not safe for
// concurrent use.
type RequestParser struct {
	mode scanMode
	scan scanner
}

// NewRequestParser returns a parser enforcing l (zero fields take defaults).
func NewRequestParser(l Limits) (*RequestParser, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &RequestParser{mode: requestMode(l.WithDefaults())}, nil
}

// requestMode is the scanner configuration for request heads under l (defaults applied).
func requestMode(l Limits) scanMode {
	return scanMode{
		startLine: true,
		skipEmpty: true,
		maxStart:  l.MaxStartLine,
		maxBytes:  l.MaxHeadBytes,
		maxFields: l.MaxHeaders,
		errTooBig: ErrHeadTooLarge,
	}
}

// Parse parses the request head at the start of in, the connection's unconsumed bytes.
//
//   - n > 0: in[:n] was a complete, valid head (including any empty lines before the
//     request line) and h describes it; h's slices point into in.
//   - n == 0, err == nil: the head is incomplete. Call Parse again when more bytes arrived,
//     with the same bytes (they may have moved) followed by the new ones.
//   - err != nil: the head is invalid; err wraps one ErrXxx sentinel (see StatusCode),
//     and h is reset.
//
// h is left alone while the head is incomplete, so one RequestHead may serve all the
// connections of an executor, each using it only within the callback that completed a
// parse. After a complete head or an error the parser is ready for the next message.
// Bytes after the head (body, pipelined requests) are not examined.
func (p *RequestParser) Parse(in []byte, h *RequestHead) (n int, err error) {
	return parseRequestHead(&p.scan, &p.mode, in, h)
}

// parseRequestHead is RequestParser.Parse with the scanner's progress and settings kept
// elsewhere (the codec keeps the progress in its pooled exchange, the settings shared).
func parseRequestHead(sc *scanner, m *scanMode, in []byte, h *RequestHead) (n int, err error) {
	end, err := sc.scan(in, m)
	if end == 0 && err == nil {
		return 0, nil
	}
	start := sc.start
	sc.reset()
	if err != nil {
		h.Reset()
		return 0, err
	}
	if err := parseRequest(in[:end], start, h); err != nil {
		h.Reset()
		return 0, err
	}
	return end, nil
}

// Reset forgets a partially scanned head (for example when the connection is reused for a
// new exchange after an error was handled elsewhere).
func (p *RequestParser) Reset() { p.scan.reset() }

// parseRequest parses a complete head validated by scan; the request line starts at off.
func parseRequest(in []byte, off int, h *RequestHead) error {
	h.Reset()
	// method SP request-target SP HTTP-version CRLF, single spaces (RFC 9112 3).
	i := off
	for isTchar(in[i]) {
		i++
	}
	if in[i] != ' ' {
		if i == off || in[i] == '\r' {
			return errAt(ErrMalformedRequestLine, i)
		}
		return errAt(ErrInvalidMethod, i)
	}
	if i == off {
		return errAt(ErrMalformedRequestLine, i)
	}
	h.Method = in[off:i:i]
	i++
	tstart := i
	for in[i] > ' ' && in[i] != 0x7f {
		i++
	}
	if in[i] != ' ' {
		switch {
		case in[i] == '\r' && in[i+1] == '\n':
			return errAt(ErrMalformedRequestLine, i) // no version: HTTP/0.9 or garbage
		case in[i] == '\r':
			return errAt(ErrBareCR, i)
		}
		return errAt(ErrInvalidTarget, i)
	}
	if i == tstart {
		return errAt(ErrMalformedRequestLine, i)
	}
	h.Target = in[tstart:i:i]
	i++
	v, err := parseVersion(in, i)
	if err != nil {
		return err
	}
	h.Version = v
	i += 8
	if in[i] != '\r' {
		return errAt(ErrInvalidVersion, i)
	}
	if in[i+1] != '\n' {
		return errAt(ErrBareCR, i)
	}
	i += 2

	var fi fieldInfo
	h.Headers, i, err = parseFields(in, i, h.Headers, &fi, true)
	if err != nil {
		return err
	}
	if err := fi.check(h.Version, off); err != nil {
		return err
	}
	if err := classifyTarget(h, tstart); err != nil {
		return err
	}
	if h.Version == HTTP11 && !fi.hasHost {
		return errAt(ErrMissingHost, off)
	}
	if fi.hasHost {
		h.Host = fi.host
		if h.Authority == nil {
			h.Authority = fi.host
		} else if !sameAuthority(h.Authority, fi.host, h) {
			return errAt(ErrHostMismatch, tstart)
		}
	}
	h.ContentLength = fi.contentLength
	h.Chunked = fi.chunked
	h.KeepAlive = fi.keepAlive(h.Version)
	if h.Version == HTTP11 {
		if fi.connUpgrade && fi.upgrade != nil {
			h.Upgrade = fi.upgrade
		}
		h.Expect100 = fi.expect100
	}
	return nil
}

// parseVersion parses "HTTP/1.0" or "HTTP/1.1" at in[i:]; in holds at least a CRLF after i.
func parseVersion(in []byte, i int) (Version, error) {
	if len(in)-i < 8 || string(in[i:i+5]) != "HTTP/" || !isDigit(in[i+5]) || in[i+6] != '.' || !isDigit(in[i+7]) {
		return 0, errAt(ErrInvalidVersion, i)
	}
	if in[i+5] != '1' || (in[i+7] != '0' && in[i+7] != '1') {
		return 0, errAt(ErrUnsupportedVersion, i)
	}
	if in[i+7] == '0' {
		return HTTP10, nil
	}
	return HTTP11, nil
}

// classifyTarget decides the form of h.Target, validates it, and sets Form, Path and the
// target's Authority. off is the target's offset, for errors.
func classifyTarget(h *RequestHead, off int) error {
	t := h.Target
	connect := equalString(h.Method, "CONNECT")
	switch {
	case connect:
		// CONNECT takes authority-form and nothing else (RFC 9112 3.2.3).
		if !validHostPort(t, true) {
			return errAt(ErrInvalidTarget, off)
		}
		h.Form, h.Authority = FormAuthority, t
	case len(t) == 1 && t[0] == '*':
		if !equalString(h.Method, "OPTIONS") {
			return errAt(ErrInvalidTarget, off)
		}
		h.Form = FormAsterisk
	case t[0] == '/':
		if i, ok := validPathQuery(t); !ok {
			return errAt(ErrInvalidTarget, off+i)
		}
		h.Form, h.Path = FormOrigin, t
	default:
		auth, path, ok := splitAbsolute(t)
		if !ok || !validHostPort(auth, false) || len(auth) == 0 {
			return errAt(ErrInvalidTarget, off)
		}
		if i, ok := validPathQuery(path); !ok {
			return errAt(ErrInvalidTarget, off+len(t)-len(path)+i)
		}
		h.Form, h.Authority, h.Path = FormAbsolute, auth, path
	}
	return nil
}

// splitAbsolute splits scheme "://" authority path-abempty ["?" query] into the authority
// and the rest. The scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func splitAbsolute(t []byte) (auth, rest []byte, ok bool) {
	i := 0
	for i < len(t) && (isAlpha(t[i]) || i > 0 && (isDigit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.')) {
		i++
	}
	if i == 0 || len(t)-i < 3 || string(t[i:i+3]) != "://" {
		return nil, nil, false
	}
	a := i + 3
	j := a
	for j < len(t) && t[j] != '/' && t[j] != '?' {
		j++
	}
	return t[a:j:j], t[j:len(t):len(t)], true
}

// validPathQuery accepts the bytes a request-target path and query may hold: visible ASCII
// except '#' (a fragment is never sent), with every '%' starting a valid percent-encoding.
// It is deliberately looser than RFC 3986 about characters such as '{', '|' or '"' that
// clients send unencoded, and strict about everything that could change where the target
// ends. It returns the index of the first bad byte.
func validPathQuery(p []byte) (int, bool) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			return i, false
		}
		if c == '%' && !pctEncoded(p, i) {
			return i, false
		}
	}
	return 0, true
}

// sameAuthority compares the target authority with the Host header, case-insensitively,
// treating a missing port as the scheme's default (http 80, https 443) and, for CONNECT,
// as matching any port.
func sameAuthority(target, host []byte, h *RequestHead) bool {
	if equalFoldBytes(target, host) {
		return true
	}
	th, tp := splitHostPort(target)
	hh, hp := splitHostPort(host)
	if !equalFoldBytes(th, hh) {
		return false
	}
	if h.Form == FormAuthority {
		return hp == nil || string(tp) == string(hp)
	}
	def := ""
	if scheme := schemeOf(h.Target); equalFold(scheme, "http") {
		def = "80"
	} else if equalFold(scheme, "https") {
		def = "443"
	}
	switch {
	case tp == nil && hp == nil:
		return true
	case tp == nil:
		return def != "" && string(hp) == def
	case hp == nil:
		return def != "" && string(tp) == def
	}
	return string(tp) == string(hp)
}

func schemeOf(t []byte) []byte {
	for i := 0; i < len(t); i++ {
		if t[i] == ':' {
			return t[:i]
		}
	}
	return nil
}

// splitHostPort splits a validated host[:port]; port is nil when absent.
func splitHostPort(b []byte) (host, port []byte) {
	i := len(b) - 1
	for i >= 0 && isDigit(b[i]) {
		i--
	}
	if i >= 0 && b[i] == ':' && (b[0] != '[' || i > 0 && b[i-1] == ']') {
		return b[:i], b[i+1:]
	}
	return b, nil
}
