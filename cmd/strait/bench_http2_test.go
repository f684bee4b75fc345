package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkProxyHTTP2 is HTTP/2 with prior knowledge on both sides through Strait running
// in-process from a bootstrap, on each transport: one client connection keeps h2Inflight GET
// streams open and opens a new one for each response that completes. Client and upstream
// speak raw frames built once (HPACK indexed and literal-without-indexing fields only, so
// neither keeps a dynamic table) and read frames into fixed buffers: neither allocates per
// request, so allocs/op is Strait's (both codecs, the stream manager, the router).
//
//	go test -run '^$' -bench BenchmarkProxyHTTP2 -benchtime 50000x ./cmd/strait/
func BenchmarkProxyHTTP2(b *testing.B) {
	up := newH2FixedUpstream(b)
	b.Run("direct", func(b *testing.B) { runH2Exchanges(b, up.addr()) })
	for _, tr := range e2eTransports() {
		b.Run(tr, func(b *testing.B) {
			s := runStrait(b, tr, bootstrapYAML(
				[]listenerSpec{{"bench", hcmFilterCodec("bench", "HTTP2", `name: bench
virtual_hosts:
- name: all
  domains: ["*"]
  routes: [{match: {prefix: /}, route: {cluster: fixed}}]`)}},
				[]clusterSpec{{name: "fixed", hosts: []string{up.addr()}, extra: h2ClusterOptions}}, ""))
			runH2Exchanges(b, s.addr(b, "bench"))
		})
	}
}

// h2Inflight is how many streams the benchmark client keeps open.
const h2Inflight = 16

// HTTP/2 frame types and flags the raw peers use (RFC 9113 section 6).
const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2Settings     = 0x4
	h2Ping         = 0x6
	h2GoAway       = 0x7
	h2EndStream    = 0x1
	h2Ack          = 0x1
	h2EndHeaders   = 0x4
	h2FrameHeadLen = 9
)

// h2Frame appends one frame.
func h2Frame(dst []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	dst = append(dst, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	dst = binary.BigEndian.AppendUint32(dst, stream)
	return append(dst, payload...)
}

// h2Handshake is the client preface, empty SETTINGS and a connection window raised to 1 GiB.
func h2Handshake(client bool) []byte {
	var out []byte
	if client {
		out = append(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"...)
	}
	out = h2Frame(out, h2Settings, 0, 0, nil)
	return h2Frame(out, 0x8, 0, 0, binary.BigEndian.AppendUint32(nil, 1<<30-65535))
}

var (
	// GET http://bench.example/bench: :method GET and :scheme http indexed, :path and
	// :authority literal without indexing (static name indexes 4 and 1).
	h2BenchRequest = h2Frame(nil, h2Headers, h2EndStream|h2EndHeaders, 0,
		append(append([]byte{0x82, 0x86, 0x04, 6}, "/bench"...), append([]byte{0x01, 13}, "bench.example"...)...))
	// :status 200 indexed, content-length: 12 literal without indexing (static index 28), then
	// the 12-byte body.
	h2BenchResponse = append(
		h2Frame(nil, h2Headers, h2EndHeaders, 0, append([]byte{0x88, 0x0f, 0x0d, 2}, "12"...)),
		h2Frame(nil, h2Data, h2EndStream, 0, fixedBody)...)
)

// h2Reader reads frames into one reusable buffer.
type h2Reader struct {
	r       *bufio.Reader
	head    [h2FrameHeadLen]byte
	payload []byte
}

func (r *h2Reader) next() (typ, flags byte, stream uint32, payload []byte, err error) {
	if _, err = io.ReadFull(r.r, r.head[:]); err != nil {
		return
	}
	n := int(r.head[0])<<16 | int(r.head[1])<<8 | int(r.head[2])
	if cap(r.payload) < n {
		r.payload = make([]byte, n)
	}
	r.payload = r.payload[:n]
	if _, err = io.ReadFull(r.r, r.payload); err != nil {
		return
	}
	return r.head[3], r.head[4], binary.BigEndian.Uint32(r.head[5:]) &^ (1 << 31), r.payload, nil
}

// runH2Exchanges makes b.N GET exchanges on one HTTP/2 connection to addr, h2Inflight at a
// time, checking every response body.
func runH2Exchanges(b *testing.B, addr string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := c.Write(h2Handshake(true)); err != nil {
		b.Fatal(err)
	}
	rd := &h2Reader{r: bufio.NewReaderSize(c, 64<<10)}
	out := make([]byte, 0, 4096)
	next := uint32(1)
	send := func() {
		out = append(out, h2BenchRequest...)
		binary.BigEndian.PutUint32(out[len(out)-len(h2BenchRequest)+5:], next)
		next += 2
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent, done := 0, 0
	for ; sent < min(h2Inflight, b.N); sent++ {
		send()
	}
	for done < b.N {
		if len(out) > 0 && rd.r.Buffered() == 0 { // everything read so far is answered
			if _, err := c.Write(out); err != nil {
				b.Fatal(err)
			}
			out = out[:0]
		}
		typ, flags, _, payload, err := rd.next()
		if err != nil {
			b.Fatalf("after %d responses: %v", done, err)
		}
		switch typ {
		case h2Settings:
			if flags&h2Ack == 0 {
				out = h2Frame(out, h2Settings, h2Ack, 0, nil)
			}
		case h2Ping:
			if flags&h2Ack == 0 {
				out = h2Frame(out, h2Ping, h2Ack, 0, payload)
			}
		case h2GoAway:
			b.Fatalf("GOAWAY after %d responses: %x", done, payload)
		case h2Data:
			if !bytes.Equal(payload, fixedBody) || flags&h2EndStream == 0 {
				b.Fatalf("response body %q (flags %#x)", payload, flags)
			}
			done++
			if sent < b.N {
				send()
				sent++
			}
		}
	}
}

// newH2FixedUpstream answers every HTTP/2 request with h2BenchResponse, without decoding it.
func newH2FixedUpstream(b testing.TB) *tcpServer { return newTCPServer(b, serveFixedHTTP2) }

func serveFixedHTTP2(c net.Conn) {
	rd := &h2Reader{r: bufio.NewReaderSize(c, 64<<10)}
	preface := make([]byte, 24)
	if _, err := io.ReadFull(rd.r, preface); err != nil || string(preface) != "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
		return
	}
	out := h2Handshake(false)
	for {
		if len(out) > 0 && rd.r.Buffered() == 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
		typ, flags, stream, payload, err := rd.next()
		if err != nil {
			return
		}
		switch {
		case typ == h2Settings && flags&h2Ack == 0:
			out = h2Frame(out, h2Settings, h2Ack, 0, nil)
		case typ == h2Ping && flags&h2Ack == 0:
			out = h2Frame(out, h2Ping, h2Ack, 0, payload)
		case typ == h2Headers && flags&h2EndStream != 0:
			at := len(out)
			out = append(out, h2BenchResponse...)
			binary.BigEndian.PutUint32(out[at+5:], stream)
			binary.BigEndian.PutUint32(out[at+len(h2BenchResponse)-len(fixedBody)-4:], stream)
		case typ == h2Headers:
			return // a request with a body: not this benchmark's traffic
		}
	}
}
