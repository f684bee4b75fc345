//go:build !race

// The race detector changes allocation counts (sync.Pool drops objects at random), so these
// are only meaningful without it.

package main

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// A proxied HTTP/1.1 keep-alive exchange allocates nothing in steady state on the
// transports that allocate nothing themselves (BenchmarkProxyHTTP1 measures it; this pins
// it): the server and client codecs take their exchange state from pools, streams are reused
// by their executor, and stream deadlines are entries in the executor's heap.
func TestProxyHTTP1SteadyStateAllocs(t *testing.T) {
	up := newFixedUpstream(t)
	for _, tr := range []string{"gnet", "stdnet"} {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"alloc", hcmFilter("alloc", `name: alloc
virtual_hosts:
- name: all
  domains: ["*"]
  routes: [{match: {prefix: /}, route: {cluster: fixed, timeout: 10s}}]`)}},
				[]clusterSpec{{name: "fixed", hosts: []string{up.addr()}}}, ""))
			c, respLen := benchClient(t, s.addr(t, "alloc"))
			buf := make([]byte, respLen)
			exchange := func() {
				if _, err := c.Write(benchRequest); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Fatal(err)
				}
				if !bytes.HasSuffix(buf, fixedBody) {
					t.Fatalf("unexpected response %q", buf)
				}
			}
			for range 500 {
				exchange()
			}
			const n = 3000
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range n {
				exchange()
			}
			runtime.ReadMemStats(&after)
			// Everything in the process counts (timers, the runtime): allow a little of it.
			per := float64(after.Mallocs-before.Mallocs) / n
			t.Logf("%.3f allocations per proxied request", per)
			if per > 0.25 {
				t.Errorf("%.2f allocations per proxied request, want none (was 3 before streams were reused)", per)
			}
		})
	}
}
