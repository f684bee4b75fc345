package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strait-proxy/strait/pipeline/server"
)

// This file holds the harness of the end-to-end tests: Strait run in-process from an Envoy
// bootstrap with the built-in extension lists, and the peers around it (Go upstreams,
// raw-TCP upstreams that record, reset or stall, nginx, curl, raw clients).

// e2eTransports are the transports every end-to-end test runs on.
func e2eTransports() []string { return transportNames() }

// --- Strait ------------------------------------------------------------------------------

// strait is one Strait running in-process.
type strait struct {
	srv  *server.Server
	logs *syncBuffer
}

// addr is the bound address of the named listener.
func (s *strait) addr(t testing.TB, listener string) string {
	t.Helper()
	a := s.srv.Addr(listener)
	if a == nil {
		t.Fatalf("no listener %q", listener)
	}
	return a.String()
}

// counter reads one of the stream manager's counters.
func (s *strait) counter(name, statPrefix string) uint64 {
	return s.srv.Stats.Counter(`strait_stream_` + name + `{stat_prefix="` + statPrefix + `"}`).Load()
}

// runStrait serves the bootstrap on the transport until the test ends.
func runStrait(t testing.TB, transport, bootstrap string) *strait {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	level := slog.LevelWarn
	ready := make(chan *server.Server, 1)
	done := make(chan error, 1)
	o := server.Options{
		ConfigName: "e2e-bootstrap.yaml",
		ConfigData: []byte(bootstrap),
		Transport:  transport,
		LogOutput:  logs,
		LogLevel:   &level,
		Ready:      func(s *server.Server) { ready <- s },
	}
	go func() { done <- server.Run(ctx, o, builtins()) }()
	var s *strait
	select {
	case srv := <-ready:
		s = &strait{srv: srv, logs: logs}
	case err := <-done:
		cancel()
		t.Fatalf("strait did not start: %v\nbootstrap:\n%s", err, bootstrap)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatalf("strait did not start in 15s: %s", logs.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("strait: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("strait did not stop after cancel")
		}
		if strings.Contains(logs.String(), "panic") {
			t.Errorf("strait logged a panic:\n%s", logs.String())
		}
	})
	return s
}

// --- bootstraps --------------------------------------------------------------------------

// clusterSpec is one STATIC cluster.
type clusterSpec struct {
	name  string
	hosts []string // host:port
	// extra is YAML inserted into the cluster at its indentation (lb_policy, circuit breakers).
	extra string
}

// listenerSpec is one listener on 127.0.0.1:0 whose only filter is given as YAML (indented
// to sit under "filters:").
type listenerSpec struct {
	name   string
	filter string
}

// hcmFilter is an HttpConnectionManager with an inline route_config (YAML indented by
// 10 spaces, i.e. as the value of route_config) and the router.
func hcmFilter(statPrefix, routeConfig string) string {
	return `      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ` + statPrefix + `
          route_config:
` + indent(routeConfig, 12) + `
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`
}

// bootstrapYAML assembles a bootstrap: listeners, clusters, and a runtime extension with a
// short drain so that tests end quickly.
func bootstrapYAML(listeners []listenerSpec, clusters []clusterSpec, runtime string) string {
	var b strings.Builder
	b.WriteString("static_resources:\n  listeners:\n")
	for _, l := range listeners {
		fmt.Fprintf(&b, "  - name: %s\n    address:\n      socket_address: {address: 127.0.0.1, port_value: 0}\n    filter_chains:\n    - filters:\n%s", l.name, l.filter)
	}
	b.WriteString("  clusters:\n")
	for _, c := range clusters {
		fmt.Fprintf(&b, "  - name: %s\n    type: STATIC\n    connect_timeout: 1s\n", c.name)
		if c.extra != "" {
			b.WriteString(indent(c.extra, 4) + "\n")
		}
		fmt.Fprintf(&b, "    load_assignment:\n      cluster_name: %s\n      endpoints:\n      - lb_endpoints:\n", c.name)
		for _, h := range c.hosts {
			host, port, err := net.SplitHostPort(h)
			if err != nil {
				panic(err)
			}
			fmt.Fprintf(&b, "        - endpoint:\n            address:\n              socket_address: {address: %s, port_value: %s}\n", host, port)
		}
	}
	b.WriteString(`bootstrap_extensions:
- name: strait.runtime
  typed_config:
    "@type": type.googleapis.com/xds.type.v3.TypedStruct
    type_url: type.googleapis.com/strait.config.v1.Runtime
    value:
      drain_timeout: 1s
      loops: 2
`)
	if runtime != "" {
		b.WriteString(indent(runtime, 6) + "\n")
	}
	return b.String()
}

