package main

import (
	"context"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Conformance and load tools run against a real Strait h2c listener: h2spec (installed by
// .ci/run into $(go env GOPATH)/bin) and h2load (nghttp2-client, installed by .ci/run).

// toolPath finds a test tool on PATH or in GOPATH/bin, or fails the test saying how to get it.
func toolPath(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Fatalf("%s is required and was found neither on PATH nor in GOPATH/bin: %s (.ci/run installs it)", name, install)
	return ""
}

// runTool runs a tool bounded by limit and returns its combined output.
func runTool(t testing.TB, limit time.Duration, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within %v:\n%s", filepath.Base(bin), args, limit, out)
	}
	return string(out), err
}

// h2specRoutes answers /direct from Strait itself and sends everything else to an HTTP/1.1
// upstream which reads each request whole before answering: h2spec's cases send bodies,
// trailers and flow-control probes on requests that must still be open when they arrive (a
// stream answered early is closed by then, and h2spec's expected STREAM_CLOSED or
// PROTOCOL_ERROR would not come).
const h2specRoutes = `name: h2spec
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {path: /direct}
    direct_response: {status: 200, body: {inline_string: "direct\n"}}
  - match: {prefix: /}
    route: {cluster: app, timeout: 10s}
`

var h2specSummary = regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)

// failures is the "Failures:" section of h2spec's output.
func failures(out string) string {
	if i := strings.Index(out, "Failures:"); i >= 0 {
		return out[i:]
	}
	return out
}

// TestH2Spec runs every h2spec case (RFC 7540/9113 and HPACK) against Strait's HTTP/2
// listener (codec HTTP2) on each transport: all 145 must pass.
func TestH2Spec(t *testing.T) {
	bin := toolPath(t, "h2spec", "go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible")
	up := newGoUpstream(t, "app", appHandler())
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"h2", hcmFilterCodec("h2spec", "HTTP2", h2specRoutes)}},
				[]clusterSpec{{name: "app", hosts: []string{up.addr()}, extra: h1ClusterOptions}}, ""))
			_, port, _ := net.SplitHostPort(s.addr(t, "h2"))
			// -o: seconds h2spec waits for an expected frame; a passing run never waits that
			// long.
			out, err := runTool(t, 90*time.Second, bin, "-h", "127.0.0.1", "-p", port, "-o", "2")
			m := h2specSummary.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("h2spec printed no summary (%v):\n%s", err, out)
			}
			if m[1] != "145" || m[2] != "145" {
				t.Fatalf("h2spec against Strait on %s: %s, want 145 tests, 145 passed\n%s", tr, m[0], failures(out))
			}
			out = m[0]
			t.Logf("h2spec on %s: %s", tr, out)
		})
	}
}

// h2loadDone parses h2load's "requests:" summary line.
var h2loadDone = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)

// h2loadStatus parses h2load's "status codes:" line.
var h2loadStatus = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)

// TestH2LoadE2E drives h2load through Strait (h2c both sides, to an x/net HTTP/2 upstream)
// on each transport: many multiplexed GETs and POSTs with bodies, every one answered 2xx.
func TestH2LoadE2E(t *testing.T) {
	bin := toolPath(t, "h2load", "apt-get install nghttp2-client")
	up := h2cUpstream(t, appHandler())
	body := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(body, cachedBody(20000), 0o644); err != nil {
		t.Fatal(err)
	}
	routes := `name: load
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {prefix: /}
    route: {cluster: h2c}
`
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"h2", hcmFilterCodec("load", "AUTO", routes)}},
				[]clusterSpec{{name: "h2c", hosts: []string{up}, extra: h2ClusterOptions}}, ""))
			base := "http://" + s.addr(t, "h2")
			for _, run := range []struct {
				name string
				args []string
				n    int
			}{
				{"GET", []string{"-n", "4000", "-c", "8", "-m", "16", base + "/blob?size=1000"}, 4000},
				{"POST", []string{"-n", "400", "-c", "4", "-m", "8", "-d", body, base + "/upload"}, 400},
			} {
				out, err := runTool(t, 60*time.Second, bin, run.args...)
				m := h2loadDone.FindStringSubmatch(out)
				st := h2loadStatus.FindStringSubmatch(out)
				if err != nil || m == nil || st == nil {
					t.Fatalf("h2load %s: %v\n%s", run.name, err, out)
				}
				want := strconv.Itoa(run.n)
				if m[1] != want || m[4] != want || st[1] != want {
					t.Fatalf("h2load %s through Strait on %s: %s; %s (want %s succeeded, all 2xx)\n%s", run.name, tr, m[0], st[0], want, out)
				}
				t.Logf("h2load %s on %s: %s", run.name, tr, m[0])
			}
			if n := s.counter("downstream_rq_2xx_total", "load"); n != 4400 {
				t.Errorf("Strait counted %d 2xx responses, want 4400", n)
			}
		})
	}
}
