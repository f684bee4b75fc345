package http1

import "bytes"

// parseFieldLine parses the field line starting at off in a section validated by scan. It
// returns the name, the value without surrounding whitespace, and the offset of the next line.
func parseFieldLine(in []byte, off int) (name, value []byte, next int, err error) {
	i := off
	for isTchar(in[i]) {
		i++
	}
	switch c := in[i]; {
	case c == ':':
		if i == off {
			return nil, nil, 0, errAt(ErrEmptyHeaderName, i)
		}
	case isOWS(c):
		j := i
		for isOWS(in[j]) {
			j++
		}
		if in[j] == ':' {
			return nil, nil, 0, errAt(ErrSpaceBeforeColon, i)
		}
		return nil, nil, 0, errAt(ErrInvalidHeaderName, i)
	case c == '\r':
		if in[i+1] != '\n' {
			return nil, nil, 0, errAt(ErrBareCR, i)
		}
		return nil, nil, 0, errAt(ErrMissingColon, i)
	default:
		return nil, nil, 0, errAt(ErrInvalidHeaderName, i)
	}
	name = in[off:i:i]
	i++ // colon
	for isOWS(in[i]) {
		i++
	}
	// The section is complete, so a CR follows; the first one must end the line.
	vstart := i
	cr := i + bytes.IndexByte(in[i:], '\r')
	if in[cr+1] != '\n' {
		return nil, nil, 0, errAt(ErrBareCR, cr)
	}
	if k, ok := validFieldValue(in[vstart:cr]); !ok {
		return nil, nil, 0, errAt(ErrInvalidHeaderValue, vstart+k)
	}
	vend := cr
	for vend > vstart && isOWS(in[vend-1]) {
		vend--
	}
	return name, in[vstart:vend:vend], cr + 2, nil
}

// fieldInfo collects, while the field lines of a head are parsed, what decides framing,
// connection reuse and routing.
type fieldInfo struct {
	contentLength int64 // -1 when absent
	hasTE         bool
	chunked       bool
	connClose     bool
	connKeepAlive bool
	connUpgrade   bool
	upgrade       []byte
	host          []byte
	hasHost       bool
	expect100     bool
}

// parseFields parses the field lines of a head from off to the final empty line, appending
// them to hs and filling fi. It returns hs (grown if needed) and the offset after the head.
func parseFields(in []byte, off int, hs Headers, fi *fieldInfo, isRequest bool) (Headers, int, error) {
	fi.contentLength = -1
	// The section ends at the first empty line; a line "\r\r\n" is a bare CR, not the end.
	for !(in[off] == '\r' && in[off+1] == '\n') {
		name, value, next, err := parseFieldLine(in, off)
		if err != nil {
			return hs, 0, err
		}
		if err := fi.note(name, value, off, isRequest); err != nil {
			return hs, 0, err
		}
		hs = append(hs, Header{Name: name, Value: value})
		off = next
	}
	return hs, off + 2, nil
}

// note inspects one field; off is the line's offset, for errors.
func (fi *fieldInfo) note(name, value []byte, off int, isRequest bool) error {
	switch len(name) {
	case 4:
		if isRequest && equalFold(name, "host") {
			if fi.hasHost {
				return errAt(ErrDuplicateHost, off)
			}
			if !validHostPort(value, false) {
				return errAt(ErrInvalidHost, off)
			}
			fi.hasHost, fi.host = true, value
		}
	case 6:
		if isRequest && equalFold(name, "expect") && equalFold(value, "100-continue") {
			fi.expect100 = true
		}
	case 7:
		if equalFold(name, "upgrade") && fi.upgrade == nil && len(value) > 0 {
			fi.upgrade = value
		}
	case 10:
		if equalFold(name, "connection") {
			return fi.noteConnection(value, off)
		}
	case 14:
		if equalFold(name, "content-length") {
			if fi.contentLength >= 0 {
				return errAt(ErrDuplicateContentLength, off)
			}
			n, ok := parseContentLength(value)
			if !ok {
				if bytes.IndexByte(value, ',') >= 0 {
					return errAt(ErrDuplicateContentLength, off) // the list form: "5, 5"
				}
				return errAt(ErrInvalidContentLength, off)
			}
			fi.contentLength = n
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			if fi.hasTE {
				return errAt(ErrDuplicateTransferEncoding, off)
			}
			fi.hasTE = true
			if !equalFold(value, "chunked") {
				return errAt(ErrUnsupportedTransferEncoding, off)
			}
			fi.chunked = true
		}
	}
	return nil
}

