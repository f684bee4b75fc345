package bolt

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzLimits are small so the fuzzer reaches the limit checks with short inputs.
var fuzzLimits = Limits{MaxFrame: 4096, MaxHeader: 512, MaxClass: 64}

// FuzzDecode checks, for arbitrary input: no panic; success means the frame re-encodes to
// exactly the bytes consumed; ErrNeedMore asks for more than it has and no more than the
// limit; ErrBadHeader consumes a delimited frame; every other error consumes nothing.
// The seed corpus is below and in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add(goldenRequest)
	f.Add(goldenResponse)
	f.Add(AppendHeartbeat(nil, 1))
	f.Add(AppendHeartbeatAck(nil, 1))
	f.Add(append(append([]byte(nil), goldenRequest...), goldenResponse...))
	f.Add(hostile(0x8000, 0, 0))
	f.Add(hostile(0, 0, 0xFFFFFFFF))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(goldenRequest[:13])
	f.Fuzz(func(t *testing.T, in []byte) {
		var fr Frame
		n, err := Decode(in, &fr, fuzzLimits)
		switch {
		case err == nil:
			if n < ResponseHeadLen || n > len(in) || n > fuzzLimits.MaxFrame {
				t.Fatalf("n = %d for %d bytes", n, len(in))
			}
			if fr.Kind() == 0 {
				t.Fatalf("decoded an invalid kind: %+v", fr)
			}
			out, err := AppendFrame(nil, &fr)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if !bytes.Equal(out, in[:n]) || !bytes.Equal(fr.Raw, in[:n]) {
				t.Fatalf("re-encoded %x\nconsumed   %x", out, in[:n])
			}
			// Walking the header must not panic, and Get must find what Range saw last.
			last := map[string][]byte{}
			fr.Header.Range(func(k, v []byte) bool { last[string(k)] = v; return true })
			for k, v := range last {
				if got, ok := fr.Header.Get(k); !ok || !bytes.Equal(got, v) {
					t.Fatalf("Get(%q) = %q, Range saw %q", k, got, v)
				}
			}
		case err == ErrNeedMore:
			if n <= len(in) || n > fuzzLimits.MaxFrame {
				t.Fatalf("need %d with %d bytes", n, len(in))
			}
		case errors.Is(err, ErrBadHeader):
			if n <= ResponseHeadLen || n > len(in) || IsFatal(err) || fr.Header.Len() != 0 {
				t.Fatalf("bad header: n %d, len %d, %+v", n, len(in), fr)
			}
		default:
			if n != 0 || !IsFatal(err) {
				t.Fatalf("fatal error %v with n %d", err, n)
			}
		}
	})
}

// FuzzHeader checks ParseHeader on arbitrary blocks: no panic, and an accepted block walks
// to exactly its end and re-encodes to itself.
func FuzzHeader(f *testing.F) {
	f.Add(AppendHeader(AppendHeader(nil, "k", "v"), "", ""))
	f.Add(cat(be32(1), []byte("a"), be32(-1)))
	f.Add(cat(be32(-1), be32(0)))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseHeader(in)
		if err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v does not wrap ErrBadHeader", err)
			}
			return
		}
		var out []byte
		h.Range(func(k, v []byte) bool {
			out = AppendHeader(out, k, v)
			if v == nil { // a null value: AppendHeader wrote length 0, the wire had -1
				out = append(out[:len(out)-4], 0xFF, 0xFF, 0xFF, 0xFF)
			}
			return true
		})
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded %x\nparsed     %x", out, in)
		}
	})
}