// indent prefixes every non-empty line of s (after trimming a common leading newline) with n
// spaces.
func indent(s string, n int) string {
	s = strings.Trim(s, "\n")
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

// --- bodies ------------------------------------------------------------------------------

// bodyOf returns n deterministic pseudo-random bytes (the same n gives the same bytes).
func bodyOf(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	_, _ = r.Read(b)
	return b
}

var (
	bodyMu    sync.Mutex
	bodyCache = map[int][]byte{}
)

// cachedBody is bodyOf(n), computed once per test binary.
func cachedBody(n int) []byte {
	bodyMu.Lock()
	defer bodyMu.Unlock()
	if b, ok := bodyCache[n]; ok {
		return b
	}
	b := bodyOf(n)
	bodyCache[n] = b
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hashReader hashes everything r yields.
func hashReader(r io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// unknownLength hides a reader's length from net/http, so it sends the body chunked.
type unknownLength struct{ r io.Reader }

func (u unknownLength) Read(p []byte) (int, error) { return u.r.Read(p) }

// --- Go upstreams ------------------------------------------------------------------------

// goUpstream is a net/http server that counts the TCP connections it accepted.
type goUpstream struct {
	*httptest.Server
	name  string
	conns atomic.Int64
	reqs  atomic.Int64
}

func (u *goUpstream) addr() string { return u.Listener.Addr().String() }

// newGoUpstream serves h. Every response carries X-Upstream: name. opts adjust the server
// before it starts.
func newGoUpstream(t testing.TB, name string, h http.Handler, opts ...func(*http.Server)) *goUpstream {
	t.Helper()
	u := &goUpstream{name: name}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.reqs.Add(1)
		w.Header().Set("X-Upstream", name)
		h.ServeHTTP(w, r)
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	for _, o := range opts {
		o(u.Config)
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// appHandler is the Go upstream most tests use:
//
//	GET  /blob?size=N[&chunked=1]  N bytes of bodyOf(N), with Content-Length or chunked
//	POST|PUT /upload               answers "<length> <sha256>" of the request body, with
//	                               X-Seen-* headers saying how it was framed
//	POST /echo                     answers the request body
//	any  /seen...                  answers what arrived: method, path, host, headers
//	GET  /status/N                 answers status N with no body
func appHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("size"))
		body := cachedBody(n)
		if r.URL.Query().Get("chunked") == "1" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush() // no Content-Length: the body goes chunked
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, sum, err := hashReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Seen-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-Seen-CL", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("X-Seen-Expect", r.Header.Get("Expect"))
		fmt.Fprintf(w, "%d %s", n, sum)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if code == 0 {
			code = 200
		}
		if code == 304 {
			w.Header().Set("ETag", `"v1"`)
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/", seenHandler)
	return mux
}

// seenHandler answers with what arrived, one "key: value" per line: the method, the path
// (with query), the Host, then every header in canonical form.
func seenHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "method: %s\npath: %s\nhost: %s\n", r.Method, r.URL.RequestURI(), r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(k), v)
		}
	}
	w.Header().Set("X-Internal-Debug", "secret")
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, b.String())
}

// parseSeen turns seenHandler's answer into a map (repeated keys joined with ",").
func parseSeen(body string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(body, "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		if old, dup := m[k]; dup {
			v = old + "," + v
		}
		m[k] = v
	}
	return m
}

// --- raw-TCP upstreams -------------------------------------------------------------------

// tcpServer accepts connections on 127.0.0.1 and runs serve on each, on its own goroutine;
// close (also registered as a cleanup) closes the listener and every open connection and
// waits for the goroutines.
type tcpServer struct {
	ln      net.Listener
	wg      sync.WaitGroup
	connsMu sync.Mutex
	conns   map[net.Conn]struct{}
}

