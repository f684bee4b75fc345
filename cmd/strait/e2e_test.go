package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tcpProxyBootstrap(listenPort int, upstream string) string {
	host, port, _ := net.SplitHostPort(upstream)
	return fmt.Sprintf(`static_resources:
  listeners:
  - name: l4
    address:
      socket_address: {address: 127.0.0.1, port_value: %d}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: l4
          cluster: backend
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: %s, port_value: %s}
`, listenPort, host, port)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hashUpstream is a Go net/http server: GET /hello answers "hello", POST /upload answers the
// body's length and SHA-256.
func hashUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// startStrait runs strait in-process with args until the test ends, and waits until addr
// accepts connections.
func startStrait(t *testing.T, addr string, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() { done <- runMain(ctx, args, &out, &errs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("strait exited %d: %s", code, errs.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("strait did not stop after cancel")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return &errs
		}
		select {
		case code := <-done:
			t.Fatalf("strait exited %d before listening: %s", code, errs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("strait never listened on %s: %s", addr, errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestTCPProxyForwardsOnEveryTransport(t *testing.T) {
	up := hashUpstream(t)
	body := make([]byte, 16<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	wantUpload := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:]))

	for _, tr := range transportNames() {
		t.Run(tr, func(t *testing.T) {
			port := freePort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			cfg := writeFile(t, "bootstrap.yaml", tcpProxyBootstrap(port, up.Listener.Addr().String()))
			startStrait(t, addr, "-c", cfg, "--transport", tr, "--log-level", "warn")
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()

			resp, err := client.Get("http://" + addr + "/hello")
			if err != nil {
				t.Fatalf("GET through strait: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != "hello" {
				t.Fatalf("GET: %d %q", resp.StatusCode, got)
			}

			resp, err = client.Post("http://"+addr+"/upload", "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Fatalf("16 MiB upload through strait: %v", err)
			}
			got, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != wantUpload {
				t.Fatalf("upload arrived as %q, want %q", got, wantUpload)
			}

			// 1,000 connections opened and closed abruptly (RST), half of them mid-request.
			client.CloseIdleConnections()
			time.Sleep(100 * time.Millisecond)
			baseline := openFDs(t)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 64)
			for i := 0; i < 1000; i++ {
				wg.Add(1)
				sem <- struct{}{}
				go func(i int) {
					defer wg.Done()
					defer func() { <-sem }()
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						t.Errorf("dial %d: %v", i, err)
						return
					}
					if i%2 == 0 {
						io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
					}
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
				}(i)
			}
			wg.Wait()

			resp, err = client.Get("http://" + addr + "/hello")
			if err != nil {
				t.Fatalf("GET after 1,000 abrupt closes: %v", err)
			}
			got, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != "hello" {
				t.Fatalf("GET after abrupt closes: %q", got)
			}
			client.CloseIdleConnections()
			// Every proxied pair must be torn down: file descriptors come back to baseline.
			deadline := time.Now().Add(10 * time.Second)
			for openFDs(t) > baseline+8 {
				if time.Now().After(deadline) {
					t.Fatalf("descriptors leaked: %d open, baseline %d", openFDs(t), baseline)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func TestMisspelledFieldFailsWithoutBinding(t *testing.T) {
	port := freePort(t)
	cfg := strings.Replace(tcpProxyBootstrap(port, "127.0.0.1:9"), "address: {address: 127.0.0.1, port_value", "address: {adress: 127.0.0.1, port_value", 1)
	path := writeFile(t, "bad.yaml", cfg)

	var out, errs syncBuffer
	if code := runMain(context.Background(), []string{"validate", "-c", path}, &out, &errs); code != 1 {
		t.Fatalf("validate exit %d, want 1", code)
	}
	if !strings.Contains(errs.String(), "adress") || !strings.Contains(errs.String(), "bad.yaml") {
		t.Fatalf("validate error does not name the file and field: %q", errs.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs = syncBuffer{}
	if code := runMain(ctx, []string{"-c", path}, &out, &errs); code != 1 {
		t.Fatalf("run exit %d, want 1", code)
	}
	if !strings.Contains(errs.String(), "adress") {
		t.Fatalf("run error does not name the field: %q", errs.String())
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d is bound after a failed start: %v", port, err)
	}
	ln.Close()
}

func TestValidateAcceptsGoodConfig(t *testing.T) {
	path := writeFile(t, "good.yaml", tcpProxyBootstrap(freePort(t), "127.0.0.1:9"))
	var out, errs syncBuffer
	if code := runMain(context.Background(), []string{"validate", "-c", path}, &out, &errs); code != 0 {
		t.Fatalf("validate exit %d: %s", code, errs.String())
	}
}

func TestVersion(t *testing.T) {
	var out, errs syncBuffer
	if code := runMain(context.Background(), []string{"version"}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "strait ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}

// buildStrait compiles the binary once per test binary run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "strait-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "strait")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
})

// TestDefaultConfigServesCurl runs the real binary with no arguments, as a newcomer would,
// and fetches the demo page with curl; SIGTERM then stops it with exit code 0.
func TestDefaultConfigServesCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is required (installed by .ci/run)")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	var out, errs syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), "curl http://127.0.0.1:10000/") {
		if time.Now().After(deadline) {
			t.Fatalf("no try-it line; stdout %q stderr %q", out.String(), errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := exec.Command(curl, "-sS", "--max-time", "10", "http://127.0.0.1:10000/").CombinedOutput()
	if err != nil || !strings.Contains(string(res), "Hello from Strait's demo upstream") {
		t.Fatalf("curl: %v %q", err, res)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr %s", err, errs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("strait did not exit after SIGTERM")
	}
}

// TestSIGTERMDrains: after SIGTERM the listener stops accepting, an in-flight exchange
// finishes, and the process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(800 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := writeFile(t, "b.yaml", tcpProxyBootstrap(port, slow.Listener.Addr().String()))
	cmd := exec.Command(bin, "-c", cfg)
	var errs syncBuffer
	cmd.Stderr = &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never listened: %s", errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	result := make(chan string, 1)
	go func() {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	time.Sleep(200 * time.Millisecond) // the request is in flight
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("listener still accepts after SIGTERM")
	}
	if got := <-result; got != "finished" {
		t.Fatalf("in-flight request: %q", got)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v; stderr %s", err, errs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit after draining")
	}
}
