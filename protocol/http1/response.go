package http1

// ResponseParser parses response heads from an upstream connection's inbound bytes, with the
// same contract as RequestParser.
type ResponseParser struct {
	mode scanMode
	scan scanner
}

// NewResponseParser returns a parser enforcing l (zero fields take defaults). MaxStartLine
// bounds the status line.
func NewResponseParser(l Limits) (*ResponseParser, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &ResponseParser{mode: responseMode(l.WithDefaults())}, nil
}

// responseMode is the scanner configuration for response heads under l (defaults applied).
func responseMode(l Limits) scanMode {
	return scanMode{
		startLine: true,
		maxStart:  l.MaxStartLine,
		maxBytes:  l.MaxHeadBytes,
		maxFields: l.MaxHeaders,
		errTooBig: ErrHeadTooLarge,
	}
}

// Parse parses the response head at the start of in; results as for RequestParser.Parse.
// A 1xx head other than 101 is an interim response: parse again for the final one.
func (p *ResponseParser) Parse(in []byte, h *ResponseHead) (n int, err error) {
	return parseResponseHead(&p.scan, &p.mode, in, h)
}

// parseResponseHead is ResponseParser.Parse with the scanner's progress and settings kept
// elsewhere (see parseRequestHead).
func parseResponseHead(sc *scanner, m *scanMode, in []byte, h *ResponseHead) (n int, err error) {
	end, err := sc.scan(in, m)
	if end == 0 && err == nil {
		return 0, nil
	}
	sc.reset()
	if err != nil {
		h.Reset()
		return 0, err
	}
	if err := parseResponse(in[:end], h); err != nil {
		h.Reset()
		return 0, err
	}
	return end, nil
}

// Reset forgets a partially scanned head.
func (p *ResponseParser) Reset() { p.scan.reset() }

// parseResponse parses a complete head validated by scan.
func parseResponse(in []byte, h *ResponseHead) error {
	h.Reset()
	// HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF (RFC 9112 4). A missing SP after the
	// code is tolerated: the reason is meaningless and the line still ends unambiguously.
	v, err := parseVersion(in, 0)
	if err != nil {
		return err
	}
	h.Version = v
	if in[8] != ' ' {
		return errAt(ErrMalformedStatusLine, 8)
	}
	if !isDigit(in[9]) || !isDigit(in[10]) || !isDigit(in[11]) {
		return errAt(ErrInvalidStatus, 9)
	}
	if in[9] == '0' {
		return errAt(ErrInvalidStatus, 9)
	}
	h.Status = int(in[9]-'0')*100 + int(in[10]-'0')*10 + int(in[11]-'0')
	i := 12
	switch in[i] {
	case '\r':
	case ' ':
		i++
		rstart := i
		for in[i] != '\r' {
			if !isFieldVchar(in[i]) {
				return errAt(ErrInvalidReason, i)
			}
			i++
		}
		h.Reason = in[rstart:i:i]
	default:
		return errAt(ErrInvalidStatus, i)
	}
	if in[i+1] != '\n' {
		return errAt(ErrBareCR, i)
	}
	i += 2

	var fi fieldInfo
	h.Headers, _, err = parseFields(in, i, h.Headers, &fi, false)
	if err != nil {
		return err
	}
	if err := fi.check(h.Version, 0); err != nil {
		return err
	}
	h.ContentLength = fi.contentLength
	h.Chunked = fi.chunked
	h.KeepAlive = fi.keepAlive(h.Version)
	if h.Status == 101 {
		h.Upgrade = fi.upgrade
	}
	return nil
}