func newTCPServer(t testing.TB, serve func(net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.connsMu.Lock()
			s.conns[c] = struct{}{}
			s.connsMu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.connsMu.Lock()
					delete(s.conns, c)
					s.connsMu.Unlock()
					c.Close()
				}()
				serve(c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *tcpServer) addr() string { return s.ln.Addr().String() }

func (s *tcpServer) close() {
	s.ln.Close()
	s.connsMu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.connsMu.Unlock()
	s.wg.Wait()
}

// rawUpstream is a TCP server whose behaviour per request is a function; it records every
// byte it received.
type rawUpstream struct {
	*tcpServer
	mu    sync.Mutex
	raw   bytes.Buffer
	paths []string
}

// rawAction says what a rawUpstream does with a request it read whole.
type rawAction int

const (
	rawAnswer rawAction = iota // answer 200 "ok" (keep-alive)
	rawReset                   // abort the connection with a TCP RST
	rawStall                   // answer nothing; keep the connection until the peer closes
)

// newRawUpstream serves requests, deciding per request (n counts requests on all
// connections, from 1) what to do.
func newRawUpstream(t testing.TB, decide func(n int64, req *http.Request) rawAction) *rawUpstream {
	t.Helper()
	u := &rawUpstream{}
	var n atomic.Int64
	u.tcpServer = newTCPServer(t, func(c net.Conn) {
		br := bufio.NewReader(io.TeeReader(c, lockedWriter{&u.mu, &u.raw}))
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			u.mu.Lock()
			u.paths = append(u.paths, req.URL.RequestURI())
			u.mu.Unlock()
			switch decide(n.Add(1), req) {
			case rawReset:
				c.(*net.TCPConn).SetLinger(0)
				return
			case rawStall:
				_, _ = io.Copy(io.Discard, c)
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Upstream: raw\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	return u
}

// received returns the raw bytes and the request targets received so far.
func (u *rawUpstream) received() (string, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.raw.String(), append([]string(nil), u.paths...)
}

func (u *rawUpstream) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.paths)
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// deadAddr is a 127.0.0.1 address nothing listens on (connecting to it is refused).
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// --- nginx -------------------------------------------------------------------------------

// nginxUpstream is an nginx serving static files from root and accepting PUT uploads under
// /up/ (written to root/up/).
type nginxUpstream struct {
	addr string
	root string
	dir  string
}

// startNginx runs nginx in the foreground on a free port with files (name -> content)
// under its root.
func startNginx(t testing.TB, files map[string][]byte) *nginxUpstream {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is required (installed by .ci/run)")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "www")
	for _, d := range []string{root, filepath.Join(root, "up"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(d, 0o777) // workers may run as another user
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		addr := deadAddr(t) // free a moment ago
		user := ""
		if os.Geteuid() == 0 {
			user = "user root root;"
		}
		conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    server_tokens off;
    default_type application/octet-stream;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    client_max_body_size 64m;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    server {
        listen %[3]s;
        root %[4]s;
        add_header X-Nginx-Conn $connection always;
        add_header X-Nginx-Seen-Host $http_host always;
        location /up/ {
            dav_methods PUT;
            create_full_put_path on;
            dav_access all:rw;
        }
        location /static/ {
            alias %[4]s/;
            # POST to a static file: nginx reads and discards the body, then serves the file.
            error_page 405 =200 $uri;
        }
    }
}
`, user, dir, addr, root)
		cfg := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		up := false
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				c.Close()
				up = true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if up {
			t.Cleanup(stop)
			return &nginxUpstream{addr: addr, root: root, dir: dir}
		}
		stop()
		logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		lastErr = out.String() + string(logs)
	}
	t.Fatalf("nginx did not start: %s", lastErr)
	return nil
}

// --- clients -----------------------------------------------------------------------------

// countingDialer counts the TCP connections a net/http client opens.
type countingDialer struct {
	n atomic.Int64
	d net.Dialer
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

// newClient is a keep-alive net/http client with a dial counter.
func newClient(t testing.TB) (*http.Client, *countingDialer) {
	t.Helper()
	d := &countingDialer{d: net.Dialer{Timeout: 5 * time.Second}}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   16,
		ExpectContinueTimeout: 5 * time.Second,
		DisableCompression:    true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, d
}

// doReq sends a request and reads the whole response body.
func doReq(t testing.TB, c *http.Client, method, url, host string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %q): %v", method, url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, b
}

// curlResult is what one curl run produced.
type curlResult struct {
	status  int
	headers http.Header
	body    []byte
	verbose string // curl -v output (stderr)
	took    time.Duration
}

// runCurl runs curl with args plus the URL, keeping the body, the headers and -v output.
func runCurl(t testing.TB, url string, args ...string) curlResult {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is required (installed by .ci/run)")
	}
	dir := t.TempDir()
	bodyFile, headFile := filepath.Join(dir, "body"), filepath.Join(dir, "head")
	all := append([]string{"-sS", "-v", "--max-time", "60", "-o", bodyFile, "-D", headFile,
		"-w", "%{http_code}"}, args...)
	all = append(all, url)
	cmd := exec.Command(bin, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(all, " "), err, stderr.String())
	}
	r := curlResult{verbose: stderr.String(), took: took}
	r.status, _ = strconv.Atoi(strings.TrimSpace(stdout.String()))
	r.body, _ = os.ReadFile(bodyFile)
	head, _ := os.ReadFile(headFile)
	// -D holds every response head (a 100 Continue first): parse the last one.
	heads := strings.Split(strings.TrimRight(string(head), "\r\n"), "\r\n\r\n")
	last := heads[len(heads)-1] + "\r\n\r\n"
	if resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(last)), nil); err == nil {
		r.headers = resp.Header
	} else {
		r.headers = http.Header{}
	}
	return r
}

// rawConn is a raw TCP client connection to Strait.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// readResponse reads one response (to a request with the given method) and its body.
func (c *rawConn) readResponse(method string) (*http.Response, []byte, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b, err
}

// closedByPeer reports whether the peer closed the connection (EOF or reset) before the
// deadline, with no byte left to read.
func (c *rawConn) closedByPeer(within time.Duration) (bool, []byte) {
	_ = c.SetReadDeadline(time.Now().Add(within))
	extra, err := io.ReadAll(c.br)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return true, extra
	}
	return false, extra
}