func (fi *fieldInfo) noteConnection(v []byte, off int) error {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextListElement(v)
		if len(tok) == 0 {
			continue // empty list elements are allowed (RFC 9110 5.6.1.2)
		}
		if _, ok := validToken(tok); !ok {
			return errAt(ErrInvalidConnection, off)
		}
		switch {
		case equalFold(tok, "close"):
			fi.connClose = true
		case equalFold(tok, "keep-alive"):
			fi.connKeepAlive = true
		case equalFold(tok, "upgrade"):
			fi.connUpgrade = true
		case equalFold(tok, "host"), equalFold(tok, "content-length"):
			// A hop that honoured it would drop the routing or framing of the message.
			return errAt(ErrConnectionEndToEnd, off)
		}
	}
	return nil
}

// check applies the rules that need the whole section.
func (fi *fieldInfo) check(v Version, off int) error {
	if fi.hasTE && fi.contentLength >= 0 {
		return errAt(ErrContentLengthWithTransferEncoding, off)
	}
	if fi.hasTE && v == HTTP10 {
		return errAt(ErrTransferEncodingHTTP10, off)
	}
	return nil
}

func (fi *fieldInfo) keepAlive(v Version) bool {
	if fi.connClose {
		return false
	}
	return v == HTTP11 || fi.connKeepAlive
}

// parseContentLength accepts 1*DIGIT without sign, whitespace or leading zeros ("0" itself
// is fine), at most 18 digits so the value fits an int64.
func parseContentLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validHostPort checks uri-host [ ":" port ] (RFC 3986): an IP literal in brackets or a
// reg-name (which covers IPv4), then an optional non-empty decimal port up to 65535. No
// userinfo, path or whitespace. With requirePort (authority-form) the port and a non-empty
// host are mandatory. An empty value is valid when !requirePort (RFC 9112 3.2).
func validHostPort(b []byte, requirePort bool) bool {
	if len(b) == 0 {
		return !requirePort
	}
	i := 0
	if b[0] == '[' {
		for i = 1; i < len(b) && b[i] != ']'; i++ {
		}
		if i == len(b) || !validIPv6(b[1:i]) {
			return false
		}
		i++
	} else {
		for i < len(b) && b[i] != ':' {
			if !isRegNameChar(b[i]) {
				return false
			}
			if b[i] == '%' && !pctEncoded(b, i) {
				return false
			}
			i++
		}
		if i == 0 && requirePort {
			return false
		}
	}
	if i == len(b) {
		return !requirePort
	}
	if b[i] != ':' {
		return false
	}
	return validPort(b[i+1:])
}

// validIPv6 checks an IPv6address of RFC 3986 3.2.2: eight groups of one to four hex digits,
// or fewer with one "::", optionally ending in a dotted IPv4 address that counts as two
// groups. Zone identifiers and IPvFuture literals are refused.
func validIPv6(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	groups, elided, i := 0, false, 0
	if b[0] == ':' {
		if b[1] != ':' {
			return false
		}
		elided, i = true, 2
		if i == len(b) {
			return true
		}
	}
	for {
		start := i
		for i < len(b) && i-start <= 4 {
			if _, ok := hexVal(b[i]); !ok {
				break
			}
			i++
		}
		if i < len(b) && b[i] == '.' {
			if !validIPv4(b[start:]) {
				return false
			}
			groups += 2
			break
		}
		if i == start || i-start > 4 {
			return false
		}
		groups++
		if i == len(b) {
			break
		}
		if b[i] != ':' {
			return false
		}
		i++
		if i == len(b) {
			return false // a single trailing colon
		}
		if b[i] == ':' {
			if elided {
				return false
			}
			elided = true
			i++
			if i == len(b) {
				break
			}
		}
	}
	if elided {
		return groups <= 7
	}
	return groups == 8
}

// validIPv4 checks four dec-octets (0-255, no leading zeros) separated by dots.
func validIPv4(b []byte) bool {
	for part := 0; part < 4; part++ {
		if part > 0 {
			if len(b) == 0 || b[0] != '.' {
				return false
			}
			b = b[1:]
		}
		n, k := 0, 0
		for k < len(b) && k < 4 && isDigit(b[k]) {
			n = n*10 + int(b[k]-'0')
			k++
		}
		if k == 0 || k > 3 || n > 255 || (k > 1 && b[0] == '0') {
			return false
		}
		b = b[k:]
	}
	return len(b) == 0
}

func validPort(p []byte) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if !isDigit(c) {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

func pctEncoded(b []byte, i int) bool {
	if i+2 >= len(b) {
		return false
	}
	_, ok1 := hexVal(b[i+1])
	_, ok2 := hexVal(b[i+2])
	return ok1 && ok2
}
