package reactortest

import (
	"bytes"
	"testing"
)

// The stream comparison must catch what a broken transport does to bytes: a lost byte, a
// duplicated or reordered segment, bytes from another stream, a zeroed (reused) buffer.
func TestPatternCatchesCorruption(t *testing.T) {
	p, other := newPattern(1), newPattern(2)
	const off, n = 3 << 20, 256 << 10
	good := p.bytes(off, n)
	if m := p.mismatch(good, off); m != -1 {
		t.Fatalf("intact bytes reported bad at %d", m)
	}
	if !bytes.Equal(good[:100], p.bytes(off, 100)) {
		t.Fatal("pattern is not deterministic")
	}
	cases := map[string][]byte{
		"lost byte":                         append(append([]byte(nil), good[:1000]...), good[1001:]...),
		"duplicated":                        append(append([]byte(nil), good[:5000]...), good[4000:n-1000]...),
		"reordered":                         append(append(append([]byte(nil), good[:4096]...), good[8192:12288]...), good[4096:8192]...),
		"other stream":                      other.bytes(off, n),
		"zeroed buffer":                     append(append([]byte(nil), good[:n/2]...), make([]byte, n/2)...),
		"shift by period multiple of 64KiB": p.bytes(off+64<<10, n),
	}
	for name, b := range cases {
		if m := p.mismatch(b, off); m < 0 {
			t.Errorf("%s: not detected", name)
		}
	}
	// A whole period later the stream repeats: only a shift by exactly patternLen goes unseen.
	if m := p.mismatch(p.bytes(off+patternLen, n), off); m != -1 {
		t.Fatalf("pattern period is not patternLen")
	}
}
