package http2

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// TestInteropXNetClient: x/net's HTTP/2 client (h2c prior knowledge) against the server
// codec on a real socket: GETs, a 1 MiB upload (the codec returns window credit as the sink
// consumes), and 64 concurrent streams on one connection.
func TestInteropXNetClient(t *testing.T) {
	addr, stop := serveH2C(t, Config{MaxConcurrentStreams: 16})
	defer stop()
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	do := func(method string, body io.Reader) {
		req, _ := http.NewRequest(method, "http://"+addr+"/x", body)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello world\n" || resp.ProtoMajor != 2 {
			t.Errorf("%s: %d %q proto %d", method, resp.StatusCode, b, resp.ProtoMajor)
		}
	}
	do("GET", nil)
	do("POST", bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)))
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do("GET", nil)
		}()
	}
	wg.Wait()
}

// xnetServer serves h2c prior-knowledge connections with x/net's HTTP/2 server.
func xnetServer(t *testing.T, h http.Handler) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http2.Server{MaxConcurrentStreams: 8}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv.ServeConn(c, &http2.ServeConnOpts{Handler: h})
			}()
		}
	}()
	return ln.Addr().String(), func() { _ = ln.Close(); wg.Wait() }
}

// chanSink collects one response and signals its end.
type chanSink struct {
	mu       sync.Mutex
	status   string
	headers  string
	body     bytes.Buffer
	trailers string
	err      error
	done     chan struct{}
}

func newChanSink() *chanSink { return &chanSink{done: make(chan struct{})} }

func (s *chanSink) OnHeaders(_ protocol.StreamID, h protocol.Headers, end bool) {
	st, _ := h.Get(protocol.Status)
	s.status = strings.Clone(st) // h's strings die with Release
	s.headers = renderHead(h)
	h.Release()
	if end {
		close(s.done)
	}
}

func (s *chanSink) OnData(_ protocol.StreamID, in reactor.View, n int, end bool) {
	s.body.Write(in.Peek(n))
	in.Skip(n)
	if end {
		close(s.done)
	}
}

func (s *chanSink) OnTrailers(_ protocol.StreamID, t protocol.Headers) {
	s.trailers = renderHead(t)
	t.Release()
	close(s.done)
}

func (s *chanSink) OnReset(_ protocol.StreamID, err error) {
	s.err = err
	close(s.done)
}

// TestInteropXNetServer: the client codec against x/net's HTTP/2 server: an echo with
// request and response trailers, a 4 MiB download (the peer's windows and ours), and the
// server's MAX_CONCURRENT_STREAMS reflected by MaxStreams.
func TestInteropXNetServer(t *testing.T) {
	addr, stop := xnetServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Trailer", "X-Sum")
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(b)
			w.Header().Set("X-Sum", fmt.Sprintf("%d;%s;%s", len(b), r.Trailer.Get("X-Req"), r.Host))
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<18))
		}
	}))
	defer stop()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	mu := new(sync.Mutex)
	tc := newTCPConn(nc, mu)
	mu.Lock()
	c := NewCodec(Config{}).NewClient(tc)
	tc.decode = c.Decode
	mu.Unlock()
	go tc.serve()
	defer func() {
		mu.Lock()
		tc.closeLocked()
		mu.Unlock()
		<-tc.done
	}()

	// Echo with trailers both ways.
	echo := newChanSink()
	mu.Lock()
	id, err := c.NewStream(echo)
	if err == nil {
		err = c.EncodeHeaders(id, protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":path", "/echo",
			"Host", "svc.local", "Connection", "keep-alive", "Trailer", "X-Req"), false)
	}
	if err == nil {
		err = c.EncodeData(id, [][]byte{[]byte("ping "), []byte("pong")}, false)
	}
	if err == nil {
		err = c.EncodeTrailers(id, protocol.NewHeaderList("X-Req", "r1"))
	}
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, echo.done)
	if echo.status != "200" || echo.body.String() != "ping pong" || echo.trailers != "x-sum=9;r1;svc.local" {
		t.Fatalf("echo: %s %q %q trailers %q err %v", echo.status, echo.headers, echo.body.String(), echo.trailers, echo.err)
	}
	mu.Lock()
	if n := c.MaxStreams(); n != 8 {
		t.Errorf("MaxStreams = %d, want the server's 8", n)
	}
	mu.Unlock()

	// 4 MiB download: more than our 1 MiB connection and 64 KiB stream windows.
	big := newChanSink()
	mu.Lock()
	id, err = c.NewStream(big)
	if err == nil {
		err = c.EncodeHeaders(id, protocol.NewHeaderList(":method", "GET", ":scheme", "http", ":authority", "svc", ":path", "/big"), true)
	}
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, big.done)
	if big.body.Len() != 4<<20 || !strings.HasPrefix(big.body.String(), "0123456789abcdef") {
		t.Fatalf("download: %d bytes, err %v", big.body.Len(), big.err)
	}
	mu.Lock()
	if c.ActiveStreams() != 0 || !c.Reusable() {
		t.Errorf("after two exchanges: active %d reusable %v", c.ActiveStreams(), c.Reusable())
	}
	mu.Unlock()
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
	}
}
