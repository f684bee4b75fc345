package http1

import (
	"strings"
	"testing"
)

func TestCharClasses(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
		wantT := alnum || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
		if isTchar(b) != wantT {
			t.Errorf("isTchar(%#x) = %v", b, !wantT)
		}
		wantR := alnum || strings.IndexByte("-._~!$&'()*+,;=%", b) >= 0
		if isRegNameChar(b) != wantR {
			t.Errorf("isRegNameChar(%#x) = %v", b, !wantR)
		}
		wantV := b == '\t' || b >= 0x20 && b != 0x7f
		if isFieldVchar(b) != wantV {
			t.Errorf("isFieldVchar(%#x) = %v", b, !wantV)
		}
	}
}

// validFieldValue's word-at-a-time test must agree with the byte test for every byte value
// at every position of a word, including the tail.
func TestValidFieldValue(t *testing.T) {
	base := []byte("abcdefghijklmnopqrstuvw\xff\x80 xyz")
	for c := 0; c < 256; c++ {
		for pos := 0; pos < len(base); pos++ {
			v := append([]byte(nil), base...)
			v[pos] = byte(c)
			idx, ok := validFieldValue(v)
			wantOK := isFieldVchar(byte(c))
			if ok != wantOK || (!ok && idx != pos) {
				t.Fatalf("byte %#x at %d: got (%d, %v), want ok=%v", c, pos, idx, ok, wantOK)
			}
		}
	}
}

func TestValidIPv6(t *testing.T) {
	for s, want := range map[string]bool{
		"::": true, "::1": true, "1::": true, "2001:db8::1": true, "1:2:3:4:5:6:7:8": true,
		"::ffff:192.0.2.1": true, "1:2:3:4:5:6:1.2.3.4": true, "fe80::1:2": true, "1::2:3:4:5:6:7": true,
		"": false, ":": false, ":::": false, "1:2:3:4:5:6:7": false, "1:2:3:4:5:6:7:8:9": false,
		"1::2::3": false, "12345::": false, "1:": false, ":1": false, ".:0": false, "::g": false,
		"::1.2.3": false, "::1.2.3.256": false, "::01.2.3.4": false, "1.2.3.4": false,
		"fe80::1%25eth0": false, "v1.abc": false, "1:2:3:4:5:6:7::": true, "1:2:3:4:5:6:7:8::": false,
		"1:2:3:4:5:6::1.2.3.4": false, "::1.2.3.4:1": false,
	} {
		if got := validIPv6([]byte(s)); got != want {
			t.Errorf("validIPv6(%q) = %v, want %v", s, got, want)
		}
	}
}
