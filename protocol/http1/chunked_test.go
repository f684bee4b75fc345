package http1

import (
	"bytes"
	"strings"
	"testing"
)

// decodeStream plays a transport: in arrives step bytes at a time (step <= 0: all at once);
// unconsumed bytes are kept and, like a transport that moves them, copied to a fresh buffer
// before each call. It returns the body, the rendered trailers, the bytes consumed and the
// error; done reports whether the body ended.
func decodeStream(d *ChunkedDecoder, in []byte, step int) (body, trailers string, consumed int, done bool, err error) {
	if step <= 0 {
		step = len(in)
	}
	var pending []byte
	var out bytes.Buffer
	for off := 0; off < len(in) && !d.Done(); {
		end := min(off+step, len(in))
		pending = append(append([]byte(nil), pending...), in[off:end]...)
		off = end
		for !d.Done() {
			data, n, err := d.Decode(pending)
			if err != nil {
				return out.String(), "", consumed, false, err
			}
			out.Write(data)
			pending = pending[n:]
			consumed += n
			if n == 0 {
				break
			}
		}
		if d.Done() {
			trailers = renderHeaders(d.Trailers())
		}
	}
	return out.String(), trailers, consumed, d.Done(), nil
}

func renderHeaders(hs Headers) string {
	var b strings.Builder
	for _, f := range hs {
		b.WriteString("[" + string(f.Name) + "=" + string(f.Value) + "]")
	}
	return b.String()
}

