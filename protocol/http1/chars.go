package http1

import "encoding/binary"

// Character classes live in constants (no tables in package state): a 256-byte string for
// the hot tchar test, 128-bit masks for the rest.

// tcharTable[c] is 1 when c is a tchar: "!#$%&'*+-.^_`|~", DIGIT, ALPHA (RFC 9110 5.6.2).
const tcharTable = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x01\x00\x01\x01\x01\x01\x01\x00\x00\x01\x01\x00\x01\x01\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00" +
	"\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x00\x00\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x01\x00\x01\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

const (
	// reg-name bytes: unreserved, sub-delims and '%' (RFC 3986 3.2.2).
	regNameLo uint64 = 0x2bff7ff200000000
	regNameHi uint64 = 0x47fffffe87fffffe
)

func inMask(c byte, lo, hi uint64) bool {
	if c < 64 {
		return lo&(1<<c) != 0
	}
	if c < 128 {
		return hi&(1<<(c-64)) != 0
	}
	return false
}

func isTchar(c byte) bool { return tcharTable[c] != 0 }

func isRegNameChar(c byte) bool { return inMask(c, regNameLo, regNameHi) }

// isFieldVchar reports whether c may appear in a field value: VCHAR, SP, HTAB, obs-text.
func isFieldVchar(c byte) bool { return c >= 0x20 && c != 0x7f || c == '\t' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return c | 0x20 - 'a' + 10, true
	}
	return 0, false
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c | 0x20
	}
	return c
}

// equalFold reports whether b equals s under ASCII case folding; s must be lower case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes reports whether a and b are equal under ASCII case folding.
func equalFoldBytes(a, b []byte) bool {
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

func equalString(b []byte, s string) bool { return string(b) == s }

func trimOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// validToken reports whether b is a non-empty token and, if not, the index of the first bad
// byte (0 for an empty b).
func validToken(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	for i := 0; i < len(b); i++ {
		if !isTchar(b[i]) {
			return i, false
		}
	}
	return 0, true
}

// validFieldValue reports whether every byte of v may appear in a field value and, if not,
// the index of the first bad one. It tests eight bytes at a time for any byte below 0x20
// or equal to 0x7f, and looks closer only at words that have one (HTAB is fine).
func validFieldValue(v []byte) (int, bool) {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64(v[i:])
		del := x ^ (0x7f * ones)
		if (x-0x20*ones)&^x&highs == 0 && (del-ones)&^del&highs == 0 {
			continue
		}
		for k := i; k < i+8; k++ {
			if !isFieldVchar(v[k]) {
				return k, false
			}
		}
	}
	for ; i < len(v); i++ {
		if !isFieldVchar(v[i]) {
			return i, false
		}
	}
	return 0, true
}
