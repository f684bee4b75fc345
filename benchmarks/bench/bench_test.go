package bench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const wrkOut = `Running 5s test @ http://127.0.0.1:41234/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   611.53us  150.47us   4.02ms   86.30%
    Req/Sec   104.84k     5.67k  114.31k    78.00%
  Latency Distribution
     50%  583.00us
     75%  656.00us
     90%  753.00us
     99%    1.17ms
  521579 requests in 5.00s, 77.60MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec: 104297.26
Transfer/sec:     15.52MB
`

func TestParseWrk(t *testing.T) {
	r, err := ParseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	want := WrkResult{RPS: 104297.26, P50: 583 * time.Microsecond, P99: 1170 * time.Microsecond,
		Requests: 521579, SocketErrors: 7, Non2xx: 5,
		ErrorDetail: "Socket errors: connect 0, read 2, write 1, timeout 4"}
	if r != want {
		t.Fatalf("ParseWrk = %+v, want %+v", r, want)
	}
	noLatency := strings.Replace(wrkOut, "     99%    1.17ms\n", "", 1)
	if _, err := ParseWrk(noLatency); !errors.Is(err, ErrWrkOutput) {
		t.Fatalf("without the 99%% line: err = %v, want ErrWrkOutput", err)
	}
	if _, err := ParseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); !errors.Is(err, ErrWrkOutput) {
		t.Fatalf("connection refused: err = %v, want ErrWrkOutput", err)
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"583.00us": 583 * time.Microsecond, "1.17ms": 1170 * time.Microsecond,
		"2.00s": 2 * time.Second, "1.50m": 90 * time.Second, "1.00h": time.Hour,
	} {
		got, err := ParseWrkDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseWrkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ms", "1.0", "-1ms", "1.0xs", "NaNms", "Infs"} {
		if _, err := ParseWrkDuration(bad); !errors.Is(err, ErrWrkOutput) {
			t.Errorf("ParseWrkDuration(%q) err = %v, want ErrWrkOutput", bad, err)
		}
	}
}

func FuzzParseWrk(f *testing.F) {
	f.Add(wrkOut)
	f.Add("Requests/sec: 1\n 99% 1ms\n1 requests in 1s\n")
	f.Add("Socket errors: connect x")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseWrk(s)
		if err == nil && (r.P99 < 0 || r.P50 < 0 || r.RPS < 0 || math.IsNaN(r.RPS) || math.IsInf(r.RPS, 0)) {
			t.Fatalf("implausible result %+v accepted", r)
		}
		if err != nil && !errors.Is(err, ErrWrkOutput) {
			t.Fatalf("err %v is not ErrWrkOutput", err)
		}
	})
}

func TestParseTargetsAndWorkloads(t *testing.T) {
	ts, err := ParseTargets("haproxy, strait,nginx")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range ts {
		names = append(names, x.Name)
	}
	if got := strings.Join(names, ","); got != "nginx,haproxy,strait-gnet,strait-netpoll,strait-stdnet" {
		t.Fatalf("ParseTargets order = %s", got)
	}
	if _, err := ParseTargets("nginx,envoy"); !errors.Is(err, ErrUnknownTarget) {
		t.Fatalf("unknown target: err = %v", err)
	}
	if n := len(AllTargets(false)); n != 3 {
		t.Fatalf("AllTargets(false) has %d targets, want direct, nginx, haproxy", n)
	}
	ws, err := ParseWorkloads("l4-idle,l4")
	if err != nil || len(ws) != 2 || ws[0].Name != "l4" {
		t.Fatalf("ParseWorkloads = %v, %v", ws, err)
	}
	if _, err := ParseWorkloads("l7"); !errors.Is(err, ErrUnknownWorkload) {
		t.Fatalf("unknown workload: err = %v", err)
	}
}

