package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// End-to-end HTTP/1.1 through Strait, on every transport: real clients (net/http, curl, raw
// TCP), real upstreams (net/http, nginx, raw TCP), Envoy v3 bootstraps with an
// HttpConnectionManager, inline routes and STATIC clusters. Each test asserts what a user
// would notice: statuses, body hashes, headers, and what the upstream received.

var e2eSizes = []int{0, 1, 64 << 10, 1 << 20, 16 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// trafficRoutes sends Host "nginx" to nginx and everything else to the Go upstream; Host
// "ka" goes to a Go upstream used only for connection counting.
const trafficRoutes = `name: traffic
virtual_hosts:
- name: nginx
  domains: ["nginx"]
  routes:
  - match: {prefix: /}
    route: {cluster: nginx, timeout: 60s}
- name: eof
  domains: ["eof"]
  routes:
  - match: {prefix: /}
    route: {cluster: eof}
- name: idle
  domains: ["idle"]
  routes:
  - match: {prefix: /}
    route: {cluster: idle}
- name: keepalive
  domains: ["ka"]
  routes:
  - match: {prefix: /}
    route: {cluster: ka}
- name: go
  domains: ["*"]
  routes:
  - match: {prefix: /}
    route: {cluster: go, timeout: 60s}`

func TestHTTP1E2ETraffic(t *testing.T) {
	app := appHandler()
	mux := http.NewServeMux()
	mux.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) {
		for { // echo message by message (io.Copy would re-frame them)
			var m []byte
			if websocket.Message.Receive(ws, &m) != nil || websocket.Message.Send(ws, m) != nil {
				return
			}
		}
	}))
	// /reject answers 413 at once, without reading the upload (as a size-limited upstream
	// does): the response reaches the client while the client is still sending.
	mux.HandleFunc("/reject", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	// /trailers answers the request body's hash in a response trailer, with the request
	// trailer it received.
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		n, sum, err := hashReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Trailer", "X-Sum, X-Got-Trailer")
		w.WriteHeader(200)
		fmt.Fprintf(w, "%d bytes", n)
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", sum)
		w.Header().Set("X-Got-Trailer", r.Trailer.Get("X-Req-Trailer"))
	})
	// /bighead answers with a header of the requested size, and the size of X-Big it got.
	mux.HandleFunc("/bighead", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("size"))
		w.Header().Set("X-Big-Response", strings.Repeat("r", n))
		w.Header().Set("X-Got-Big", strconv.Itoa(len(r.Header.Get("X-Big"))))
		w.Header().Set("X-Got-Many", strconv.Itoa(len(r.Header.Values("X-Many"))))
	})
	mux.Handle("/", app)
	goUp := newGoUpstream(t, "go", mux)
	files := map[string][]byte{}
	for _, n := range append(e2eSizes, 1<<10) {
		files["f"+sizeName(n)] = cachedBody(n)
	}
	ng := startNginx(t, files)

	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			ka := newGoUpstream(t, "ka", app)
			// idle closes keep-alive connections after 100 ms, as servers do (nginx: 75 s).
			idle := newGoUpstream(t, "idle", app, func(s *http.Server) { s.IdleTimeout = 100 * time.Millisecond })
			eof := newEOFUpstream(t)
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"http", hcmFilter("http", trafficRoutes)}},
				[]clusterSpec{
					{name: "go", hosts: []string{goUp.addr()}},
					{name: "ka", hosts: []string{ka.addr()}},
					{name: "idle", hosts: []string{idle.addr()}},
					{name: "eof", hosts: []string{eof}},
					{name: "nginx", hosts: []string{ng.addr}},
				}, ""))
			addr := s.addr(t, "http")
			base := "http://" + addr

			t.Run("net/http to Go upstream", func(t *testing.T) {
				c, _ := newClient(t)
				for _, n := range e2eSizes {
					want := sha(cachedBody(n))
					for _, chunked := range []bool{false, true} {
						url := fmt.Sprintf("%s/blob?size=%d", base, n)
						if chunked {
							url += "&chunked=1"
						}
						resp, got := doReqHash(t, c, "GET", url, "", nil)
						if resp.StatusCode != 200 || got != want {
							t.Errorf("GET %s (chunked %v): %d, body %s, want %s", sizeName(n), chunked, resp.StatusCode, got, want)
						}
						if cl := resp.ContentLength; !chunked && cl != int64(n) {
							t.Errorf("GET %s: Content-Length %d", sizeName(n), cl)
						}
						var body io.Reader = bytes.NewReader(cachedBody(n))
						if chunked {
							body = unknownLength{body}
						}
						resp, b := doReq(t, c, "POST", base+"/upload", "", body)
						wantUp := fmt.Sprintf("%d %s", n, want)
						if resp.StatusCode != 200 || string(b) != wantUp {
							t.Errorf("POST %s (chunked %v): %d %q, want %q", sizeName(n), chunked, resp.StatusCode, b, wantUp)
						}
						// What the upstream saw: the framing Strait chose for the body. A
						// chunked request is re-framed chunked; an empty chunked body may
						// arrive with Content-Length: 0.
						te, cl := resp.Header.Get("X-Seen-TE"), resp.Header.Get("X-Seen-CL")
						switch {
						case !chunked && (te != "" || cl != strconv.Itoa(n)):
							t.Errorf("POST %s with Content-Length: upstream saw TE %q CL %q", sizeName(n), te, cl)
						case chunked && n > 0 && te != "chunked":
							t.Errorf("POST %s chunked: upstream saw TE %q CL %q", sizeName(n), te, cl)
						}
					}
				}
				// A body round trip: 1 MiB up, the same 1 MiB back.
				resp, got := doReqHash(t, c, "POST", base+"/echo", "", bytes.NewReader(cachedBody(1<<20)))
				if resp.StatusCode != 200 || got != sha(cachedBody(1<<20)) {
					t.Errorf("echo 1 MiB: %d %s", resp.StatusCode, got)
				}
			})

			t.Run("curl to Go upstream", func(t *testing.T) {
				dir := t.TempDir()
				for _, n := range e2eSizes {
					want := sha(cachedBody(n))
					file := filepath.Join(dir, sizeName(n))
					if err := os.WriteFile(file, cachedBody(n), 0o644); err != nil {
						t.Fatal(err)
					}
					for _, chunked := range []bool{false, true} {
						url := fmt.Sprintf("%s/blob?size=%d", base, n)
						if chunked {
							url += "&chunked=1"
						}
						r := runCurl(t, url)
						if r.status != 200 || sha(r.body) != want {
							t.Errorf("curl GET %s (chunked %v): %d, %d bytes", sizeName(n), chunked, r.status, len(r.body))
						}
						args := []string{"--data-binary", "@" + file, "-H", "Content-Type: application/octet-stream"}
						if chunked {
							args = append(args, "-H", "Transfer-Encoding: chunked")
						}
						r = runCurl(t, base+"/upload", args...)
						wantUp := fmt.Sprintf("%d %s", n, want)
						if r.status != 200 || string(r.body) != wantUp {
							t.Errorf("curl POST %s (chunked %v): %d %q, want %q", sizeName(n), chunked, r.status, r.body, wantUp)
						}
						if te := r.headers.Get("X-Seen-TE"); chunked && n > 0 && te != "chunked" {
							t.Errorf("curl POST %s chunked: upstream saw TE %q", sizeName(n), te)
						}
					}
				}
			})

			t.Run("trailers and large heads", func(t *testing.T) {
				c, _ := newClient(t)
				body := cachedBody(100000)
				req, _ := http.NewRequest("POST", base+"/trailers", unknownLength{bytes.NewReader(body)})
				req.Trailer = http.Header{"X-Req-Trailer": {"from-client"}}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(got) != "100000 bytes" {
					t.Fatalf("trailers: %d %q", resp.StatusCode, got)
				}
				if resp.Trailer.Get("X-Sum") != sha(body) {
					t.Errorf("response trailer X-Sum %q, want the body's hash", resp.Trailer.Get("X-Sum"))
				}
				if resp.Trailer.Get("X-Got-Trailer") != "from-client" {
					t.Errorf("the upstream got request trailer %q", resp.Trailer.Get("X-Got-Trailer"))
				}
				// Heads near the limits both ways: a 40 KiB request field, 90 fields, a 40 KiB
				// response field.
				hdr := []string{"X-Big", strings.Repeat("q", 40<<10)}
				for i := range 90 {
					hdr = append(hdr, "X-Many", strconv.Itoa(i))
				}
				resp, _ = doReq(t, c, "GET", base+"/bighead?size=40960", "", nil, hdr...)
				if resp.StatusCode != 200 || resp.Header.Get("X-Got-Big") != "40960" || resp.Header.Get("X-Got-Many") != "90" ||
					len(resp.Header.Get("X-Big-Response")) != 40<<10 {
					t.Errorf("large heads: %d, upstream got X-Big of %s and %s X-Many, response field of %d bytes",
						resp.StatusCode, resp.Header.Get("X-Got-Big"), resp.Header.Get("X-Got-Many"), len(resp.Header.Get("X-Big-Response")))
				}
			})

			t.Run("many concurrent clients", func(t *testing.T) {
				const clients, each = 24, 8
				var wg sync.WaitGroup
				for i := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c, _ := newClient(t)
						for j := range each {
							n := (i*each + j) * 997 % (200 << 10)
							if j%2 == 0 {
								resp, got := doReqHash(t, c, "GET", fmt.Sprintf("%s/blob?size=%d&chunked=%d", base, n, i%2), "", nil)
								if resp.StatusCode != 200 || got != sha(cachedBody(n)) {
									t.Errorf("client %d GET %d: %d", i, n, resp.StatusCode)
								}
								continue
							}
							resp, got := doReq(t, c, "POST", base+"/upload", "", bytes.NewReader(cachedBody(n)))
							if want := fmt.Sprintf("%d %s", n, sha(cachedBody(n))); resp.StatusCode != 200 || string(got) != want {
								t.Errorf("client %d POST %d: %d %q", i, n, resp.StatusCode, got)
							}
						}
					}()
				}
				wg.Wait()
			})

			t.Run("upstream closes idle connections", func(t *testing.T) {
				c, _ := newClient(t)
				for i := range 5 {
					resp, b := doReq(t, c, "GET", fmt.Sprintf("%s/blob?size=%d", base, 10+i), "idle", nil)
					if resp.StatusCode != 200 || !bytes.Equal(b, cachedBody(10+i)) {
						t.Fatalf("request %d after the upstream closed its idle connection: %d %q", i, resp.StatusCode, b)
					}
					time.Sleep(250 * time.Millisecond) // the upstream closes the pooled connection
				}
				if n := idle.conns.Load(); n < 5 {
					t.Errorf("the upstream accepted %d connections, want one per request", n)
				}
			})

			t.Run("close-delimited upstream response", func(t *testing.T) {
				// An HTTP/1.0-style upstream body ends with the connection; Strait re-frames it
				// chunked for an HTTP/1.1 client, which keeps its connection.
				c, dials := newClient(t)
				for _, n := range []int{0, 5, 300000} {
					resp, got := doReqHash(t, c, "GET", fmt.Sprintf("%s/blob?size=%d", base, n), "eof", nil)
					if resp.StatusCode != 200 || got != sha(cachedBody(n)) {
						t.Fatalf("close-delimited %d bytes: %d %s", n, resp.StatusCode, got)
					}
					if n > 0 && (resp.ContentLength != -1 || len(resp.TransferEncoding) != 1) {
						t.Errorf("close-delimited %d bytes reached the client with length %d, TE %v", n, resp.ContentLength, resp.TransferEncoding)
					}
				}
				if d := dials.n.Load(); d != 1 {
					t.Errorf("the client needed %d connections", d)
				}
			})

			t.Run("client aborts mid-response", func(t *testing.T) {
				rc := dialRaw(t, addr)
				io.WriteString(rc, "GET /blob?size=16777216&chunked=1 HTTP/1.1\r\nHost: x\r\n\r\n")
				if _, err := io.ReadFull(rc.br, make([]byte, 1<<20)); err != nil {
					t.Fatal(err)
				}
				rc.Conn.(*net.TCPConn).SetLinger(0)
				rc.Close()
				// Strait lets go of the exchange: no stream or connection stays active.
				deadline := time.Now().Add(5 * time.Second)
				for {
					active, _ := s.srv.Stats.Value(`strait_stream_downstream_rq_active{stat_prefix="http"}`)
					if active == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d streams still active after the client left", active)
					}
					time.Sleep(20 * time.Millisecond)
				}
				c, _ := newClient(t)
				if resp, b := doReq(t, c, "GET", base+"/blob?size=3", "", nil); resp.StatusCode != 200 || !bytes.Equal(b, cachedBody(3)) {
					t.Fatalf("after an aborted exchange: %d", resp.StatusCode)
				}
			})

			t.Run("early response to an upload", func(t *testing.T) {
				c, _ := newClient(t)
				for i := range 2 {
					resp, body := doReq(t, c, "POST", base+"/reject", "", bytes.NewReader(cachedBody(16<<20)))
					if resp.StatusCode != 413 || string(body) != "too large\n" {
						t.Fatalf("upload %d answered early: %d %q", i, resp.StatusCode, body)
					}
				}
				file := filepath.Join(t.TempDir(), "big")
				if err := os.WriteFile(file, cachedBody(16<<20), 0o644); err != nil {
					t.Fatal(err)
				}
				if r := runCurl(t, base+"/reject", "--data-binary", "@"+file); r.status != 413 {
					t.Fatalf("curl upload answered early: %d %q", r.status, r.body)
				}
			})

			t.Run("HTTP/1.0 client", func(t *testing.T) {
				// A chunked upstream response goes to an HTTP/1.0 client close-delimited.
				r := runCurl(t, base+"/blob?size=100000&chunked=1", "--http1.0")
				if r.status != 200 || sha(r.body) != sha(cachedBody(100000)) {
					t.Fatalf("curl --http1.0: %d, %d bytes", r.status, len(r.body))
				}
				if !strings.Contains(r.verbose, "HTTP/1.1 200") || r.headers.Get("Transfer-Encoding") != "" {
					t.Errorf("HTTP/1.0 client got Transfer-Encoding %q", r.headers.Get("Transfer-Encoding"))
				}
				rc := dialRaw(t, addr)
				io.WriteString(rc, "GET /blob?size=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /blob?size=20 HTTP/1.0\r\n\r\n")
				for i, n := range []int{10, 20} {
					resp, b, err := rc.readResponse("GET")
					if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, cachedBody(n)) {
						t.Fatalf("HTTP/1.0 request %d: %v %v %d bytes", i+1, err, resp, len(b))
					}
				}
				if closed, _ := rc.closedByPeer(5 * time.Second); !closed {
					t.Errorf("HTTP/1.0 without keep-alive: connection left open")
				}
			})

			t.Run("nginx upstream", func(t *testing.T) {
				c, _ := newClient(t)
				dir := t.TempDir()
				etag := ""
				for _, n := range e2eSizes {
					name := "f" + sizeName(n)
					want := sha(cachedBody(n))
					// Static files, through net/http and curl.
					resp, got := doReqHash(t, c, "GET", base+"/static/"+name, "nginx", nil)
					if resp.StatusCode != 200 || got != want || resp.ContentLength != int64(n) {
						t.Errorf("GET nginx %s: %d, length %d, body %s", name, resp.StatusCode, resp.ContentLength, got)
					}
					if resp.Header.Get("X-Nginx-Seen-Host") != "nginx" {
						t.Errorf("nginx saw Host %q", resp.Header.Get("X-Nginx-Seen-Host"))
					}
					if n == 1<<20 {
						etag = resp.Header.Get("ETag")
					}
					r := runCurl(t, base+"/static/"+name, "-H", "Host: nginx")
					if r.status != 200 || sha(r.body) != want {
						t.Errorf("curl GET nginx %s: %d, %d bytes", name, r.status, len(r.body))
					}
					// Uploads: nginx's DAV module stores what arrived; compare the file.
					for _, chunked := range []bool{false, true} {
						var body io.Reader = bytes.NewReader(cachedBody(n))
						if chunked {
							body = unknownLength{body}
						}
						dst := fmt.Sprintf("%s-%v", name, chunked)
						resp, _ := doReq(t, c, "PUT", base+"/up/"+dst, "nginx", body)
						if resp.StatusCode != 201 && resp.StatusCode != 204 {
							t.Errorf("PUT %s (chunked %v) to nginx: %d", name, chunked, resp.StatusCode)
						}
						stored, err := os.ReadFile(filepath.Join(ng.root, "up", dst))
						if err != nil || sha(stored) != want {
							t.Errorf("PUT %s (chunked %v): nginx stored %d bytes (%v), not the body", name, chunked, len(stored), err)
						}
						// POST a body to a static file: nginx reads and discards it, answers
						// the file. The connection must stay in step (the next request works).
						resp, got := doReqHash(t, c, "POST", base+"/static/f64KiB", "nginx", bytes.NewReader(cachedBody(n)))
						if resp.StatusCode != 200 || got != sha(cachedBody(64<<10)) {
							t.Errorf("POST %s to nginx: %d %s", name, resp.StatusCode, got)
						}
						file := filepath.Join(dir, dst)
						if err := os.WriteFile(file, cachedBody(n), 0o644); err != nil {
							t.Fatal(err)
						}
						args := []string{"-H", "Host: nginx", "--data-binary", "@" + file}
						if chunked {
							args = append(args, "-H", "Transfer-Encoding: chunked")
						}
						r := runCurl(t, base+"/up/curl-"+dst, append(args, "-X", "PUT")...)
						stored, err = os.ReadFile(filepath.Join(ng.root, "up", "curl-"+dst))
						if (r.status != 201 && r.status != 204) || err != nil || sha(stored) != want {
							t.Errorf("curl PUT %s (chunked %v): %d, nginx stored %d bytes (%v)", name, chunked, r.status, len(stored), err)
						}
						r = runCurl(t, base+"/static/f1KiB", args...)
						if r.status != 200 || !bytes.Equal(r.body, files["f1KiB"]) {
							t.Errorf("curl POST %s (chunked %v) to nginx: %d, %d bytes", name, chunked, r.status, len(r.body))
						}
					}
				}
				// A conditional GET: 304 with no body, and the connection goes on.
				rc := dialRaw(t, addr)
				fmt.Fprintf(rc, "GET /static/f1MiB HTTP/1.1\r\nHost: nginx\r\nIf-None-Match: %s\r\n\r\nGET /static/f1B HTTP/1.1\r\nHost: nginx\r\n\r\n", etag)
				resp, b, err := rc.readResponse("GET")
				if err != nil || resp.StatusCode != 304 || len(b) != 0 {
					t.Fatalf("conditional GET: %v %v %d bytes", err, resp, len(b))
				}
				resp, b, err = rc.readResponse("GET")
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, cachedBody(1)) {
					t.Fatalf("GET after a 304: %v %v %q", err, resp, b)
				}
			})

			t.Run("keep-alive reuse", func(t *testing.T) {
				c, dials := newClient(t)
				const n = 20
				cxBefore := s.counter("downstream_cx_total", "http")
				upBefore := ka.conns.Load()
				for i := range n {
					resp, b := doReq(t, c, "GET", fmt.Sprintf("%s/blob?size=%d", base, 100+i), "ka", nil)
					if resp.StatusCode != 200 || !bytes.Equal(b, cachedBody(100+i)) {
						t.Fatalf("request %d: %d %d bytes", i, resp.StatusCode, len(b))
					}
				}
				if d := dials.n.Load(); d != 1 {
					t.Errorf("the client opened %d connections for %d sequential requests, want 1", d, n)
				}
				if d := s.counter("downstream_cx_total", "http") - cxBefore; d != 1 {
					t.Errorf("Strait accepted %d downstream connections, want 1", d)
				}
				if d := ka.conns.Load() - upBefore; d != 1 {
					t.Errorf("the upstream accepted %d connections for %d sequential requests, want 1 (pool reuse)", d, n)
				}
				if got := ka.reqs.Load(); got != n {
					t.Errorf("the upstream served %d requests, want %d", got, n)
				}
				// nginx numbers its connections: every request came over one.
				seen := map[string]bool{}
				for range n {
					resp, _ := doReq(t, c, "GET", base+"/static/f1B", "nginx", nil)
					seen[resp.Header.Get("X-Nginx-Conn")] = true
				}
				if len(seen) != 1 {
					t.Errorf("%d sequential requests reached nginx over %d connections (%v), want 1", n, len(seen), seen)
				}
			})

			t.Run("pipelining", func(t *testing.T) {
				rc := dialRaw(t, addr)
				reqs := "GET /blob?size=10 HTTP/1.1\r\nHost: x\r\n\r\n" +
					"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
					"GET /blob?size=70000&chunked=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" +
					"GET /never HTTP/1.1\r\nHost: x\r\n\r\n"
				if _, err := io.WriteString(rc, reqs); err != nil {
					t.Fatal(err)
				}
				want := []string{sha(cachedBody(10)), sha([]byte(fmt.Sprintf("3 %s", sha([]byte("abc"))))), sha(cachedBody(70000))}
				for i, w := range want {
					resp, b, err := rc.readResponse("GET")
					if err != nil {
						t.Fatalf("response %d: %v", i+1, err)
					}
					if resp.StatusCode != 200 || sha(b) != w {
						t.Fatalf("response %d out of order or wrong: %d %q", i+1, resp.StatusCode, b[:min(len(b), 80)])
					}
				}
				// The third asked to close: the fourth is never answered.
				if closed, extra := rc.closedByPeer(5 * time.Second); !closed || len(extra) > 0 {
					t.Errorf("after Connection: close: closed %v, %d more bytes", closed, len(extra))
				}
			})

			t.Run("Expect 100-continue", func(t *testing.T) {
				body := cachedBody(1 << 20)
				want := fmt.Sprintf("%d %s", len(body), sha(body))
				file := filepath.Join(t.TempDir(), "body")
				if err := os.WriteFile(file, body, 0o644); err != nil {
					t.Fatal(err)
				}
				// curl waits up to 1 s for the 100 (--expect100-timeout); Strait answers it.
				r := runCurl(t, base+"/upload", "--data-binary", "@"+file, "-H", "Expect: 100-continue", "--expect100-timeout", "10")
				if r.status != 200 || string(r.body) != want {
					t.Fatalf("curl with Expect: %d %q", r.status, r.body)
				}
				if !strings.Contains(r.verbose, "HTTP/1.1 100 Continue") {
					t.Errorf("curl got no 100 Continue:\n%s", r.verbose)
				}
				if r.headers.Get("X-Seen-Expect") != "" {
					t.Errorf("Expect reached the upstream: %q", r.headers.Get("X-Seen-Expect"))
				}

				c, _ := newClient(t)
				got100 := false
				req, _ := http.NewRequest("POST", base+"/upload", bytes.NewReader(body))
				req.Header.Set("Expect", "100-continue")
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{Got100Continue: func() { got100 = true }}))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != want || !got100 {
					t.Fatalf("net/http with Expect: %d %q, got 100: %v", resp.StatusCode, b, got100)
				}
			})

			t.Run("HEAD 204 304", func(t *testing.T) {
				rc := dialRaw(t, addr)
				steps := []struct {
					method, path string
					status       int
					cl           string
				}{
					{"HEAD", "/blob?size=1000", 200, "1000"},
					{"GET", "/status/204", 204, ""},
					{"GET", "/status/304", 304, ""},
					{"HEAD", "/blob?size=5&chunked=1", 200, ""},
				}
				for _, st := range steps {
					fmt.Fprintf(rc, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", st.method, st.path)
					resp, b, err := rc.readResponse(st.method)
					if err != nil || resp.StatusCode != st.status || len(b) != 0 {
						t.Fatalf("%s %s: %v %v %d body bytes", st.method, st.path, err, resp, len(b))
					}
					if st.cl != "" && resp.Header.Get("Content-Length") != st.cl {
						t.Errorf("%s %s: Content-Length %q, want %q", st.method, st.path, resp.Header.Get("Content-Length"), st.cl)
					}
				}
				// No body byte leaked: the next response on the connection parses.
				fmt.Fprintf(rc, "GET /blob?size=5 HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, b, err := rc.readResponse("GET")
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, cachedBody(5)) {
					t.Fatalf("GET after bodiless responses: %v %v %q", err, resp, b)
				}
			})

			t.Run("WebSocket echo", func(t *testing.T) {
				cfg, err := websocket.NewConfig("ws://"+addr+"/ws", "http://localhost/")
				if err != nil {
					t.Fatal(err)
				}
				ws, err := websocket.DialConfig(cfg)
				if err != nil {
					t.Fatalf("WebSocket handshake through Strait: %v", err)
				}
				defer ws.Close()
				_ = ws.SetDeadline(time.Now().Add(20 * time.Second))
				for i, n := range []int{1, 100, 64 << 10, 300 << 10} {
					msg := cachedBody(n)
					if err := websocket.Message.Send(ws, msg); err != nil {
						t.Fatalf("send %d: %v", i, err)
					}
					var got []byte
					if err := websocket.Message.Receive(ws, &got); err != nil {
						t.Fatalf("receive %d: %v", i, err)
					}
					if !bytes.Equal(got, msg) {
						t.Fatalf("message %d (%d bytes) came back as %d bytes", i, n, len(got))
					}
				}
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { // both directions at once
					defer wg.Done()
					for i := range 50 {
						_ = websocket.Message.Send(ws, fmt.Sprintf("msg %d", i))
					}
				}()
				for i := range 50 {
					var got string
					if err := websocket.Message.Receive(ws, &got); err != nil || got != fmt.Sprintf("msg %d", i) {
						t.Fatalf("concurrent message %d: %q %v", i, got, err)
					}
				}
				wg.Wait()
			})
		})
	}
}

