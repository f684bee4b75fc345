package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func BenchmarkParseRequest(b *testing.B) {
	p := mustRequestParser(b, Limits{})
	var h RequestHead
	in := []byte(typicalRequest)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := p.Parse(in, &h); err != nil || n != len(in) {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkParseRequestSplit parses the same head delivered in two reads: one "need more"
// call, then the complete parse.
func BenchmarkParseRequestSplit(b *testing.B) {
	p := mustRequestParser(b, Limits{})
	var h RequestHead
	in := []byte(typicalRequest)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := p.Parse(in[:len(in)/2], &h); err != nil || n != 0 {
			b.Fatal(n, err)
		}
		if n, err := p.Parse(in, &h); err != nil || n != len(in) {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkStdlibReadRequest is net/http's parser on the same head, for reference only.
func BenchmarkStdlibReadRequest(b *testing.B) {
	in := []byte(typicalRequest)
	r := bytes.NewReader(in)
	br := bufio.NewReader(r)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(in)
		br.Reset(r)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	p := mustResponseParser(b, Limits{})
	var h ResponseHead
	in := []byte(typicalResponse)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := p.Parse(in, &h); err != nil || n != len(in) {
			b.Fatal(n, err)
		}
	}
}

func benchChunked(b *testing.B, size, chunk int) {
	d := mustChunked(b, Limits{})
	in := []byte(chunkedBody(size, chunk) + "0\r\nX-Checksum: abc\r\n\r\n")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset()
		rest := in
		got := 0
		for !d.Done() {
			data, n, err := d.Decode(rest)
			if err != nil {
				b.Fatal(err)
			}
			got += len(data)
			rest = rest[n:]
		}
		if got != size {
			b.Fatal(got)
		}
	}
}

// BenchmarkChunkedDecode: a 64 KiB body in 4 KiB chunks plus a trailer.
func BenchmarkChunkedDecode(b *testing.B) { benchChunked(b, 64<<10, 4<<10) }

// BenchmarkChunkedDecodeSmallChunks: a 4 KiB body in 16-byte chunks (framing-bound).
func BenchmarkChunkedDecodeSmallChunks(b *testing.B) { benchChunked(b, 4<<10, 16) }

func BenchmarkAppendRequestHead(b *testing.B) {
	p := mustRequestParser(b, Limits{})
	var h RequestHead
	if _, err := p.Parse([]byte(typicalRequest), &h); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(typicalRequest)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendRequestHead(buf[:0], &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResponseHead(b *testing.B) {
	p := mustResponseParser(b, Limits{})
	var h ResponseHead
	if _, err := p.Parse([]byte(typicalResponse), &h); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(typicalResponse)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendResponseHead(buf[:0], &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendChunkFraming(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		out := AppendChunkHeader(buf[:0], 4096)
		out = AppendChunkEnd(out)
		if _, err := AppendLastChunk(out, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequestDribble feeds a 48 KiB head one byte per call, the worst case for a
// parser that rescans: here each call examines only the new byte.
func BenchmarkParseRequestDribble(b *testing.B) {
	p := mustRequestParser(b, Limits{})
	var h RequestHead
	in := []byte("GET / HTTP/1.1\r\nHost: a\r\nCookie: " + strings.Repeat("c", 48<<10) + "\r\n\r\n")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		for i := 1; i < len(in); i++ {
			if n, err := p.Parse(in[:i], &h); n != 0 || err != nil {
				b.Fatal(n, err)
			}
		}
		if n, err := p.Parse(in, &h); n != len(in) || err != nil {
			b.Fatal(n, err)
		}
	}
}