var validChunked = []struct {
	name     string
	in       string
	body     string
	trailers string
}{
	{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", ""},
	{"several chunks, hex case", "5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "hello 0123456789abcdefghij", ""},
	{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", ""},
	{"empty body", "0\r\n\r\n", "", ""},
	{"extensions", "5;name=value\r\nhello\r\n3;a;b=\"quoted; str\"\r\nabc\r\n0;last\r\n\r\n", "helloabc", ""},
	{"extension BWS", "5 ;a=b\r\nhello\r\n2\t; x\r\nhi\r\n0\r\n\r\n", "hellohi", ""},
	{"extension obs-text", "5;n=\xe9\r\nhello\r\n0\r\n\r\n", "hello", ""},
	{"trailers", "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:  v w \r\n\r\n", "hello", "[X-Checksum=abc][X-Other=v w]"},
	{"trailer empty value", "0\r\nX-Empty:\r\n\r\n", "", "[X-Empty=]"},
	{"binary data", "4\r\n\r\n\x00\n\r\n0\r\n\r\n", "\r\n\x00\n", ""},
	{"followed by next message", "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "hi", ""},
}

var hostileChunked = []struct {
	name string
	in   string
	want error
}{
	{"size overflow 17 digits", "10000000000000000\r\n", ErrChunkSizeOverflow},
	{"size 2^63", "8000000000000000\r\n", ErrChunkSizeOverflow},
	{"size all F", "FFFFFFFFFFFFFFFF\r\n", ErrChunkSizeOverflow},
	{"size 17 digits leading zeros", "00000000000000001\r\nx\r\n0\r\n\r\n", ErrChunkSizeOverflow},
	{"non-hex", "g\r\n", ErrInvalidChunkSize},
	{"negative", "-1\r\n", ErrInvalidChunkSize},
	{"0x prefix", "0x5\r\nhello\r\n", ErrInvalidChunkSize},
	{"leading space", " 5\r\nhello\r\n", ErrInvalidChunkSize},
	{"empty size line", "\r\n", ErrInvalidChunkSize},
	{"plus sign", "+5\r\nhello\r\n", ErrInvalidChunkSize},
	{"digit after space", "5 5\r\n", ErrInvalidChunkExtension},
	{"trailing space", "5 \r\nhello\r\n", ErrInvalidChunkExtension},
	{"bare LF after size", "5\nhello\r\n0\r\n\r\n", ErrBareLF},
	{"bare LF first", "\n", ErrBareLF},
	{"bare LF after extension", "5;a=b\nhello\r\n", ErrBareLF},
	{"bare CR after size", "5\rhello\r\n", ErrBareCR},
	{"bare LF last chunk", "0\n\r\n", ErrBareLF},
	{"bare LF after data", "5\r\nhello\n0\r\n\r\n", ErrMissingChunkCRLF},
	{"bare CR after data", "5\r\nhello\r0\r\n\r\n", ErrMissingChunkCRLF},
	{"data longer than size", "3\r\nhello\r\n0\r\n\r\n", ErrMissingChunkCRLF},
	{"data shorter than size", "7\r\nhello\r\n0\r\n\r\n", ErrMissingChunkCRLF},
	{"NUL in extension", "5;a\x00\r\nhello\r\n", ErrInvalidChunkExtension},
	{"DEL in extension", "5;a\x7f\r\nhello\r\n", ErrInvalidChunkExtension},
	{"extension too long", "5;" + strings.Repeat("a", 1<<10) + "\r\nhello\r\n", ErrChunkExtensionTooLong},
	{"whitespace too long", "5" + strings.Repeat(" ", 2<<10) + ";a\r\n", ErrChunkExtensionTooLong},
	{"trailer bare LF", "0\r\nX: y\n\r\n", ErrBareLF},
	{"trailer end bare LF", "0\r\n\n", ErrBareLF},
	{"trailer Content-Length", "0\r\nContent-Length: 5\r\n\r\n", ErrForbiddenTrailer},
	{"trailer Transfer-Encoding", "0\r\ntransfer-encoding: chunked\r\n\r\n", ErrForbiddenTrailer},
	{"trailer Host", "0\r\nHost: evil\r\n\r\n", ErrForbiddenTrailer},
	{"trailer space before colon", "0\r\nX : y\r\n\r\n", ErrSpaceBeforeColon},
	{"trailer obs-fold", "0\r\nX: y\r\n z\r\n\r\n", ErrObsFold},
	{"trailer leading whitespace", "0\r\n X: y\r\n\r\n", ErrObsFold},
	{"trailer NUL", "0\r\nX: a\x00\r\n\r\n", ErrInvalidHeaderValue},
	{"trailer bare CR", "0\r\nX: a\rb\r\n\r\n", ErrBareCR},
	{"trailer bare CR line", "0\r\n\r\r\n\r\n", ErrBareCR},
	{"trailer bare CR line later", "0\r\nX: 1\r\n\r\r\n\r\n", ErrBareCR},
	{"trailer no colon", "0\r\nX\r\n\r\n", ErrMissingColon},
	{"trailer too large", "0\r\nX: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", ErrTrailerTooLarge},
	{"trailer unterminated too large", "0\r\nX: " + strings.Repeat("a", 17<<10), ErrTrailerTooLarge},
	{"too many trailers", "0\r\n" + manyHeaders(101) + "\r\n", ErrTooManyHeaders},
}

func TestChunkedValid(t *testing.T) {
	for _, tc := range validChunked {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			wantConsumed := len(in)
			if i := strings.Index(tc.in, "GET"); i >= 0 {
				wantConsumed = i
			}
			d := mustChunked(t, Limits{})
			for step := 0; step <= len(in); step++ {
				d.Reset()
				body, trailers, consumed, done, err := decodeStream(d, in, step)
				if err != nil || !done {
					t.Fatalf("step %d: err %v done %v", step, err, done)
				}
				if body != tc.body || trailers != tc.trailers || consumed != wantConsumed {
					t.Fatalf("step %d: body %q trailers %q consumed %d; want %q %q %d", step, body, trailers, consumed, tc.body, tc.trailers, wantConsumed)
				}
			}
			// Every split point into two deliveries.
			for split := 0; split <= len(in); split++ {
				d.Reset()
				body, trailers, consumed, done, err := decodeSplit(d, in, split)
				if err != nil || !done || body != tc.body || trailers != tc.trailers || consumed != wantConsumed {
					t.Fatalf("split %d: %q %q %d %v %v", split, body, trailers, consumed, done, err)
				}
			}
		})
	}
}

// decodeSplit delivers in[:split] and then the rest.
func decodeSplit(d *ChunkedDecoder, in []byte, split int) (body, trailers string, consumed int, done bool, err error) {
	var out bytes.Buffer
	pending := append([]byte(nil), in[:split]...)
	for _, more := range [][]byte{nil, in[split:]} {
		pending = append(append([]byte(nil), pending...), more...)
		for !d.Done() {
			data, n, err := d.Decode(pending)
			if err != nil {
				return "", "", 0, false, err
			}
			out.Write(data)
			pending = pending[n:]
			consumed += n
			if n == 0 {
				break
			}
		}
		if d.Done() {
			return out.String(), renderHeaders(d.Trailers()), consumed, true, nil
		}
	}
	return out.String(), "", consumed, false, nil
}

func TestChunkedHostile(t *testing.T) {
	for _, tc := range hostileChunked {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			for _, step := range []int{0, 1, 2, 7} {
				d := mustChunked(t, Limits{})
				_, _, _, _, err := decodeStream(d, in, step)
				if got := sentinelOf(t, err); got != tc.want {
					t.Fatalf("step %d: %v, want %v", step, err, tc.want)
				}
			}
		})
	}
}

