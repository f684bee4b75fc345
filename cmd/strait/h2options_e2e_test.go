package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// End to end: which protocol Strait speaks to a cluster, and the HTTP/2 limits a listener's
// and a cluster's http2_protocol_options set, on every transport.

// protoHandler answers the protocol the upstream saw.
var protoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Proto", r.Proto)
	_, _ = io.WriteString(w, r.Proto)
})

// TestUpstreamProtocolE2E: a cluster without HttpProtocolOptions is spoken to over
// HTTP/1.1 whatever the client speaks (Envoy's default: an h2c client does not make Strait
// speak HTTP/2 to an HTTP/1.1 server); use_downstream_protocol_config follows the client.
func TestUpstreamProtocolE2E(t *testing.T) {
	h1only := newGoUpstream(t, "h1only", protoHandler)
	both := newGoUpstream(t, "both", protoHandler, func(s *http.Server) {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.Protocols = &p
	})
	routes := `name: proto
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {prefix: /plain}
    route: {cluster: plain}
  - match: {prefix: /down}
    route: {cluster: down}
`
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"http", hcmFilterCodec("proto", "AUTO", routes)}},
				[]clusterSpec{
					{name: "plain", hosts: []string{h1only.addr()}},
					{name: "down", hosts: []string{both.addr()}, extra: `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    use_downstream_protocol_config: {}`},
				}, ""))
			base := "http://" + s.addr(t, "http")
			h1, _ := newClient(t)
			for _, c := range []struct {
				name   string
				client *http.Client
				path   string
				want   string
			}{
				{"h2 client, no options", h2cClient(t), "/plain", "HTTP/1.1"},
				{"h1 client, no options", h1, "/plain", "HTTP/1.1"},
				{"h2 client, use_downstream", h2cClient(t), "/down", "HTTP/2.0"},
				{"h1 client, use_downstream", h1, "/down", "HTTP/1.1"},
			} {
				resp, body := doReq(t, c.client, "GET", base+c.path, "", nil)
				if resp.StatusCode != 200 || string(body) != c.want {
					t.Errorf("%s: %d, the upstream saw %q; want 200 and %s", c.name, resp.StatusCode, body, c.want)
				}
			}
		})
	}
}

// sniffUpstream is an h2c server (x/net) that records, per connection, the SETTINGS of the
// client's preface and the most streams it saw open at once.
type sniffUpstream struct {
	addr     string
	mu       sync.Mutex
	settings []map[http2.SettingID]uint32
	maxOpen  []int
	open     []int
}

type connIDKey struct{}

func startSniffUpstream(t *testing.T, delay time.Duration) *sniffUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &sniffUpstream{addr: ln.Addr().String()}
	srv := &http2.Server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Context().Value(connIDKey{}).(int)
		u.mu.Lock()
		u.open[id]++
		u.maxOpen[id] = max(u.maxOpen[id], u.open[id])
		u.mu.Unlock()
		time.Sleep(delay)
		u.mu.Lock()
		u.open[id]--
		u.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})
	var wg sync.WaitGroup
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the preface and the first frame (SETTINGS) ahead, then let the server
			// read them again.
			head := make([]byte, len(http2.ClientPreface)+9)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, head); err != nil {
				c.Close()
				continue
			}
			n := int(head[len(head)-9])<<16 | int(head[len(head)-8])<<8 | int(head[len(head)-7])
			payload := make([]byte, n)
			if _, err := io.ReadFull(c, payload); err != nil {
				c.Close()
				continue
			}
			_ = c.SetReadDeadline(time.Time{})
			first := append(head[len(http2.ClientPreface):], payload...)
			f, err := http2.NewFramer(io.Discard, bytes.NewReader(first)).ReadFrame()
			set := map[http2.SettingID]uint32{}
			if sf, ok := f.(*http2.SettingsFrame); ok && err == nil {
				_ = sf.ForeachSetting(func(s http2.Setting) error { set[s.ID] = s.Val; return nil })
			}
			u.mu.Lock()
			id := len(u.settings)
			u.settings = append(u.settings, set)
			u.maxOpen = append(u.maxOpen, 0)
			u.open = append(u.open, 0)
			conns = append(conns, c)
			u.mu.Unlock()
			pc := &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(append(head, payload...)), c)}
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv.ServeConn(pc, &http2.ServeConnOpts{Handler: h, Context: context.WithValue(context.Background(), connIDKey{}, id)})
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		u.mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		u.mu.Unlock()
		wg.Wait()
	})
	return u
}

type prefixConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// TestHTTP2OptionsE2E: a listener's http2_protocol_options are what Strait advertises to
// clients, a cluster's are what it advertises to and how many streams it opens on each
// connection to the cluster's hosts.
func TestHTTP2OptionsE2E(t *testing.T) {
	up := startSniffUpstream(t, 200*time.Millisecond)
	routes := `name: opts
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {prefix: /}
    route: {cluster: h2}
`
	hcm := func(prefix string) string {
		return hcmFilterCodec(prefix, "HTTP2", routes) + `          http2_protocol_options: { initial_stream_window_size: 1048576, max_concurrent_streams: 7 }
`
	}
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"h2", hcm("opts_" + tr)}},
				[]clusterSpec{{name: "h2", hosts: []string{up.addr}, extra: `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http2_protocol_options: { initial_stream_window_size: 262144, max_concurrent_streams: 3 } }`}}, ""))
			addr := s.addr(t, "h2")

			// What Strait advertises downstream.
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			fr := http2.NewFramer(nc, nc)
			_, _ = nc.Write([]byte(http2.ClientPreface))
			_ = fr.WriteSettings()
			f, err := fr.ReadFrame()
			sf, ok := f.(*http2.SettingsFrame)
			if err != nil || !ok {
				t.Fatalf("first frame from Strait: %v %v", f, err)
			}
			if v, _ := sf.Value(http2.SettingInitialWindowSize); v != 1<<20 {
				t.Errorf("Strait advertised SETTINGS_INITIAL_WINDOW_SIZE %d, want 1048576", v)
			}
			if v, _ := sf.Value(http2.SettingMaxConcurrentStreams); v != 7 {
				t.Errorf("Strait advertised SETTINGS_MAX_CONCURRENT_STREAMS %d, want 7", v)
			}

			// What it advertises upstream, and the streams it opens per upstream connection.
			c := h2cClient(t)
			var wg sync.WaitGroup
			var failed atomic.Int64
			for i := range 7 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := c.Get(fmt.Sprintf("http://%s/r%d", addr, i))
					if err != nil {
						failed.Add(1)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != "ok" {
						failed.Add(1)
					}
				}()
			}
			wg.Wait()
			if failed.Load() > 0 {
				t.Fatalf("%d requests failed", failed.Load())
			}
			up.mu.Lock()
			defer up.mu.Unlock()
			if len(up.settings) < 3 {
				t.Errorf("7 concurrent requests went over %d upstream connections; with 3 streams each, want at least 3", len(up.settings))
			}
			for i, set := range up.settings {
				if set[http2.SettingInitialWindowSize] != 256<<10 {
					t.Errorf("upstream connection %d: Strait advertised SETTINGS_INITIAL_WINDOW_SIZE %d, want 262144", i, set[http2.SettingInitialWindowSize])
				}
				if up.maxOpen[i] > 3 {
					t.Errorf("upstream connection %d carried %d streams at once, want at most 3", i, up.maxOpen[i])
				}
			}
			up.settings, up.maxOpen, up.open = nil, nil, nil
		})
	}
}
