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
	// ToolH2load runs h2load (nghttp2) over cleartext HTTP/2 with prior knowledge.
	ToolH2load Tool = "h2load"
	// ToolGRPC runs Strait's gRPC load generator (benchmarks/cmd/grpcload): unary calls.
	ToolGRPC Tool = "grpc"
)

// throughput reports whether the tool measures requests per second and latency (as opposed
// to memory per idle connection).
func (t Tool) throughput() bool { return t == ToolWrk || t == ToolH2load || t == ToolGRPC }

// Backend is what a workload's requests finally reach. Each kind is started once per run,
// on the load CPU, when the first workload needing it runs.
type Backend string

// Backends.
const (
	// BackendHTTP1 is nginx answering "hello world\n" over HTTP/1.1 (the default).
	BackendHTTP1 Backend = ""
	// BackendH2C is the same nginx answer over cleartext HTTP/2 (listen ... http2).
	BackendH2C Backend = "h2c"
	// BackendGRPC is grpcload's grpc-go backend (TestService/UnaryCall, "hello world\n").
	BackendGRPC Backend = "grpc"
)

// Workload is a mode (which config templates) plus a load. Workloads of the same mode share a
// report table: a throughput workload gives its req/s and p99 columns, an idle one its memory
// column.
type Workload struct {
	Name string
	// Mode names the report table, and the template folder templates/<Mode>/ unless
	// Templates names another.
	Mode string
	// Templates names the template folder when it is not Mode's: a second table measured
	// on the same configurations.
	Templates string
	// Conns is the load's concurrency (wrk -c) when it is not the plan's.
	Conns int
	Tool  Tool
	// Path is the request path for HTTP loads.
	Path string
	// Direct adds the direct-to-backend reference target.
	Direct bool
	// Per names what the idle figure is per, short ("pair") and long (an L4 downstream also
	// holds an upstream).
	Per, PerLong string
	// About is one line for the report.
	About string
	// Backend is what the requests reach; the zero value is nginx over HTTP/1.1.
	Backend Backend
	// Without leaves proxies out of the workload, with the reason given in the report.
	Without map[Kind]string
}

// templates is the folder of the workload's configurations, templates/<templates()>/.
func (w Workload) templates() string {
	if w.Templates != "" {
		return w.Templates
	}
	return w.Mode
}

// conns is the workload's concurrency under plan.
func (w Workload) conns(plan Plan) int {
	if w.Conns > 0 {
		return w.Conns
	}
	return plan.Conns
}

// Runs reports whether target t takes part in the workload.
func (w Workload) Runs(t Target) bool {
	if t.Kind == KindDirect {
		return w.Direct
	}
	_, left := w.Without[t.Kind]
	return !left
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
		{
			// Less queue: at the plan's 64 connections every proxy's core is full and its p99
			// is mostly the queue, i.e. its throughput again. (At this machine's loopback
			// speeds even 8 connections keep a proxy near a full core: fewer requests per
			// epoll_wait cost more CPU each.)
			Name: "http-light", Mode: "http-light", Templates: "http", Tool: ToolWrk, Path: "/", Direct: true, Conns: 16,
			About: "the `http` configurations at a quarter of its concurrency: 16 connections, so a request waits behind at most 15 others instead of 63 and p99 shows less of the queue",
		},
		{
			Name: "h2", Mode: "h2", Tool: ToolH2load, Path: "/", Direct: true, Backend: BackendH2C,
			Without: map[Kind]string{KindNginx: "nginx cannot proxy to an HTTP/2 upstream: proxy_pass speaks HTTP/1.x to upstreams (only grpc_pass speaks HTTP/2, for gRPC)"},
			About:   "HTTP/2 on both sides, cleartext with prior knowledge: h2load through HAProxy (`proto h2` on bind and server) and Strait (HTTP connection manager with codec HTTP2, cluster with http2_protocol_options) to nginx `listen ... http2`, 12-byte body",
		},
		{
			Name: "grpc", Mode: "grpc", Tool: ToolGRPC, Direct: true, Backend: BackendGRPC,
			About: "gRPC unary calls (grpc-go client, calls in flight spread over a few HTTP/2 connections) through nginx `grpc_pass` (`listen ... http2`), HAProxy (h2 both sides) and Strait to a grpc-go backend (TestService/UnaryCall, 12-byte payload)",
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
