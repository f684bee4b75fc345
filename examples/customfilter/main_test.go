package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/pipeline/server"
)

// config returns config.yaml with the listener on a free port and the cluster on upstream.
func config(t *testing.T, upstream string) string {
	t.Helper()
	raw, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(upstream)
	s := strings.Replace(string(raw), "port_value: 10080", "port_value: 0", 1)
	s = strings.Replace(s, "port_value: 8080", "port_value: "+port, 1)
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCounterFilterRunsOnRealRequests sends real HTTP requests through Strait with the user's
// filter registered and checks that each response carries its request number.
func TestCounterFilterRunsOnRealRequests(t *testing.T) {
	var seen atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	defer up.Close()

	for _, tr := range []string{"gnet", "stdnet"} {
		t.Run(tr, func(t *testing.T) {
			seen.Store(0)
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan *server.Server, 1)
			done := make(chan error, 1)
			go func() {
				done <- server.Run(ctx, server.Options{
					ConfigName: config(t, up.Listener.Addr().String()),
					Transport:  tr,
					Ready:      func(s *server.Server) { ready <- s },
				}, extensions())
			}()
			var srv *server.Server
			select {
			case srv = <-ready:
			case err := <-done:
				t.Fatalf("server did not start: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("server did not start")
			}
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("server: %v", err)
				}
			}()

			base := "http://" + srv.Addr("http").String()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 1; i <= 3; i++ {
				resp, err := client.Get(base + "/x")
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "hello from /x" {
					t.Fatalf("request %d body %q", i, body)
				}
				if got := resp.Header.Get("x-request-count"); got != string(rune('0'+i)) {
					t.Fatalf("request %d: x-request-count %q", i, got)
				}
			}
			client.CloseIdleConnections()
			if seen.Load() != 3 {
				t.Fatalf("upstream saw %d requests, want 3", seen.Load())
			}
		})
	}
}

// TestCounterConfigIsStrict: a misspelled key in the user's filter configuration is an error
// naming it, like any built-in field.
func TestCounterConfigIsStrict(t *testing.T) {
	raw, _ := os.ReadFile("config.yaml")
	bad := strings.Replace(string(raw), "header: x-request-count", "heder: x-request-count", 1)
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte(bad), 0o600)
	err := server.Validate(server.Options{ConfigName: p}, extensions())
	if err == nil || !strings.Contains(err.Error(), "heder") {
		t.Fatalf("got %v, want an error naming \"heder\"", err)
	}
}
