package http1

import (
	"errors"
	"testing"
)

// Invariants checked by every fuzz target:
//   - no panic, and consumed <= len(input);
//   - every error is an *Error wrapping one sentinel;
//   - the result does not depend on how the input is split (whole, byte by byte, halves);
//   - whatever parses re-encodes, and the encoding parses back to the same thing.

// roomy limits leave space for the few bytes re-encoding may add (": " after each name).
var roomy = Limits{MaxHeadBytes: DefaultMaxHeadBytes + 4*DefaultMaxHeaders, MaxTrailerBytes: DefaultMaxTrailerBytes + 4*DefaultMaxHeaders}

type parseResult struct {
	n    int
	err  error // sentinel
	head string
}

func FuzzRequestParser(f *testing.F) {
	for _, tc := range validRequests {
		f.Add([]byte(tc.in))
	}
	for _, tc := range hostileRequests {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(typicalRequest))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := parseRequestWhole(t, data)
		if whole.n < 0 || whole.n > len(data) || (whole.err != nil && whole.n != 0) {
			t.Fatalf("Parse returned n=%d err=%v for %d bytes", whole.n, whole.err, len(data))
		}
		if got := parseRequestBytewise(t, data); got != whole {
			t.Fatalf("bytewise %+v != whole %+v", got, whole)
		}
		if got := parseRequestHalves(t, data); got != whole {
			t.Fatalf("halves %+v != whole %+v", got, whole)
		}
		if whole.n == 0 || whole.err != nil {
			return
		}
		p := mustRequestParser(t, Limits{})
		var h RequestHead
		if _, err := p.Parse(data, &h); err != nil {
			t.Fatal(err)
		}
		enc, err := AppendRequestHead(nil, &h)
		if err != nil {
			t.Fatalf("parsed head does not re-encode: %v (%s)", err, describe(&h))
		}
		q := mustRequestParser(t, roomy)
		var h2 RequestHead
		n2, err := q.Parse(enc, &h2)
		if err != nil || n2 != len(enc) {
			t.Fatalf("re-encoded head %q: n=%d err=%v", enc, n2, err)
		}
		if describe(&h2) != describe(&h) {
			t.Fatalf("re-parse differs:\n%s\n%s", describe(&h), describe(&h2))
		}
	})
}

func parseRequestWhole(t *testing.T, data []byte) parseResult {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	n, err := p.Parse(data, &h)
	return requestResult(t, n, err, &h)
}

func requestResult(t *testing.T, n int, err error, h *RequestHead) parseResult {
	r := parseResult{n: n, err: sentinelOf(t, err)}
	if n > 0 {
		r.head = describe(h)
	}
	return r
}

func parseRequestBytewise(t *testing.T, data []byte) parseResult {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	for i := 1; i <= len(data); i++ {
		n, err := p.Parse(data[:i], &h)
		if n != 0 || err != nil {
			return requestResult(t, n, err, &h)
		}
	}
	return parseResult{}
}

func parseRequestHalves(t *testing.T, data []byte) parseResult {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	half := append([]byte(nil), data[:len(data)/2]...)
	if n, err := p.Parse(half, &h); n != 0 || err != nil {
		return requestResult(t, n, err, &h)
	}
	n, err := p.Parse(append([]byte(nil), data...), &h)
	return requestResult(t, n, err, &h)
}