// Every workload's mode must have a template for every proxy, and each must render with the
// ports, limits and transport the harness gives it.
func TestTemplatesRender(t *testing.T) {
	d, err := newConfigData("/tmp/x", "127.0.0.1", 4100, "127.0.0.1:4200")
	if err != nil {
		t.Fatal(err)
	}
	d.Transport = "netpoll"
	d.StreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"
	for tmpl, listen := range map[string]string{backendTemplate: "listen 127.0.0.1:4100 ", backendH2CTemplate: "listen 127.0.0.1:4100 http2 "} {
		b, err := Render(tmpl, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"worker_processes 1;", listen, `return 200 "hello world\n";`, "keepalive_requests 4294967295;", "worker_connections 19000;"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("backend config %s lacks %q:\n%s", tmpl, want, b)
			}
		}
	}
	for _, w := range Workloads() {
		for _, k := range []Kind{KindNginx, KindHAProxy, KindStrait} {
			b, err := Render(templateName(w.templates(), k), d)
			if _, left := w.Without[k]; left {
				if !errors.Is(err, ErrNoTemplate) {
					t.Errorf("%s leaves %s out but has a template for it (%v)", w.Mode, k, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s/%s: %v", w.Mode, k, err)
			}
			s := string(b)
			switch k {
			case KindNginx:
				wants := []string{"worker_processes 1;", "listen 127.0.0.1:4100", "127.0.0.1:4200"}
				switch w.Mode {
				case "l4":
					wants = append(wants, "load_module /usr/lib/nginx/modules/ngx_stream_module.so;")
				case "grpc":
					wants = append(wants, "keepalive 256;", "listen 127.0.0.1:4100 http2", "grpc_pass grpc://backend;")
				default:
					wants = append(wants, "keepalive 256;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`)
				}
				for _, want := range wants {
					if !strings.Contains(s, want) {
						t.Errorf("%s nginx config lacks %q", w.Mode, want)
					}
				}
			case KindHAProxy:
				wants := []string{"nbthread 1", "maxconn 9000", "bind 127.0.0.1:4100", "127.0.0.1:4200"}
				if w.Backend != BackendHTTP1 {
					wants = append(wants, "bind 127.0.0.1:4100 proto h2", "server backend 127.0.0.1:4200 proto h2")
				}
				for _, want := range wants {
					if !strings.Contains(s, want) {
						t.Errorf("%s haproxy config lacks %q", w.Mode, want)
					}
				}
			case KindStrait:
				checkStraitBootstrap(t, b)
				if w.Backend != BackendHTTP1 && (!strings.Contains(s, "codec_type: HTTP2") || !strings.Contains(s, "http2_protocol_options: {}")) {
					t.Errorf("%s strait config does not speak HTTP/2 on both sides:\n%s", w.Mode, s)
				}
			}
		}
	}
	if _, err := Render(templateName("nosuchmode", KindNginx), d); !errors.Is(err, ErrNoTemplate) {
		t.Fatalf("missing template: err = %v", err)
	}
}

// checkStraitBootstrap parses the rendered YAML and checks the fields Strait reads.
func checkStraitBootstrap(t *testing.T, b []byte) {
	t.Helper()
	var boot struct {
		StaticResources struct {
			Listeners []struct {
				Address struct {
					SocketAddress struct {
						Address   string `json:"address"`
						PortValue int    `json:"port_value"`
					} `json:"socket_address"`
				} `json:"address"`
			} `json:"listeners"`
			Clusters []struct {
				CircuitBreakers struct {
					Thresholds []struct {
						MaxConnections int `json:"max_connections"`
					} `json:"thresholds"`
				} `json:"circuit_breakers"`
				LoadAssignment struct {
					Endpoints []struct {
						LbEndpoints []struct {
							Endpoint struct {
								Address struct {
									SocketAddress struct {
										PortValue int `json:"port_value"`
									} `json:"socket_address"`
								} `json:"address"`
							} `json:"endpoint"`
						} `json:"lb_endpoints"`
					} `json:"endpoints"`
				} `json:"load_assignment"`
			} `json:"clusters"`
		} `json:"static_resources"`
		BootstrapExtensions []struct {
			TypedConfig struct {
				Value struct {
					Transport string `json:"transport"`
					Loops     int    `json:"loops"`
				} `json:"value"`
			} `json:"typed_config"`
		} `json:"bootstrap_extensions"`
	}
	if err := yaml.Unmarshal(b, &boot); err != nil {
		t.Fatalf("strait bootstrap is not YAML: %v\n%s", err, b)
	}
	sr := boot.StaticResources
	if len(sr.Listeners) != 1 || sr.Listeners[0].Address.SocketAddress.PortValue != 4100 ||
		sr.Listeners[0].Address.SocketAddress.Address != "127.0.0.1" {
		t.Errorf("listener wrong: %+v", sr.Listeners)
	}
	if len(sr.Clusters) != 1 || sr.Clusters[0].LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.PortValue != 4200 {
		t.Errorf("cluster wrong: %+v", sr.Clusters)
	}
	// Envoy's default circuit breaker (1,024 connections) would refuse most idle pairs.
	if th := sr.Clusters[0].CircuitBreakers.Thresholds; len(th) != 1 || th[0].MaxConnections != 9000 {
		t.Errorf("cluster max_connections = %+v, want 9000 like HAProxy's maxconn", th)
	}
	if len(boot.BootstrapExtensions) != 1 || boot.BootstrapExtensions[0].TypedConfig.Value.Transport != "netpoll" ||
		boot.BootstrapExtensions[0].TypedConfig.Value.Loops != 1 {
		t.Errorf("runtime extension wrong: %+v", boot.BootstrapExtensions)
	}
}

func TestStats(t *testing.T) {
	if m := Median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("Median odd = %v", m)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("Median even = %v", m)
	}
	if !math.IsNaN(Median(nil)) || !math.IsNaN(Ratio(1, 0)) || !math.IsNaN(Ratio(math.NaN(), 1)) {
		t.Fatal("missing data must give NaN")
	}
	if lo, hi := MinMax([]float64{2, 9, 4}); lo != 2 || hi != 9 {
		t.Fatalf("MinMax = %v, %v", lo, hi)
	}
}

func testPlan() Plan {
	return Plan{
		Workloads: Workloads(), Targets: AllTargets(true), Rounds: 3, Duration: 5 * time.Second,
		Threads: 1, Conns: 64, Streams: 10, GRPCConns: 8, IdleConns: 8000, IdleHold: 3 * time.Second, ProxyCPU: 0, LoadCPU: 1,
		WorkDir: "/tmp", Tools: Tools{Strait: "/bin/strait", H2load: "/usr/bin/h2load", GRPCLoad: "/bin/grpcload"},
	}
}

func testSamples() []Sample {
	var ss []Sample
	for round := 1; round <= 3; round++ {
		f := float64(round)
		ss = append(ss,
			Sample{Workload: "l4", Target: "direct", Round: round, RPS: 200000 + f, P99Ms: 0.5, Seconds: 5},
			Sample{Workload: "l4", Target: "nginx", Round: round, RPS: 100000 * f, P99Ms: f, ProxyCores: 1, Seconds: 5},
			Sample{Workload: "l4", Target: "haproxy", Round: round, RPS: 90000, P99Ms: 2, ProxyCores: 1, Seconds: 5},
			Sample{Workload: "l4-idle", Target: "nginx", Round: round, PerConnKB: 9 + f, Conns: 8000, Seconds: 4},
			Sample{Workload: "l4-idle", Target: "haproxy", Round: round, PerConnKB: 3.3, Conns: 8000, Seconds: 4},
		)
		gnet := Sample{Workload: "l4", Target: "strait-gnet", Round: round, RPS: 150000, P99Ms: 1, ProxyCores: 1, Seconds: 5}
		if round == 2 {
			gnet = Sample{Workload: "l4", Target: "strait-gnet", Round: round, Err: "bench: process exited early"}
		}
		ss = append(ss, gnet)
	}
	return ss
}

func TestSummarize(t *testing.T) {
	rows := Summarize(testPlan(), "l4", testSamples())
	byName := map[string]Row{}
	var order []string
	for _, r := range rows {
		byName[r.Target.Name] = r
		order = append(order, r.Target.Name)
	}
	// Targets never measured (netpoll, stdnet here) get no row; order follows the plan.
	if got := strings.Join(order, ","); got != "direct,nginx,haproxy,strait-gnet" {
		t.Fatalf("rows = %s", got)
	}
	n := byName["nginx"]
	if n.RPS != 200000 || n.RPSLo != 100000 || n.RPSHi != 300000 || n.RPSRatio != 1 || n.KB != 11 || n.KBRatio != 1 {
		t.Fatalf("nginx row = %+v", n)
	}
	h := byName["haproxy"]
	if h.RPSRatio != 0.45 || math.Abs(h.KBRatio-0.3) > 1e-9 {
		t.Fatalf("haproxy ratios = %v, %v; want 0.45, 0.3", h.RPSRatio, h.KBRatio)
	}
	g := byName["strait-gnet"]
	if g.RPSFailed != 1 || g.RPSSamples != 2 || g.RPSRatio != 0.75 || !math.IsNaN(g.KB) {
		t.Fatalf("strait-gnet row = %+v", g)
	}
}

func TestReportMarkdown(t *testing.T) {
	meta := Meta{CmdLine: "benchmarks/run.sh --full", Date: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
		CPU: "AMD EPYC × 2", Kernel: "6.1", Versions: [][2]string{{"nginx", "nginx/1.22.1"}}}
	md := string(renderMarkdown(testPlan(), meta, testSamples(), "report.png", nil))
	for _, want := range []string{
		"Command: `benchmarks/run.sh --full`",
		"- nginx: nginx/1.22.1",
		"| nginx | 200.0k [100.0k–300.0k] | 1.00 | 2.00 ms [1.00 ms–3.00 ms] | +1.50 ms | 1.00 cores | 5.0 µs [3.3 µs–10.0 µs] | 1.00 | 11.00 KiB [10.00 KiB–12.00 KiB] | 1.00 |",
		"| haproxy | 90.0k | 0.45 | 2.00 ms | +1.50 ms | 1.00 cores | 11.1 µs | 2.22 | 3.30 KiB | 0.30 |",
		"| direct (no proxy, reference) | 200.0k [200.0k–200.0k] | 1.00 | 0.50 ms | — | — | — | — | — | — |",
		"| strait-gnet | 150.0k (1 failed) | 0.75 |",
		"RSS per idle pair",
		"Noise: quiet.",
		"FAILED: bench: process exited early",
		"![chart](report.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q\n%s", want, md)
		}
	}
	gated := testPlan()
	gated.QuietWait = 30 * time.Second
	gs := testSamples()
	gs[0].QuietWaited, gs[1].QuietWaited, gs[1].NotQuiet = 2, 30, true
	if md := string(renderMarkdown(gated, meta, gs, "r.png", nil)); !strings.Contains(md,
		"waited 32 s in all, and 1 of 18 measurements started without finding one") {
		t.Errorf("report lacks the quiet gate summary:\n%s", md)
	}
	noisy := testSamples()
	noisy[1].OtherProxyCPU = 0.5
	if md := string(renderMarkdown(testPlan(), meta, noisy, "r.png", errors.New("no gnuplot"))); !strings.Contains(md, "NOISY") || !strings.Contains(md, "No chart: no gnuplot") {
		t.Errorf("noisy report lacks the verdict or the chart note:\n%s", md)
	}
}

