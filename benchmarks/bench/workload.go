package bench

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownWorkload is returned for a workload name the harness does not know.
var ErrUnknownWorkload = errors.New("bench: unknown workload")

// Tool is the load generator a workload uses.
type Tool string

// Load generators.
const (
	// ToolWrk runs wrk against the target (throughput and latency).
	ToolWrk Tool = "wrk"
	// ToolIdle runs the idle-connection meter (resident memory per idle connection).
	ToolIdle Tool = "idle"
)

// Workload is a mode (which config templates) plus a load. Workloads of the same mode share a
// report table: a throughput workload gives its req/s and p99 columns, an idle one its memory
// column.
type Workload struct {
	Name string
	// Mode names the template folder, templates/<Mode>/.
	Mode string
	Tool Tool
	// Path is the request path for HTTP loads.
	Path string
	// Direct adds the direct-to-backend reference target.
	Direct bool
	// Per names what the idle figure is per, short ("pair") and long (an L4 downstream also
	// holds an upstream).
	Per, PerLong string
	// About is one line for the report.
	About string
}

// Workloads lists the workloads in run order.
func Workloads() []Workload {
	return []Workload{
		{
			Name: "l4", Mode: "l4", Tool: ToolWrk, Path: "/", Direct: true,
			About: "HTTP/1.1 keep-alive traffic forwarded at L4 (nginx stream, HAProxy mode tcp, Strait tcp_proxy)",
		},
		{
			Name: "l4-idle", Mode: "l4", Tool: ToolIdle,
			Per: "idle pair", PerLong: "idle proxied pair (one downstream plus one upstream connection)",
			About: "idle L4 connections after one request each; each downstream also holds an upstream",
		},
		{
			Name: "http", Mode: "http", Tool: ToolWrk, Path: "/", Direct: true,
			About: "HTTP/1.1 keep-alive proxying, 12-byte body (nginx proxy_pass with upstream keepalive, HAProxy mode http with http-reuse always, Strait HTTP connection manager)",
		},
		{
			Name: "http-idle", Mode: "http", Tool: ToolIdle,
			Per: "idle conn", PerLong: "idle keep-alive downstream connection (upstream connections are pooled and shared)",
			About: "idle HTTP/1.1 keep-alive connections after one request each",
		},
	}
}

// ParseWorkloads resolves a comma-separated list of workload names, keeping run order.
func ParseWorkloads(list string) ([]Workload, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []Workload
	for _, w := range Workloads() {
		if want[w.Name] {
			out = append(out, w)
			delete(want, w.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("%w: %q", ErrUnknownWorkload, n)
	}
	return out, nil
}