// doReqHash is doReq that hashes the body instead of keeping it.
func doReqHash(t testing.TB, c *http.Client, method, url, host string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %q): %v", method, url, host, err)
	}
	defer resp.Body.Close()
	_, sum, err := hashReader(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, sum
}

// routingRoutes exercises Envoy's route matching: virtual hosts by domain, path and header
// matchers, direct responses, rewrites, header changes and weighted clusters.
const routingRoutes = `name: routing
request_headers_to_add:
- header: {key: x-table, value: routing}
virtual_hosts:
- name: exact
  domains: ["exact.test"]
  request_headers_to_add: [{header: {key: x-vhost, value: exact}}]
  routes: [{match: {prefix: /}, route: {cluster: a}}]
- name: exact-in-wildcard
  domains: ["x.wild.test"]
  request_headers_to_add: [{header: {key: x-vhost, value: exact-in-wildcard}}]
  routes: [{match: {prefix: /}, route: {cluster: a}}]
- name: suffix
  domains: ["*.wild.test"]
  request_headers_to_add: [{header: {key: x-vhost, value: suffix}}]
  routes: [{match: {prefix: /}, route: {cluster: a}}]
- name: prefix
  domains: ["api.*"]
  request_headers_to_add: [{header: {key: x-vhost, value: prefix}}]
  routes: [{match: {prefix: /}, route: {cluster: b}}]
- name: default
  domains: ["*"]
  request_headers_to_add: [{header: {key: x-vhost, value: default}}]
  routes:
  - name: healthz
    match: {path: /healthz}
    direct_response: {status: 200, body: {inline_string: "ok\n"}}
  - name: teapot
    match: {path: /teapot}
    response_headers_to_add: [{header: {key: x-direct, value: "yes"}}]
    direct_response: {status: 418, body: {inline_string: "short and stout\n"}}
  - name: exact-path
    match: {path: /exact}
    route: {cluster: a, prefix_rewrite: /rewritten-exact}
  - name: regex
    match: {safe_regex: {regex: "/re/[0-9]+"}}
    route: {cluster: b}
  - name: header-exact
    match: {prefix: /hdr, headers: [{name: x-env, string_match: {exact: canary}}]}
    route: {cluster: b}
  - name: header-regex
    match: {prefix: /hdr, headers: [{name: x-user, string_match: {safe_regex: {regex: "u[0-9]+"}}}]}
    direct_response: {status: 200, body: {inline_string: "user route\n"}}
  - name: header-present
    match: {prefix: /hdr, headers: [{name: x-debug, present_match: true}]}
    direct_response: {status: 200, body: {inline_string: "debug route\n"}}
  - name: header-inverted
    match: {prefix: /hdr, headers: [{name: x-env, string_match: {prefix: prod}, invert_match: true}]}
    route: {cluster: a}
  - name: case-insensitive
    match: {prefix: /CaSe, case_sensitive: false}
    direct_response: {status: 200, body: {inline_string: "case route\n"}}
  - name: rewrite
    match: {prefix: /old/}
    route: {cluster: a, prefix_rewrite: /new/, host_rewrite_literal: upstream.internal}
  - name: headers
    match: {prefix: /headers}
    request_headers_to_add:
    - header: {key: x-added, value: v1}
    - header: {key: x-overwrite, value: new}
      append_action: OVERWRITE_IF_EXISTS_OR_ADD
    - header: {key: x-appended, value: two}
    request_headers_to_remove: [x-remove-me]
    response_headers_to_add: [{header: {key: x-resp-added, value: r1}}]
    response_headers_to_remove: [x-internal-debug]
    route: {cluster: a}
  - name: split
    match: {prefix: /split}
    route:
      weighted_clusters:
        clusters:
        - {name: a, weight: 75}
        - name: b
          weight: 25
          request_headers_to_add: [{header: {key: x-canary, value: "1"}}]
  - name: plain
    match: {prefix: /plain/}
    route: {cluster: a}`