func TestChunkedIncompleteAndDone(t *testing.T) {
	d := mustChunked(t, Limits{})
	// Empty input: nothing to do.
	if data, n, err := d.Decode(nil); data != nil || n != 0 || err != nil {
		t.Fatal(data, n, err)
	}
	// A chunk cut in its data: the delivered part comes out, the rest is awaited.
	data, n, err := d.Decode([]byte("a\r\nhello"))
	if string(data) != "hello" || n != 8 || err != nil || d.Done() {
		t.Fatalf("%q %d %v", data, n, err)
	}
	data, n, err = d.Decode([]byte("world\r\n0\r\nX: 1\r\n"))
	if string(data) != "world" || n != 5 || err != nil {
		t.Fatalf("%q %d %v", data, n, err)
	}
	// Framing up to the trailer section is consumed; the incomplete trailers are not.
	data, n, err = d.Decode([]byte("\r\n0\r\nX: 1\r\n"))
	if data != nil || n != 5 || err != nil || d.Done() {
		t.Fatalf("%q %d %v", data, n, err)
	}
	data, n, err = d.Decode([]byte("X: 1\r\n\r\nNEXT"))
	if data != nil || n != 8 || err != nil || !d.Done() {
		t.Fatalf("%q %d %v done=%v", data, n, err, d.Done())
	}
	if renderHeaders(d.Trailers()) != "[X=1]" {
		t.Fatalf("trailers %s", renderHeaders(d.Trailers()))
	}
	// Done consumes nothing more.
	if data, n, err := d.Decode([]byte("NEXT")); data != nil || n != 0 || err != nil {
		t.Fatal(data, n, err)
	}
}

// Data segments are views into the input, not copies.
func TestChunkedZeroCopy(t *testing.T) {
	d := mustChunked(t, Limits{})
	in := []byte("5\r\nhello\r\n0\r\n\r\n")
	data, _, err := d.Decode(in)
	if err != nil || &data[0] != &in[3] {
		t.Fatalf("data %q is not a view of the input (err %v)", data, err)
	}
}

func TestChunkedLimits(t *testing.T) {
	d := mustChunked(t, Limits{MaxChunkExtension: 4, MaxTrailerBytes: 16, MaxHeaders: 1})
	cases := []struct {
		in   string
		want error
	}{
		{"1;abc\r\nx\r\n0\r\n\r\n", nil},
		{"1;abcd\r\nx\r\n0\r\n\r\n", ErrChunkExtensionTooLong},
		{"0\r\nA: 123456789\r\n\r\n", nil}, // exactly 16 bytes
		{"0\r\nA: 1234567890\r\n\r\n", ErrTrailerTooLarge},
		{"0\r\nA: 1\r\nB: 2\r\n\r\n", ErrTooManyHeaders},
	}
	for i, tc := range cases {
		d.Reset()
		_, _, _, done, err := decodeStream(d, []byte(tc.in), 0)
		if sentinelOf(t, err) != tc.want || (tc.want == nil && !done) {
			t.Errorf("case %d: %v done=%v, want %v", i, err, done, tc.want)
		}
	}
}

func TestChunkedNoAlloc(t *testing.T) {
	d := mustChunked(t, Limits{})
	in := []byte(chunkedBody(16<<10, 1<<10) + "0\r\nX-T: v\r\n\r\n")
	run := func() {
		d.Reset()
		rest := in
		for !d.Done() {
			_, n, err := d.Decode(rest)
			if err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	run()
	if allocs := testing.AllocsPerRun(50, run); allocs != 0 {
		t.Fatalf("%v allocations per body", allocs)
	}
}

func TestLengthDecoder(t *testing.T) {
	var d LengthDecoder
	d.Reset(7)
	if b := d.Decode([]byte("abc")); string(b) != "abc" || d.Remaining() != 4 || d.Done() {
		t.Fatalf("%q %d", b, d.Remaining())
	}
	in := []byte("defgGET /")
	b := d.Decode(in)
	if string(b) != "defg" || !d.Done() || &b[0] != &in[0] || cap(b) != 4 {
		t.Fatalf("%q done=%v cap=%d", b, d.Done(), cap(b))
	}
	if b := d.Decode([]byte("x")); len(b) != 0 {
		t.Fatalf("decoded %q after done", b)
	}
}

// chunkedBody encodes size bytes of body in chunks of chunk bytes (no last-chunk).
func chunkedBody(size, chunk int) string {
	var b []byte
	payload := bytes.Repeat([]byte("x"), chunk)
	for size > 0 {
		k := min(size, chunk)
		b = AppendChunkHeader(b, k)
		b = append(b, payload[:k]...)
		b = AppendChunkEnd(b)
		size -= k
	}
	return string(b)
}