func TestPlanValidate(t *testing.T) {
	if err := testPlan().Validate(); err != nil {
		t.Fatalf("valid plan: %v", err)
	}
	for name, mut := range map[string]func(*Plan){
		"fractional duration": func(p *Plan) { p.Duration = 1500 * time.Millisecond },
		"same cpu":            func(p *Plan) { p.LoadCPU = 0 },
		"too many idle conns": func(p *Plan) { p.IdleConns = 20000 },
		"no rounds":           func(p *Plan) { p.Rounds = 0 },
		"strait without bin":  func(p *Plan) { p.Tools.Strait = "" },
		"h2 without h2load":   func(p *Plan) { p.Tools.H2load = "" },
		"h2 without streams":  func(p *Plan) { p.Streams = 0 },
		"grpc without load":   func(p *Plan) { p.Tools.GRPCLoad = "" },
		"grpc conns > calls":  func(p *Plan) { p.GRPCConns = 65 },
	} {
		p := testPlan()
		mut(&p)
		if err := p.Validate(); !errors.Is(err, ErrPlan) {
			t.Errorf("%s: err = %v, want ErrPlan", name, err)
		}
	}
}

func TestProcStopsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	// A parent that leaves a child behind, like nginx's master and worker.
	p, err := StartProc("tree", 0, nil, filepath.Join(dir, "log"), "sh", "-c", "sleep 30 & echo $! > "+dir+"/child; wait")
	if err != nil {
		t.Fatal(err)
	}
	var child string
	for i := 0; i < 100 && child == ""; i++ {
		b, _ := os.ReadFile(filepath.Join(dir, "child"))
		child = strings.TrimSpace(string(b))
		time.Sleep(10 * time.Millisecond)
	}
	if child == "" {
		t.Fatal("child never started")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + child + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			break // gone or a zombie awaiting its (dead) parent's reaper
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %s still running after Stop", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.Stop(time.Second); !errors.Is(err, ErrExited) {
		t.Fatalf("second Stop: err = %v, want ErrExited", err)
	}
}