// strictRoutes has no default virtual host: an unknown Host matches nothing.
const strictRoutes = `name: strict
virtual_hosts:
- name: only
  domains: ["only.test"]
  routes: [{match: {prefix: /}, route: {cluster: a}}]`

func TestHTTP1E2ERouting(t *testing.T) {
	a := newGoUpstream(t, "a", http.HandlerFunc(seenHandler))
	b := newGoUpstream(t, "b", http.HandlerFunc(seenHandler))
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"routing", hcmFilter("routing", routingRoutes)}, {"strict", hcmFilter("strict", strictRoutes)}},
				[]clusterSpec{{name: "a", hosts: []string{a.addr()}}, {name: "b", hosts: []string{b.addr()}}}, ""))
			base := "http://" + s.addr(t, "routing")
			c, _ := newClient(t)

			cases := []struct {
				name, path, host string
				hdr              []string
				status           int
				upstream         string            // "" for a direct response or no route
				body             string            // for direct responses
				seen             map[string]string // what the upstream must have seen
				notSeen          []string          // headers the upstream must not have seen
			}{
				{name: "exact domain", path: "/plain/x", host: "exact.test", status: 200, upstream: "a",
					seen: map[string]string{"x-vhost": "exact", "host": "exact.test", "x-table": "routing"}},
				{name: "exact domain with port", path: "/plain/x", host: "exact.test:8080", status: 200, upstream: "a",
					seen: map[string]string{"x-vhost": "exact", "host": "exact.test:8080"}},
				{name: "domain case-insensitive", path: "/plain/x", host: "EXACT.Test", status: 200, upstream: "a",
					seen: map[string]string{"x-vhost": "exact"}},
				{name: "suffix wildcard", path: "/plain/x", host: "deep.y.wild.test", status: 200, upstream: "a",
					seen: map[string]string{"x-vhost": "suffix"}},
				{name: "exact beats wildcard", path: "/plain/x", host: "x.wild.test", status: 200, upstream: "a",
					seen: map[string]string{"x-vhost": "exact-in-wildcard"}},
				{name: "prefix wildcard", path: "/anything", host: "api.example.org", status: 200, upstream: "b",
					seen: map[string]string{"x-vhost": "prefix", "path": "/anything"}},
				{name: "default virtual host", path: "/plain/y?q=1", host: "unknown.example", status: 200, upstream: "a",
					seen: map[string]string{"x-vhost": "default", "path": "/plain/y?q=1", "host": "unknown.example"}},
				{name: "direct response", path: "/healthz", status: 200, body: "ok\n"},
				{name: "direct response is exact-path", path: "/healthz/more", status: 404},
				{name: "direct response status", path: "/teapot", status: 418, body: "short and stout\n"},
				{name: "exact path with rewrite", path: "/exact?k=v", status: 200, upstream: "a",
					seen: map[string]string{"path": "/rewritten-exact?k=v"}},
				{name: "exact path does not match a longer path", path: "/exactly", status: 404},
				{name: "regex", path: "/re/123", status: 200, upstream: "b", seen: map[string]string{"path": "/re/123"}},
				{name: "regex is anchored", path: "/re/123x", status: 404},
				{name: "header exact", path: "/hdr", hdr: []string{"X-Env", "canary"}, status: 200, upstream: "b"},
				{name: "header regex", path: "/hdr", hdr: []string{"X-User", "u42"}, status: 200, body: "user route\n"},
				{name: "header regex is anchored", path: "/hdr", hdr: []string{"X-User", "xu42", "X-Env", "dev"}, status: 200, upstream: "a"},
				{name: "header present", path: "/hdr", hdr: []string{"X-Debug", ""}, status: 200, body: "debug route\n"},
				{name: "header inverted", path: "/hdr", hdr: []string{"X-Env", "staging"}, status: 200, upstream: "a"},
				{name: "header inverted excludes", path: "/hdr", hdr: []string{"X-Env", "production"}, status: 404},
				{name: "case-insensitive prefix", path: "/cAsE/x", status: 200, body: "case route\n"},
				{name: "prefix is case-sensitive by default", path: "/PLAIN/x", status: 404},
				{name: "prefix_rewrite and host_rewrite_literal", path: "/old/path?x=1", host: "client.example", status: 200, upstream: "a",
					seen: map[string]string{"path": "/new/path?x=1", "host": "upstream.internal"}},
				{name: "request header changes", path: "/headers", status: 200, upstream: "a",
					hdr: []string{"X-Overwrite", "old", "X-Appended", "one", "X-Remove-Me", "gone", "X-Kept", "kept"},
					seen: map[string]string{"x-added": "v1", "x-overwrite": "new", "x-appended": "one,two", "x-kept": "kept",
						"x-table": "routing", "x-vhost": "default"},
					notSeen: []string{"x-remove-me"}},
				{name: "no route", path: "/nowhere", status: 404},
			}
			for _, tc := range cases {
				req, _ := http.NewRequest("GET", base+tc.path, nil)
				if tc.host != "" {
					req.Host = tc.host
				}
				for i := 0; i+1 < len(tc.hdr); i += 2 {
					req.Header.Add(tc.hdr[i], tc.hdr[i+1])
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				up := resp.Header.Get("X-Upstream")
				switch {
				case resp.StatusCode != tc.status:
					t.Errorf("%s: status %d, want %d (%q)", tc.name, resp.StatusCode, tc.status, body)
					continue
				case up != tc.upstream:
					t.Errorf("%s: answered by upstream %q, want %q", tc.name, up, tc.upstream)
					continue
				case tc.upstream == "" && string(body) != tc.body:
					t.Errorf("%s: body %q, want %q", tc.name, body, tc.body)
				}
				seen := parseSeen(string(body))
				for k, v := range tc.seen {
					if seen[k] != v {
						t.Errorf("%s: upstream saw %s %q, want %q", tc.name, k, seen[k], v)
					}
				}
				for _, k := range tc.notSeen {
					if _, ok := seen[k]; ok {
						t.Errorf("%s: upstream saw %s", tc.name, k)
					}
				}
				if tc.name == "request header changes" {
					if resp.Header.Get("X-Resp-Added") != "r1" || resp.Header.Get("X-Internal-Debug") != "" {
						t.Errorf("response header changes: X-Resp-Added %q, X-Internal-Debug %q", resp.Header.Get("X-Resp-Added"), resp.Header.Get("X-Internal-Debug"))
					}
				}
				if tc.upstream != "" && tc.name != "request header changes" && resp.Header.Get("X-Internal-Debug") != "secret" {
					t.Errorf("%s: a response header was removed outside its route", tc.name)
				}
				if tc.name == "direct response status" && resp.Header.Get("X-Direct") != "yes" {
					t.Errorf("direct response without its response_headers_to_add")
				}
			}

			// curl sees the same routing (Host from -H).
			if r := runCurl(t, base+"/old/p", "-H", "Host: curl.example"); r.status != 200 ||
				parseSeen(string(r.body))["path"] != "/new/p" || parseSeen(string(r.body))["host"] != "upstream.internal" {
				t.Errorf("curl through the rewrite route: %d %q", r.status, r.body)
			}

			t.Run("no virtual host", func(t *testing.T) {
				strict := "http://" + s.addr(t, "strict")
				resp, _ := doReq(t, c, "GET", strict+"/x", "other.test", nil)
				if resp.StatusCode != 404 {
					t.Errorf("unknown Host: %d, want 404", resp.StatusCode)
				}
				resp, _ = doReq(t, c, "GET", strict+"/x", "only.test", nil)
				if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "a" {
					t.Errorf("known Host: %d from %q", resp.StatusCode, resp.Header.Get("X-Upstream"))
				}
				if n := s.counter("no_route_total", "strict"); n != 1 {
					t.Errorf("no_route_total %d, want 1", n)
				}
			})

			t.Run("weighted clusters", func(t *testing.T) {
				const total, workers = 1000, 8
				var mu sync.Mutex
				counts := map[string]int{}
				canaryOK := true
				var wg sync.WaitGroup
				next := make(chan int, total)
				for i := range total {
					next <- i
				}
				close(next)
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range next {
							resp, err := c.Get(base + "/split")
							if err != nil {
								t.Error(err)
								return
							}
							body, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							up := resp.Header.Get("X-Upstream")
							canary := parseSeen(string(body))["x-canary"]
							mu.Lock()
							counts[up]++
							if (up == "b") != (canary == "1") {
								canaryOK = false
							}
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				// 75/25 of 1,000: the standard deviation is 13.7; allow 5 of them.
				if counts["a"]+counts["b"] != total || counts["a"] < 750-69 || counts["a"] > 750+69 {
					t.Errorf("split %v, want about 750/250", counts)
				}
				if !canaryOK {
					t.Errorf("the weighted cluster's request_headers_to_add did not follow its cluster")
				}
			})
		})
	}
}