func FuzzResponseParser(f *testing.F) {
	for _, tc := range validResponses {
		f.Add([]byte(tc.in))
	}
	for _, tc := range hostileResponses {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(typicalResponse))
	f.Fuzz(func(t *testing.T, data []byte) {
		parse := func(chunks ...[]byte) parseResult {
			p := mustResponseParser(t, Limits{})
			var h ResponseHead
			var buf []byte
			for _, c := range chunks {
				buf = append(append([]byte(nil), buf...), c...)
				n, err := p.Parse(buf, &h)
				if n != 0 || err != nil {
					r := parseResult{n: n, err: sentinelOf(t, err)}
					if n > 0 {
						r.head = describe(&h)
					}
					return r
				}
			}
			return parseResult{}
		}
		whole := parse(data)
		if whole.n < 0 || whole.n > len(data) || (whole.err != nil && whole.n != 0) {
			t.Fatalf("Parse returned n=%d err=%v for %d bytes", whole.n, whole.err, len(data))
		}
		if got := parse(data[:len(data)/2], data[len(data)/2:]); got != whole {
			t.Fatalf("halves %+v != whole %+v", got, whole)
		}
		bytewise := parseResult{}
		p := mustResponseParser(t, Limits{})
		var h ResponseHead
		for i := 1; i <= len(data); i++ {
			n, err := p.Parse(data[:i], &h)
			if n != 0 || err != nil {
				bytewise = parseResult{n: n, err: sentinelOf(t, err)}
				if n > 0 {
					bytewise.head = describe(&h)
				}
				break
			}
		}
		if bytewise != whole {
			t.Fatalf("bytewise %+v != whole %+v", bytewise, whole)
		}
		if whole.n == 0 || whole.err != nil {
			return
		}
		// h holds the bytewise parse of the complete head, which equals the whole parse.
		enc, err := AppendResponseHead(nil, &h)
		if err != nil {
			t.Fatalf("parsed head does not re-encode: %v (%s)", err, describe(&h))
		}
		q := mustResponseParser(t, roomy)
		var h2 ResponseHead
		if n2, err := q.Parse(enc, &h2); err != nil || n2 != len(enc) {
			t.Fatalf("re-encoded head %q: n=%d err=%v", enc, n2, err)
		}
		// A missing reason re-encodes as an empty one.
		if h.Reason == nil {
			h.Reason = []byte{}
		}
		if describe(&h2) != describe(&h) {
			t.Fatalf("re-parse differs:\n%s\n%s", describe(&h), describe(&h2))
		}
	})
}

type chunkResult struct {
	body, trailers string
	consumed       int
	done           bool
	err            error
}

func FuzzChunkedDecoder(f *testing.F) {
	for _, tc := range validChunked {
		f.Add([]byte(tc.in))
	}
	for _, tc := range hostileChunked {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(chunkedBody(3000, 700) + "0\r\nX-T: 1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		run := func(step int) chunkResult {
			d := mustChunked(t, Limits{})
			body, trailers, consumed, done, err := decodeStream(d, data, step)
			var e *Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if err != nil {
				consumed = 0 // framing consumed before the error depends on the split
			}
			return chunkResult{body, trailers, consumed, done, sentinelOf(t, err)}
		}
		whole := run(0)
		if whole.consumed > len(data) || len(whole.body) > len(data) {
			t.Fatalf("consumed %d body %d of %d bytes", whole.consumed, len(whole.body), len(data))
		}
		for _, step := range []int{1, 3, len(data)/2 + 1} {
			if got := run(step); got != whole {
				t.Fatalf("step %d: %+v\nwhole: %+v", step, got, whole)
			}
		}
		if !whole.done {
			return
		}
		d := mustChunked(t, Limits{})
		if _, _, _, _, err := decodeStream(d, data, 0); err != nil {
			t.Fatal(err)
		}
		enc := AppendChunkHeader(nil, len(whole.body))
		enc = append(enc, whole.body...)
		if len(whole.body) > 0 {
			enc = AppendChunkEnd(enc)
		}
		enc, err := AppendLastChunk(enc, d.Trailers())
		if err != nil {
			t.Fatalf("decoded trailers do not re-encode: %v", err)
		}
		d2 := mustChunked(t, roomy)
		body, trailers, consumed, done, err := decodeStream(d2, enc, 0)
		if err != nil || !done || body != whole.body || trailers != whole.trailers || consumed != len(enc) {
			t.Fatalf("re-encoded body does not decode back: %q %q %d %v %v", body, trailers, consumed, done, err)
		}
	})
}
