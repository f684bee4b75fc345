package main

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkProxyHTTP1 is one proxied HTTP/1.1 keep-alive exchange through Strait running
// in-process from a bootstrap, on each transport and with both request dispatch modes. The
// upstream is a raw-TCP server answering a fixed response with a 12-byte body, and the
// client a raw keep-alive connection writing a fixed request and reading the fixed-size
// answer into a fixed buffer: neither allocates per request, so allocs/op is Strait's.
//
//	go test -run '^$' -bench BenchmarkProxyHTTP1 -benchtime 20000x ./cmd/strait/
func BenchmarkProxyHTTP1(b *testing.B) {
	up := newFixedUpstream(b)
	// The same exchange without Strait: the client's and the upstream's share of ns/op.
	b.Run("direct", func(b *testing.B) {
		c, respLen := benchClient(b, up.addr())
		runExchanges(b, c, respLen)
	})
	for _, tr := range e2eTransports() {
		for _, dispatch := range []string{"pool", "inline"} {
			b.Run(tr+"/"+dispatch, func(b *testing.B) {
				s := runStrait(b, tr, bootstrapYAML(
					[]listenerSpec{{"bench", hcmFilter("bench", `name: bench
virtual_hosts:
- name: all
  domains: ["*"]
  routes: [{match: {prefix: /}, route: {cluster: fixed}}]`)}},
					[]clusterSpec{{name: "fixed", hosts: []string{up.addr()}}},
					"request_dispatch: "+dispatch))
				c, respLen := benchClient(b, s.addr(b, "bench"))
				runExchanges(b, c, respLen)
			})
		}
	}
}

// runExchanges makes b.N request/response exchanges on c, each response respLen bytes.
func runExchanges(b *testing.B, c net.Conn, respLen int) {
	buf := make([]byte, respLen)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(benchRequest); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		if !bytes.HasSuffix(buf, fixedBody) {
			b.Fatalf("unexpected response %q", buf)
		}
	}
}

var (
	benchRequest  = []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: strait-bench\r\nAccept: */*\r\n\r\n")
	fixedBody     = []byte("hello world\n")
	fixedResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n")
)

// benchClient opens a keep-alive connection, makes one exchange to learn the (fixed) size of
// Strait's response, and returns the connection and that size.
func benchClient(b testing.TB, addr string) (net.Conn, int) {
	b.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := c.Write(benchRequest); err != nil {
		b.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var resp []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(resp, fixedBody) {
		n, err := c.Read(buf)
		if err != nil {
			b.Fatalf("first response: %v (%q)", err, resp)
		}
		resp = append(resp, buf[:n]...)
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 ")) {
		b.Fatalf("first response: %q", resp)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, len(resp)
}

// newFixedUpstream answers every HTTP/1.1 request head (requests carry no body) with
// fixedResponse, reading into one buffer per connection: no allocation per request.
func newFixedUpstream(b testing.TB) *tcpServer { return newTCPServer(b, serveFixedHTTP1) }

func serveFixedHTTP1(c net.Conn) {
	buf := make([]byte, 64<<10)
	// match counts how much of "\r\n\r\n" ends the bytes read so far, across reads.
	match := 0
	const term = "\r\n\r\n"
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		heads := 0
		for _, ch := range buf[:n] {
			switch {
			case ch == term[match]:
				match++
			case ch == '\r':
				match = 1
			default:
				match = 0
			}
			if match == len(term) {
				heads++
				match = 0
			}
		}
		for range heads {
			if _, err := c.Write(fixedResponse); err != nil {
				return
			}
		}
	}
}
