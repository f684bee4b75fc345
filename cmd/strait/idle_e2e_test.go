package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// idleHCM is an HttpConnectionManager with the given downstream idle timeout and a 2s
// stream idle timeout, routing /slow/ with a route timeout and everything else without.
func idleHCM(statPrefix, idle string) string { return idleHCMWith(statPrefix, idle, "2s") }

func idleHCMWith(statPrefix, idle, streamIdle string) string {
	return `      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ` + statPrefix + `
          common_http_protocol_options: {idle_timeout: ` + idle + `}
          stream_idle_timeout: ` + streamIdle + `
          route_config:
            name: idle
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /slow/}
                route: {cluster: app, timeout: 0.15s}
              - match: {prefix: /}
                route: {cluster: app}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`
}

// delayHandler answers the request path after sleeping ?ms=N milliseconds; with
// ?trickle=N it sends the head and then one byte every 100ms, N times; with ?stall=1 it sends
// the head and one byte and then nothing until the request is cancelled.
func delayHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, _ := strconv.Atoi(r.URL.Query().Get("trickle")); n > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(n))
			for range n {
				select {
				case <-time.After(100 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "x")
				w.(http.Flusher).Flush()
			}
			return
		}
		if r.URL.Query().Get("stall") != "" {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "x")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		if ms, _ := strconv.Atoi(r.URL.Query().Get("ms")); ms > 0 {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, r.URL.Path)
	})
}

// The downstream idle timeout (common_http_protocol_options.idle_timeout) closes a
// connection that carried no stream for that long, and only such a connection: a long
// request is not cut, and requests keep the connection open.
func TestHTTP1E2EIdleTimeout(t *testing.T) {
	app := newGoUpstream(t, "app", delayHandler())
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"idle", idleHCM("idle", "0.3s")}},
				[]clusterSpec{{name: "app", hosts: []string{app.addr()}}}, ""))
			addr := s.addr(t, "idle")
			closed := func() uint64 { return s.counter("downstream_cx_idle_timeout_total", "idle") }
			get := func(c *rawConn, path string) {
				t.Helper()
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path)
				resp, body, err := c.readResponse("GET")
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				want := path
				if i := strings.IndexByte(path, '?'); i >= 0 {
					want = path[:i]
				}
				if resp.StatusCode != 200 || string(body) != want {
					t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
				}
			}

			t.Run("idle keep-alive connection closes", func(t *testing.T) {
				before := closed()
				c := dialRaw(t, addr)
				get(c, "/a")
				start := time.Now()
				ok, extra := c.closedByPeer(5 * time.Second)
				if !ok || len(extra) != 0 {
					t.Fatalf("not closed within 5s (extra %q)", extra)
				}
				if d := time.Since(start); d < 250*time.Millisecond {
					t.Fatalf("closed %v after the response, before the 300ms idle timeout", d)
				}
				if got := closed() - before; got != 1 {
					t.Fatalf("downstream_cx_idle_timeout_total went up by %d", got)
				}
			})

			t.Run("unused connection closes", func(t *testing.T) {
				c := dialRaw(t, addr)
				if ok, _ := c.closedByPeer(5 * time.Second); !ok {
					t.Fatal("a connection that never sent a byte stayed open")
				}
			})

			t.Run("a long request is not idle", func(t *testing.T) {
				c := dialRaw(t, addr)
				get(c, "/long?ms=800") // longer than the idle timeout
				get(c, "/after")
			})

			t.Run("requests keep it open", func(t *testing.T) {
				c := dialRaw(t, addr)
				for i := range 8 {
					get(c, fmt.Sprintf("/k%d", i))
					time.Sleep(100 * time.Millisecond) // a third of the idle timeout
				}
			})
		})
	}
}