const retryRoutes = `name: retries
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {prefix: /reset/retry}
    route: {cluster: rst-pair, retry_policy: {retry_on: reset, num_retries: 1}}
  - match: {prefix: /reset/none}
    route: {cluster: rst-pair}
  - match: {prefix: /5xx/retry}
    route: {cluster: flaky, retry_policy: {retry_on: 5xx, num_retries: 2}}
  - match: {prefix: /5xx/none}
    route: {cluster: flaky}
  - match: {prefix: /timeout}
    route: {cluster: stall, timeout: 0.3s}
  - match: {prefix: /pertry}
    route: {cluster: stall-pair, timeout: 5s, retry_policy: {retry_on: 5xx, num_retries: 1, per_try_timeout: 0.3s}}
  - match: {prefix: /sent}
    route: {cluster: rst-only, retry_policy: {retry_on: "reset,connect-failure", num_retries: 2}}
  - match: {prefix: /connect/}
    route: {cluster: dead-pair, prefix_rewrite: /, retry_policy: {retry_on: connect-failure, num_retries: 1}}`

func TestHTTP1E2ERetriesAndTimeouts(t *testing.T) {
	good := newGoUpstream(t, "good", appHandler())
	// flaky answers 503 to the first two attempts of every request (by X-Req-Id).
	var flakyMu sync.Mutex
	attempts := map[string]int{}
	flaky := newGoUpstream(t, "flaky", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flakyMu.Lock()
		attempts[r.Header.Get("X-Req-Id")]++
		n := attempts[r.Header.Get("X-Req-Id")]
		flakyMu.Unlock()
		if n <= 2 {
			w.WriteHeader(503)
			io.WriteString(w, "try again\n")
			return
		}
		fmt.Fprintf(w, "attempt %d", n)
	}))
	attemptsOf := func(id string) int {
		flakyMu.Lock()
		defer flakyMu.Unlock()
		return attempts[id]
	}

	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			rst := newRawUpstream(t, func(int64, *http.Request) rawAction { return rawReset })
			rstOnly := newRawUpstream(t, func(int64, *http.Request) rawAction { return rawReset })
			stall := newRawUpstream(t, func(int64, *http.Request) rawAction { return rawStall })
			stall2 := newRawUpstream(t, func(int64, *http.Request) rawAction { return rawStall })
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"retries", hcmFilter("retries", retryRoutes)}},
				[]clusterSpec{
					{name: "rst-pair", hosts: []string{rst.addr(), good.addr()}},
					{name: "rst-only", hosts: []string{rstOnly.addr()}},
					{name: "flaky", hosts: []string{flaky.addr()}},
					{name: "stall", hosts: []string{stall.addr()}},
					{name: "stall-pair", hosts: []string{stall2.addr(), good.addr()}},
					{name: "dead-pair", hosts: []string{deadAddr(t), good.addr()}},
				}, ""))
			base := "http://" + s.addr(t, "retries")
			c, _ := newClient(t)
			retries := func() uint64 { return s.counter("upstream_rq_retry_total", "retries") }

			t.Run("reset retried on the other host", func(t *testing.T) {
				before := retries()
				for i := range 4 {
					resp, body := doReq(t, c, "GET", fmt.Sprintf("%s/reset/retry/%d", base, i), "", nil)
					if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "good" {
						t.Fatalf("request %d: %d from %q: %q", i, resp.StatusCode, resp.Header.Get("X-Upstream"), body)
					}
				}
				reset := int64(rst.requests())
				if reset == 0 {
					t.Fatalf("no request reached the resetting host: round robin never picked it")
				}
				if got := retries() - before; got != uint64(reset) {
					t.Errorf("%d retries for %d resets", got, reset)
				}
				// Without a retry policy the reset reaches the client as a 503.
				failed := 0
				for i := range 4 {
					resp, _ := doReq(t, c, "GET", fmt.Sprintf("%s/reset/none/%d", base, i), "", nil)
					switch resp.StatusCode {
					case 503:
						failed++
					case 200:
					default:
						t.Errorf("no policy: status %d", resp.StatusCode)
					}
				}
				if failed == 0 || failed == 4 {
					t.Errorf("no policy: %d of 4 requests failed, want the ones that went to the resetting host (half)", failed)
				}
			})

			t.Run("5xx retried", func(t *testing.T) {
				id := tr + "-retry"
				resp, body := doReq(t, c, "GET", base+"/5xx/retry", "", nil, "X-Req-Id", id)
				if resp.StatusCode != 200 || string(body) != "attempt 3" || attemptsOf(id) != 3 {
					t.Fatalf("with retry_on 5xx, num_retries 2: %d %q after %d attempts", resp.StatusCode, body, attemptsOf(id))
				}
				id = tr + "-none"
				resp, body = doReq(t, c, "GET", base+"/5xx/none", "", nil, "X-Req-Id", id)
				if resp.StatusCode != 503 || string(body) != "try again\n" || attemptsOf(id) != 1 {
					t.Fatalf("without a policy: %d %q after %d attempts, want the upstream's 503 after 1", resp.StatusCode, body, attemptsOf(id))
				}
				// The budget runs out: num_retries 2 and three 503s in a row.
				id = tr + "-exhausted"
				flakyMu.Lock()
				attempts[id] = -1 // two 503s then one more
				flakyMu.Unlock()
				resp, _ = doReq(t, c, "GET", base+"/5xx/retry", "", nil, "X-Req-Id", id)
				if resp.StatusCode != 503 || attemptsOf(id) != 2 {
					t.Fatalf("retries exhausted: %d after %d attempts (counting from -1), want 503", resp.StatusCode, attemptsOf(id))
				}
			})

			t.Run("route timeout", func(t *testing.T) {
				const timeout = 300 * time.Millisecond
				start := time.Now()
				resp, body := doReq(t, c, "GET", base+"/timeout", "", nil)
				took := time.Since(start)
				if resp.StatusCode != 504 {
					t.Fatalf("stalled upstream: %d %q, want 504", resp.StatusCode, body)
				}
				if took < timeout || took > timeout+1500*time.Millisecond {
					t.Errorf("504 after %v, route timeout %v", took, timeout)
				}
				// The client's connection survives a timeout.
				resp, _ = doReq(t, c, "GET", base+"/5xx/retry", "", nil, "X-Req-Id", tr+"-after-timeout")
				if resp.StatusCode != 200 {
					t.Errorf("after a timeout: %d", resp.StatusCode)
				}
			})

			t.Run("per_try_timeout moves to the next host", func(t *testing.T) {
				for i := range 4 {
					start := time.Now()
					resp, body := doReq(t, c, "GET", fmt.Sprintf("%s/pertry/%d", base, i), "", nil)
					took := time.Since(start)
					if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "good" {
						t.Fatalf("request %d: %d %q from %q", i, resp.StatusCode, body, resp.Header.Get("X-Upstream"))
					}
					if took > 3*time.Second {
						t.Errorf("request %d took %v: the per-try timeout did not fire", i, took)
					}
				}
				if stall2.requests() == 0 {
					t.Fatalf("no request reached the stalling host")
				}
			})

			t.Run("POST not retried once sent", func(t *testing.T) {
				before := rstOnly.requests()
				resp, _ := doReq(t, c, "POST", base+"/sent", "", strings.NewReader("payload"))
				if resp.StatusCode != 503 {
					t.Errorf("POST to a resetting host: %d, want 503", resp.StatusCode)
				}
				if n := rstOnly.requests() - before; n != 1 {
					t.Errorf("a POST reached the host %d times, want 1 (not idempotent)", n)
				}
				// An idempotent GET is retried num_retries times on the same route.
				before = rstOnly.requests()
				resp, _ = doReq(t, c, "GET", base+"/sent", "", nil)
				if n := rstOnly.requests() - before; resp.StatusCode != 503 || n != 3 {
					t.Errorf("GET: %d after %d attempts, want 503 after 3", resp.StatusCode, n)
				}
			})

			t.Run("POST retried on connect failure", func(t *testing.T) {
				fails := s.counter("upstream_cx_connect_fail_total", "retries")
				for i := range 4 {
					body := cachedBody(1000 + i)
					resp, got := doReq(t, c, "POST", base+"/connect/upload", "", bytes.NewReader(body))
					if want := fmt.Sprintf("%d %s", len(body), sha(body)); resp.StatusCode != 200 || string(got) != want {
						t.Fatalf("POST %d: %d %q, want %q", i, resp.StatusCode, got, want)
					}
				}
				if s.counter("upstream_cx_connect_fail_total", "retries") == fails {
					t.Fatalf("no connect failure happened: round robin never picked the dead host")
				}
			})
		})
	}
}