func TestWriteReportChart(t *testing.T) {
	dir := t.TempDir()
	meta := Meta{CmdLine: "x", Date: time.Now()}
	// A stand-in gnuplot that keeps the script and the data it was given.
	fake := filepath.Join(dir, "gnuplot")
	script := "#!/bin/sh\ncp \"$1\" " + dir + "/got.gp\ncat $(dirname \"$1\")/*.dat > " + dir + "/got.dat\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	md, png := filepath.Join(dir, "r.md"), filepath.Join(dir, "r.png")
	if err := WriteReport(md, png, fake, testPlan(), meta, testSamples()); err != nil {
		t.Fatal(err)
	}
	gp, _ := os.ReadFile(filepath.Join(dir, "got.gp"))
	for _, want := range []string{"set output " + `"` + png + `"`, "L4: thousand requests/s", "L4: KiB RSS per idle pair", "multiplot layout 2,2", "proxy CPU µs per request"} {
		if !strings.Contains(string(gp), want) {
			t.Errorf("gnuplot script lacks %q:\n%s", want, gp)
		}
	}
	dat, _ := os.ReadFile(filepath.Join(dir, "got.dat"))
	if !strings.Contains(string(dat), `"haproxy" 3.3 3.3 3.3 0x1f5fa8 "3.30 (0.30)"`) {
		t.Errorf("chart data lacks haproxy's memory bar:\n%s", dat)
	}
	// A gnuplot that fails still leaves a report, which says there is no chart.
	if err := WriteReport(md, png, "/bin/false", testPlan(), meta, testSamples()); !errors.Is(err, ErrChart) {
		t.Fatalf("failing gnuplot: err = %v, want ErrChart", err)
	}
	b, err := os.ReadFile(md)
	if err != nil || !strings.Contains(string(b), "No chart") || !strings.Contains(string(b), "| haproxy |") {
		t.Fatalf("report after chart failure: %v\n%s", err, b)
	}
}

