package http2

// tokenTable marks the bytes of an RFC 9110 token (tchar).
var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validToken reports whether s is a non-empty RFC 9110 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenTable[s[i]] {
			return false
		}
	}
	return true
}

// validLowerName reports whether name is a token without upper-case letters (RFC 9113
// 8.2.1: upper-case names are malformed).
func validLowerName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !tokenTable[c] || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// validValue reports whether v may be a field value: no NUL, CR, LF or other control byte
// but HTAB, and no leading or trailing SP or HTAB (RFC 9113 8.2.1; stricter on controls,
// as net/http, so nothing reaches an HTTP/1.1 peer that could split a line).
func validValue(v string) bool {
	if v == "" {
		return true
	}
	if isOWS(v[0]) || isOWS(v[len(v)-1]) {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS removes surrounding spaces and tabs.
func trimOWS(v string) string {
	for len(v) > 0 && isOWS(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isOWS(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

// parseContentLength parses a content-length value: 1 to 18 digits.
func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validStatus reports whether v is a three-digit status code 100-999.
func validStatus(v string) bool {
	return len(v) == 3 && v[0] >= '1' && v[0] <= '9' &&
		v[1] >= '0' && v[1] <= '9' && v[2] >= '0' && v[2] <= '9'
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// connectionSpecific reports fields HTTP/2 does not carry (RFC 9113 8.2.2), besides TE.
func connectionSpecific(lname string) bool {
	switch lname {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings":
		return true
	}
	return false
}