// smuggle is the request every hostile input tries to sneak past Strait.
const smuggle = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

// hostileRequests is the request-smuggling and malformed-input corpus of
// notes/bad-input.md (§3.5, §3.6), each with the status Strait must answer before closing.
// Each carries (or is followed by) a smuggled request.
func hostileRequests() []struct {
	name, raw string
	status    int
} {
	bigHead := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"
	var many strings.Builder
	many.WriteString("GET / HTTP/1.1\r\nHost: x\r\n")
	for i := range 101 {
		fmt.Fprintf(&many, "X-H%d: v\r\n", i)
	}
	many.WriteString("\r\n")
	return []struct {
		name, raw string
		status    int
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle, 400},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggle + "\r\n0\r\n\r\n", 400},
		{"duplicate CL equal", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + smuggle, 400},
		{"duplicate CL different", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n" + smuggle, 400},
		{"CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello" + smuggle, 400},
		{"CL with sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello" + smuggle, 400},
		{"CL negative", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" + smuggle, 400},
		{"CL inner space", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n" + smuggle, 400},
		{"CL hex", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello" + smuggle, 400},
		{"CL leading zeros", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello" + smuggle, 400},
		{"CL overflow", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n" + smuggle, 400},
		{"TE xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggle, 501},
		{"TE chunked not last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggle, 501},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggle, 501},
		{"TE identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n" + smuggle, 501},
		{"TE twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle, 400},
		{"TE space before colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggle, 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle, 400},
		{"TE line-folded", "POST / HTTP/1.1\r\nHost: x\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle, 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n\tb\r\n\r\n" + smuggle, 400},
		{"bare LF before TE", "POST / HTTP/1.1\r\nHost: x\r\nX: X\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle, 400},
		{"bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n" + smuggle, 400},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n" + smuggle, 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + smuggle, 400},
		{"NUL in name", "GET / HTTP/1.1\r\nHost: x\r\nX-\x00A: b\r\n\r\n" + smuggle, 400},
		{"space in name", "GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n" + smuggle, 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n" + smuggle, 400},
		{"empty header name", "GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n" + smuggle, 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A b\r\n\r\n" + smuggle, 400},
		{"chunk size not hex", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n" + smuggle, 400},
		{"chunk size 0x", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n" + smuggle, 400},
		{"chunk size negative", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n" + smuggle, 400},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabc\r\n0\r\n\r\n" + smuggle, 400},
		{"chunk longer than its size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n" + smuggle, 400},
		{"chunk bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n" + smuggle, 400},
		{"chunk size with space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n" + smuggle, 400},
		{"Content-Length trailer", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 37\r\n\r\n" + smuggle, 400},
		{"head too large", bigHead + smuggle, 431},
		{"too many headers", many.String() + smuggle, 431},
		{"request line too long", "GET /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n" + smuggle, 414},
		{"missing Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n" + smuggle, 400},
		{"duplicate Host", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + smuggle, 400},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: a@x\r\n\r\n" + smuggle, 400},
		{"Host differs from absolute target", "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n" + smuggle, 400},
		{"invalid method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n" + smuggle, 400},
		{"control byte in target", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n" + smuggle, 400},
		{"fragment in target", "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n" + smuggle, 400},
		{"double space in request line", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n" + smuggle, 400},
		{"HTTP/0.9", "GET /\r\n\r\n" + smuggle, 400},
		{"HTTP/2.0 on HTTP/1", "GET / HTTP/2.0\r\nHost: x\r\n\r\n" + smuggle, 505},
		{"lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n" + smuggle, 400},
		{"Connection names Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: 37\r\n\r\n" + smuggle, 400},
		{"CONNECT with a body", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\nContent-Length: 37\r\n\r\n" + smuggle, 400},
		{"authority-form for GET", "GET x:80 HTTP/1.1\r\nHost: x:80\r\n\r\n" + smuggle, 400},
		{"asterisk for GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n" + smuggle, 400},
	}
}

func TestHTTP1E2EHostileInput(t *testing.T) {
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			rec := newRawUpstream(t, func(int64, *http.Request) rawAction { return rawAnswer })
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"edge", hcmFilter("edge", `name: edge
virtual_hosts:
- name: all
  domains: ["*"]
  routes: [{match: {prefix: /}, route: {cluster: rec}}]`)}},
				[]clusterSpec{{name: "rec", hosts: []string{rec.addr()}}}, ""))
			addr := s.addr(t, "edge")

			// check writes the payload on a new connection, expects one response per status
			// (the last with Connection: close), then the close, and that the upstream
			// received a complete request exactly for each 200 (the valid first request).
			check := func(t *testing.T, name, payload string, wantStatuses ...int) {
				t.Helper()
				_, pathsBefore := rec.received()
				defer func() {
					_, paths := rec.received()
					var want []string
					for _, st := range wantStatuses {
						if st == 200 {
							want = append(want, "/legit")
						}
					}
					if got := paths[len(pathsBefore):]; strings.Join(got, " ") != strings.Join(want, " ") {
						t.Errorf("%s: the upstream received requests %q, want %q", name, got, want)
					}
				}()
				rc := dialRaw(t, addr)
				if _, err := io.WriteString(rc, payload); err != nil {
					t.Errorf("%s: write: %v", name, err)
					return
				}
				for i, want := range wantStatuses {
					resp, _, err := rc.readResponse("GET")
					if err != nil {
						t.Errorf("%s: response %d: %v", name, i+1, err)
						return
					}
					if resp.StatusCode != want {
						t.Errorf("%s: response %d is %d, want %d", name, i+1, resp.StatusCode, want)
						return
					}
					if i == len(wantStatuses)-1 && !resp.Close {
						t.Errorf("%s: the %d does not say Connection: close", name, want)
					}
				}
				if closed, extra := rc.closedByPeer(5 * time.Second); !closed || len(extra) > 0 {
					t.Errorf("%s: connection closed %v, %d more bytes (%q)", name, closed, len(extra), extra[:min(len(extra), 60)])
				}
			}

			t.Run("alone", func(t *testing.T) {
				for _, h := range hostileRequests() {
					check(t, h.name, h.raw, h.status)
				}
			})
			t.Run("after a valid request", func(t *testing.T) {
				for _, h := range hostileRequests() {
					check(t, h.name, "GET /legit HTTP/1.1\r\nHost: x\r\n\r\n"+h.raw, 200, h.status)
				}
			})

			time.Sleep(200 * time.Millisecond) // let anything late arrive
			raw, paths := rec.received()
			if strings.Contains(raw, "smuggled") {
				t.Errorf("the upstream received the smuggled request:\n%q", raw)
			}
			// What reached the upstream: the valid first requests, and the heads of requests
			// whose framing was valid but whose chunked body turned out hostile (their body
			// was cut and the upstream connection aborted).
			legit := 0
			for _, p := range paths {
				if p == "/legit" {
					legit++
				} else if p != "/" {
					t.Errorf("the upstream received %q", p)
				}
			}
			if n := len(hostileRequests()); legit != n {
				t.Errorf("the upstream received %d valid first requests, want %d", legit, n)
			}
			if strings.Contains(raw, "X-Big") || strings.Contains(raw, "X-H100") || strings.Contains(raw, "X-Folded") {
				t.Errorf("a rejected head reached the upstream")
			}
			if n := s.counter("downstream_protocol_error_total", "edge"); n < uint64(2*len(hostileRequests())) {
				t.Errorf("downstream_protocol_error_total %d, want at least %d", n, 2*len(hostileRequests()))
			}
		})
	}
}

// newEOFUpstream answers every request HTTP/1.0-style: bodyOf(size) delimited by closing the
// connection.
func newEOFUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
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
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				n, _ := strconv.Atoi(req.URL.Query().Get("size"))
				if _, err := io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"); err == nil {
					_, _ = c.Write(cachedBody(n))
				}
			}()
		}
	}()
	return ln.Addr().String()
}