const h2loadOut = `starting benchmark...
spawning thread #0: 64 total client(s). Timing-based test with 0s of warm-up time and 5s of main duration for each client.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 5.00s, 35650.00 req/s, 1.19MB/s
requests: 178250 total, 178890 started, 178250 done, 178240 succeeded, 10 failed, 3 errored, 1 timeout
status codes: 178240 2xx, 0 3xx, 4 4xx, 6 5xx
traffic: 5.95MB (6240032) total, 1.02MB (1069500) headers (space savings 95.24%), 2.04MB (2139000) data
                     min         max         mean         sd        +/- sd
time for request:      208us     42.41ms     17.86ms      4.06ms    70.00%
`

func TestParseH2load(t *testing.T) {
	r, err := ParseH2load(h2loadOut)
	if err != nil {
		t.Fatal(err)
	}
	want := H2loadResult{RPS: 35650, Total: 178250, Done: 178250, Succeeded: 178240, Failed: 10, Errored: 3, Timeout: 1,
		Status2xx: 178240, Status4xx: 4, Status5xx: 6}
	if r != want {
		t.Fatalf("ParseH2load = %+v, want %+v", r, want)
	}
	for _, bad := range []string{
		"",
		strings.Replace(h2loadOut, "finished in", "ended in", 1),
		strings.Replace(h2loadOut, "10 failed", "x failed", 1),
		strings.Replace(h2loadOut, "6 5xx", "6 5xx, 1 6xx", 1),
		strings.Replace(h2loadOut, "35650.00 req/s", "NaN req/s", 1),
	} {
		if _, err := ParseH2load(bad); !errors.Is(err, ErrH2loadOutput) {
			t.Errorf("ParseH2load(%.60q...) err = %v, want ErrH2loadOutput", bad, err)
		}
	}
	var log strings.Builder
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&log, "1764150000%06d\t200\t%d\n", i, i*10)
	}
	p50, p99, n, err := ParseH2loadLog(strings.NewReader(log.String()))
	if err != nil || n != 1000 || p50 != 5000*time.Microsecond || p99 != 9900*time.Microsecond {
		t.Fatalf("ParseH2loadLog = %v %v %d %v", p50, p99, n, err)
	}
	for _, bad := range []string{"", "1\t200\n", "1\t200\tx\n", "1\t200\t-5\n"} {
		if _, _, _, err := ParseH2loadLog(strings.NewReader(bad)); !errors.Is(err, ErrH2loadOutput) {
			t.Errorf("ParseH2loadLog(%q) err = %v, want ErrH2loadOutput", bad, err)
		}
	}
}