// Finished streams are reused for later requests of the same executor, and their deadlines
// live in the executor's heap: many connections mixing requests that time out with
// requests that succeed must each get exactly their own answer, however the reused stream
// objects and the expiring deadlines interleave.
func TestHTTP1E2EStreamReuse(t *testing.T) {
	app := newGoUpstream(t, "app", delayHandler())
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"reuse", idleHCM("reuse", "60s")}},
				[]clusterSpec{{name: "app", hosts: []string{app.addr()}}}, ""))
			addr := s.addr(t, "reuse")
			const conns, perConn = 6, 30
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			var timeouts sync.Map
			for ci := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := dialRaw(t, addr)
					for ri := range perConn {
						var path string
						slow := (ci+ri)%5 == 0
						switch {
						case slow: // the route timeout (150ms) fires long before the answer
							path = fmt.Sprintf("/slow/%d-%d?ms=1500", ci, ri)
						case ri%3 == 0: // in time on the route with the timeout: a stream whose
							// deadline must be gone when its object serves the next request
							path = fmt.Sprintf("/slow/%d-%d?ms=10", ci, ri)
						case ri%3 == 1: // answered after a short delay
							path = fmt.Sprintf("/fast/%d-%d?ms=20", ci, ri)
						default:
							path = fmt.Sprintf("/fast/%d-%d", ci, ri)
						}
						start := time.Now()
						fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path)
						resp, body, err := c.readResponse("GET")
						if err != nil {
							errs <- fmt.Errorf("%s: %v", path, err)
							return
						}
						want := strings.SplitN(path, "?", 2)[0]
						switch {
						case slow && resp.StatusCode != 504:
							errs <- fmt.Errorf("%s: %d %q after %v, want the route timeout's 504", path, resp.StatusCode, body, time.Since(start))
							return
						case slow:
							timeouts.Store(path, time.Since(start))
						case resp.StatusCode != 200 || string(body) != want:
							errs <- fmt.Errorf("%s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			n, slowest := 0, time.Duration(0)
			timeouts.Range(func(_, v any) bool {
				n++
				slowest = max(slowest, v.(time.Duration))
				return true
			})
			t.Logf("%d route timeouts (150ms), the slowest answered after %v", n, slowest)
			if got := s.counter("upstream_rq_timeout_total", "reuse"); got != uint64(n) {
				t.Errorf("upstream_rq_timeout_total = %d, want %d", got, n)
			}
		})
	}
}

// The stream idle timeout (now an entry of the executor's deadline heap): a request whose
// upstream says nothing is answered 408, one whose response stalls half way is reset, and
// one whose bytes keep moving is not cut however long it takes.
func TestHTTP1E2EStreamIdleTimeout(t *testing.T) {
	app := newGoUpstream(t, "app", delayHandler())
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"sidle", idleHCMWith("sidle", "60s", "0.3s")}},
				[]clusterSpec{{name: "app", hosts: []string{app.addr()}}}, ""))
			addr := s.addr(t, "sidle")
			idled := func() uint64 { return s.counter("stream_idle_timeout_total", "sidle") }

			t.Run("no response: 408", func(t *testing.T) {
				before := idled()
				c := dialRaw(t, addr)
				start := time.Now()
				fmt.Fprintf(c, "GET /quiet?ms=3000 HTTP/1.1\r\nHost: a\r\n\r\n")
				resp, body, err := c.readResponse("GET")
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 408 || time.Since(start) < 250*time.Millisecond {
					t.Fatalf("%d %q after %v, want 408 after the 300ms stream idle timeout", resp.StatusCode, body, time.Since(start))
				}
				if idled()-before != 1 {
					t.Fatalf("stream_idle_timeout_total went up by %d", idled()-before)
				}
			})

			t.Run("response stalls: reset", func(t *testing.T) {
				c := dialRaw(t, addr)
				fmt.Fprintf(c, "GET /stall?stall=1 HTTP/1.1\r\nHost: a\r\n\r\n")
				resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				if err == nil || len(b) != 1 {
					t.Fatalf("read %q, %v: want one byte then a cut connection", b, err)
				}
			})

			t.Run("moving bytes are not idle", func(t *testing.T) {
				c := dialRaw(t, addr)
				fmt.Fprintf(c, "GET /trickle?trickle=8 HTTP/1.1\r\nHost: a\r\n\r\n") // 800ms in all
				resp, body, err := c.readResponse("GET")
				if err != nil || resp.StatusCode != 200 || string(body) != "xxxxxxxx" {
					t.Fatalf("%v %q %v", resp, body, err)
				}
			})
		})
	}
}
