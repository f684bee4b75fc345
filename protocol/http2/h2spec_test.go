//go:build h2spec

package http2

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// TestH2Spec runs h2spec (github.com/summerwind/h2spec v2.2.1, on PATH or in $H2SPEC)
// against the server codec on a real socket (serveH2C: every request answered 200 with a
// small body once it is complete). Opt-in, as it needs the binary:
//
//	go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
//	go test -tags h2spec -run TestH2Spec -count=1 -v ./protocol/http2/
//
// H2SPEC_STRICT=1 adds h2spec's strict cases (-S).
func TestH2Spec(t *testing.T) {
	bin := os.Getenv("H2SPEC")
	if bin == "" {
		bin = "h2spec"
	}
	addr, stop := serveH2C(t, Config{})
	defer stop()
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"-h", "127.0.0.1", "-p", port, "-o", "2"}
	if os.Getenv("H2SPEC_STRICT") != "" {
		args = append(args, "-S")
	}
	cmd := exec.Command(bin, args...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("h2spec did not finish in 5 minutes")
	}
	t.Logf("%s", out)
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("h2spec: %v (no summary)", err)
	}
	want := "145" // 146 with H2SPEC_STRICT (-S: strict cases too)
	if os.Getenv("H2SPEC_STRICT") != "" {
		want = "146"
	}
	if string(m[1]) != want || string(m[2]) != want {
		t.Fatalf("h2spec: %s", m[0])
	}
}
