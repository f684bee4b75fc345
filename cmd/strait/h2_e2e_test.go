package main

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
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2cUpstream serves prior-knowledge h2c with x/net's HTTP/2 server.
func h2cUpstream(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http2.Server{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv.ServeConn(c, &http2.ServeConnOpts{Handler: h})
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func h2cClient(t *testing.T) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func h2Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "Grpc-Status, X-Req-Trailer")
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Host", r.Host)
		_, _ = w.Write(b)
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("X-Req-Trailer", r.Trailer.Get("X-Req"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		_, _ = w.Write(cachedBody(4 << 20))
	})
	return mux
}

const h2Routes = `name: h2
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {prefix: /h1/}
    route: {cluster: h1, prefix_rewrite: /}
  - match: {prefix: /}
    route: {cluster: h2c, timeout: 60s}
`

// TestHTTP2E2E: h2c clients and HTTP/1.1 clients through Strait to an h2c upstream and an
// HTTP/1.1 upstream, on every transport.
func TestHTTP2E2E(t *testing.T) {
	h2up := h2cUpstream(t, h2Handler())
	h1up := newGoUpstream(t, "h1", h2Handler())
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"http", hcmFilter("http", h2Routes)}},
				[]clusterSpec{
					{name: "h1", hosts: []string{h1up.addr()}, extra: `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http_protocol_options: {} }`},
					{name: "h2c", hosts: []string{h2up}, extra: `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http2_protocol_options: {} }`},
				}, ""))
			addr := s.addr(t, "http")
			h2c := h2cClient(t)
			h1c, _ := newClient(t)
			check := func(name string, c *http.Client, path string, body []byte, wantProto string) {
				var rb io.Reader
				method := "GET"
				if body != nil {
					rb, method = bytes.NewReader(body), "POST"
				}
				req, _ := http.NewRequest(method, "http://"+addr+path, rb)
				req.Host = "svc.example"
				if body != nil {
					req.Trailer = http.Header{"X-Req": {"t1"}}
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Errorf("%s: body: %v", name, err)
					return
				}
				if resp.StatusCode != 200 || resp.Header.Get("X-Proto") != wantProto {
					t.Errorf("%s: %d proto %q headers %v body %q", name, resp.StatusCode, resp.Header.Get("X-Proto"), resp.Header, got[:min(len(got), 100)])
				}
				if strings.HasSuffix(path, "echo") {
					if !bytes.Equal(got, body) || resp.Header.Get("X-Host") != "svc.example" {
						t.Errorf("%s: echo %d bytes (want %d) host %q", name, len(got), len(body), resp.Header.Get("X-Host"))
					}
					if resp.Trailer.Get("Grpc-Status") != "0" || (body != nil && c == h2c && wantProto == "HTTP/2.0" && resp.Trailer.Get("X-Req-Trailer") != "t1") {
						t.Errorf("%s: trailers %v", name, resp.Trailer)
					}
				} else if sha(got) != sha(cachedBody(4<<20)) {
					t.Errorf("%s: big body %d bytes", name, len(got))
				}
			}
			up := cachedBody(1 << 20)
			check("h2->h2 echo", h2c, "/echo", up, "HTTP/2.0")
			check("h2->h2 big", h2c, "/big", nil, "HTTP/2.0")
			check("h2->h1 echo", h2c, "/h1/echo", up, "HTTP/1.1")
			check("h2->h1 big", h2c, "/h1/big", nil, "HTTP/1.1")
			check("h1->h2 echo", h1c, "/echo", up, "HTTP/2.0")
			check("h1->h2 big", h1c, "/big", nil, "HTTP/2.0")
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					check(fmt.Sprintf("concurrent %d", i), h2c, "/echo", cachedBody(1000+i), "HTTP/2.0")
				}(i)
			}
			wg.Wait()
		})
	}
}

// TestHTTP2E2ESlowConsumer: a client that reads slowly (a 16 KiB window, topped up only as
// it reads) downloads 8 MiB from an h2c upstream through Strait. The upstream must be slowed
// down (its writes block on its window) instead of Strait buffering the response.
func TestHTTP2E2ESlowConsumer(t *testing.T) {
	var written atomic.Int64
	body := cachedBody(8 << 20)
	up := h2cUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		for off := 0; off < len(body); off += 16384 {
			if _, err := w.Write(body[off : off+16384]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			written.Store(int64(off + 16384))
		}
	}))
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			written.Store(0)
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"http", hcmFilter("http", h2Routes)}},
				[]clusterSpec{
					{name: "h1", hosts: []string{up}},
					{name: "h2c", hosts: []string{up}, extra: `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http2_protocol_options: {} }`},
				}, ""))
			nc, err := net.Dial("tcp", s.addr(t, "http"))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
			fr := http2.NewFramer(nc, nc)
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			_, _ = nc.Write([]byte(http2.ClientPreface))
			_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 16384})
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "svc"}, {":path", "/big"}, {"te", "trailers"}} {
				_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
			var got bytes.Buffer
			status := ""
			readUntil := func(n int) bool {
				for got.Len() < n {
					f, err := fr.ReadFrame()
					if err != nil {
						t.Fatalf("read: %v (got %d)", err, got.Len())
					}
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if !f.IsAck() {
							_ = fr.WriteSettingsAck()
						}
					case *http2.MetaHeadersFrame:
						if status == "" {
							status = f.PseudoValue("status")
						}
						if f.StreamEnded() {
							return false
						}
					case *http2.DataFrame:
						got.Write(f.Data())
						if f.StreamEnded() {
							return false
						}
					case *http2.RSTStreamFrame:
						t.Fatalf("stream reset by Strait: %v after %d bytes (upstream wrote %d)", f.ErrCode, got.Len(), written.Load())
					case *http2.GoAwayFrame:
						t.Fatalf("GOAWAY %v", f.ErrCode)
					}
				}
				return true
			}
			readUntil(16384)
			time.Sleep(300 * time.Millisecond)
			stalled := written.Load()
			t.Logf("client read %d bytes; upstream wrote %d of %d while the client did not read", got.Len(), stalled, len(body))
			if stalled > 512<<10 {
				t.Errorf("upstream wrote %d bytes while the client read 16 KiB: not slowed down", stalled)
			}
			for got.Len() < len(body) {
				_ = fr.WriteWindowUpdate(1, 65536)
				_ = fr.WriteWindowUpdate(0, 65536)
				if !readUntil(min(len(body), got.Len()+65536)) {
					break
				}
			}
			if status != "200" || sha(got.Bytes()) != sha(body) {
				t.Fatalf("status %q, %d bytes", status, got.Len())
			}
		})
	}
}