func FuzzParseH2load(f *testing.F) {
	f.Add(h2loadOut)
	f.Add("finished in 1s, 1 req/s, 1B/s\nrequests: 1 total, 1 started, 1 done, 1 succeeded, 0 failed, 0 errored, 0 timeout\nstatus codes: 1 2xx, 0 3xx, 0 4xx, 0 5xx\n")
	f.Add("requests: -1 total")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseH2load(s)
		if err == nil && (r.RPS < 0 || math.IsNaN(r.RPS) || r.Done < 0 || r.Status2xx < 0) {
			t.Fatalf("implausible result %+v accepted", r)
		}
		if err != nil && !errors.Is(err, ErrH2loadOutput) {
			t.Fatalf("err %v is not ErrH2loadOutput", err)
		}
		p50, p99, n, err := ParseH2loadLog(strings.NewReader(s))
		if err == nil && (n < 1 || p50 < 0 || p99 < p50) {
			t.Fatalf("log: implausible %v %v %d", p50, p99, n)
		}
	})
}

// Modes without nginx (h2) take their ratios to HAProxy, and say why nginx is missing.
func TestReportH2Mode(t *testing.T) {
	plan := testPlan()
	var ss []Sample
	for round := 1; round <= 3; round++ {
		ss = append(ss,
			Sample{Workload: "h2", Target: "direct", Round: round, RPS: 100000, P99Ms: 1, Seconds: 5},
			Sample{Workload: "h2", Target: "haproxy", Round: round, RPS: 40000, P99Ms: 4, ProxyCores: 1, Seconds: 5},
			Sample{Workload: "h2", Target: "strait-gnet", Round: round, RPS: 30000, P99Ms: 5, ProxyCores: 1, Seconds: 5},
			Sample{Workload: "grpc", Target: "nginx", Round: round, RPS: 20000, P99Ms: 5, ProxyCores: 1, Seconds: 5},
			Sample{Workload: "grpc", Target: "strait-gnet", Round: round, RPS: 10000, P99Ms: 9, ProxyCores: 1, Seconds: 5},
		)
	}
	rows := Summarize(plan, "h2", ss)
	if refName(rows) != "haproxy" {
		t.Fatalf("h2 reference = %s, want haproxy", refName(rows))
	}
	for _, r := range rows {
		if r.Target.Name == "strait-gnet" && r.RPSRatio != 0.75 {
			t.Fatalf("strait-gnet h2 ratio = %v, want 0.75 of HAProxy", r.RPSRatio)
		}
	}
	md := string(renderMarkdown(plan, Meta{}, ss, "r.png", nil))
	for _, want := range []string{
		"## H2", "Ratios are to haproxy in this run.", "| target | req/s | vs haproxy |",
		"- No nginx row: nginx cannot proxy to an HTTP/2 upstream",
		"`h2load -t1 -c64 -m10 -D5` (640 streams in flight",
		"## GRPC", "Ratios are to nginx in this run.", "`grpcload -conns 8 -concurrency 64 -duration 5s`",
		"| strait-gnet | 10.0k | 0.50 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q\n%s", want, md)
		}
	}
	ws, err := ParseWorkloads("h2")
	if err != nil || len(ws) != 1 {
		t.Fatalf("ParseWorkloads(h2) = %v, %v", ws, err)
	}
	h2 := ws[0]
	if h2.Name != "h2" || h2.Runs(Target{Name: "nginx", Kind: KindNginx}) || !h2.Runs(Target{Kind: KindHAProxy}) || !h2.Runs(Target{Kind: KindDirect}) {
		t.Fatalf("h2 workload targets wrong: %+v", h2)
	}
}
