package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGOMAXPROCSChoice: the binary sizes Go's scheduler itself. On gnet it keeps a P beyond
// its event loops (a loop blocked in epoll_wait must not lose its P); a configured gomaxprocs
// is taken as given on any transport; a GOMAXPROCS environment variable wins over both.
func TestGOMAXPROCSChoice(t *testing.T) {
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	cpus := runtime.NumCPU()
	cases := []struct {
		name, transport, runtime, env string
		want                          string // the expected log line's from/to, or "" for none
	}{
		{"gnet keeps a spare P", "gnet", fmt.Sprintf("loops: %d", cpus), "", fmt.Sprintf("from=%d to=%d", cpus, cpus+1)},
		{"configured value on stdnet", "stdnet", fmt.Sprintf("gomaxprocs: %d", cpus+2), "", fmt.Sprintf("from=%d to=%d", cpus, cpus+2)},
		{"stdnet keeps Go's default", "stdnet", fmt.Sprintf("loops: %d", cpus), "", ""},
		{"environment wins", "gnet", fmt.Sprintf("loops: %d, gomaxprocs: 7", cpus), "GOMAXPROCS=1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := tcpProxyBootstrap(freePort(t), deadAddr(t)) + `bootstrap_extensions:
- name: strait.runtime
  typed_config:
    "@type": type.googleapis.com/xds.type.v3.TypedStruct
    type_url: type.googleapis.com/strait.config.v1.Runtime
    value: {` + c.runtime + `}
`
			cmd := exec.Command(bin, "-c", writeFile(t, "b.yaml", cfg), "--transport", c.transport)
			cmd.Env = os.Environ()
			for i, kv := range cmd.Env {
				if strings.HasPrefix(kv, "GOMAXPROCS=") {
					cmd.Env[i] = "STRAIT_TEST_UNSET=1"
				}
			}
			if c.env != "" {
				cmd.Env = append(cmd.Env, c.env)
			}
			var logs syncBuffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			}()
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "msg=listening"); {
				if time.Now().After(deadline) {
					t.Fatalf("never listened: %s", logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			var line string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "GOMAXPROCS set") {
					line = l
				}
			}
			switch {
			case c.want == "" && line != "":
				t.Errorf("GOMAXPROCS changed: %s", line)
			case c.want != "" && !strings.Contains(line, c.want):
				t.Errorf("want a GOMAXPROCS line with %q, got %q; logs:\n%s", c.want, line, logs.String())
			}
		})
	}
}
