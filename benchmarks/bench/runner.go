package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/strait-proxy/strait/benchmarks/idlemeter"
	"github.com/strait-proxy/strait/benchmarks/procfs"
)

// ErrPlan reports a plan that cannot run.
var ErrPlan = errors.New("bench: invalid plan")

// ErrLoad reports a load run whose result cannot be used (errors, bad responses).
var ErrLoad = errors.New("bench: load failed")

// Tools are the programs the harness runs.
type Tools struct {
	Nginx        string // nginx binary (backend and L4 peer)
	StreamModule string // path of ngx_stream_module.so
	HAProxy      string
	Wrk          string
	Meter        string // benchmarks/cmd/idleconns binary
	Strait       string // empty when Strait is not measured
	Taskset      string
	H2load       string // nghttp2's h2load, for the h2 workload
	GRPCLoad     string // benchmarks/cmd/grpcload binary: the grpc workload's backend and load
}

// Plan is one run of the harness.
type Plan struct {
	Workloads []Workload
	Targets   []Target
	Rounds    int
	Duration  time.Duration // wrk -d, whole seconds
	Warmup    time.Duration // unrecorded wrk run before each measurement, 0 for none
	Threads   int           // wrk -t
	Conns     int           // wrk -c, h2load -c, grpcload -concurrency (calls in flight)
	Streams   int           // h2load -m: streams in flight per connection
	GRPCConns int           // grpcload -conns: HTTP/2 connections carrying the calls
	IdleConns int
	IdleHold  time.Duration
	ProxyCPU  int
	LoadCPU   int
	// QuietWait, when positive, makes each measurement first wait (up to this long) for one
	// second in which processes outside the benchmark use less than QuietBelow of either CPU.
	QuietWait  time.Duration
	QuietBelow float64 // share of a core; default 0.10
	WorkDir    string  // configs, pid files and logs go under it
	Tools      Tools
	Progress   io.Writer
}

// Validate reports a plan that cannot run.
func (p Plan) Validate() error {
	switch {
	case len(p.Workloads) == 0 || len(p.Targets) == 0:
		return fmt.Errorf("%w: no workload or no target", ErrPlan)
	case p.Rounds < 1:
		return fmt.Errorf("%w: rounds %d", ErrPlan, p.Rounds)
	case p.Duration < time.Second || p.Duration%time.Second != 0 || p.Warmup%time.Second != 0:
		return fmt.Errorf("%w: wrk durations must be whole seconds (got %v, warm-up %v)", ErrPlan, p.Duration, p.Warmup)
	case p.Threads < 1 || p.Conns < p.Threads:
		return fmt.Errorf("%w: %d threads, %d connections", ErrPlan, p.Threads, p.Conns)
	case p.uses(ToolH2load) && (p.Streams < 1 || p.Tools.H2load == ""):
		return fmt.Errorf("%w: the h2 workload needs h2load and at least one stream per connection (-streams %d)", ErrPlan, p.Streams)
	case p.uses(ToolGRPC) && (p.GRPCConns < 1 || p.GRPCConns > p.Conns || p.Tools.GRPCLoad == ""):
		return fmt.Errorf("%w: the grpc workload needs grpcload and 1 to %d connections (-grpc-conns %d)", ErrPlan, p.Conns, p.GRPCConns)
	case p.IdleConns < 1 || p.IdleConns > 9000:
		return fmt.Errorf("%w: idle connections %d (HAProxy's maxconn here is 9000)", ErrPlan, p.IdleConns)
	case p.ProxyCPU == p.LoadCPU:
		return fmt.Errorf("%w: proxy and load share CPU %d", ErrPlan, p.ProxyCPU)
	case p.WorkDir == "":
		return fmt.Errorf("%w: no work dir", ErrPlan)
	}
	for _, t := range p.Targets {
		if t.Kind == KindStrait && p.Tools.Strait == "" {
			return fmt.Errorf("%w: target %s needs a Strait binary", ErrPlan, t.Name)
		}
	}
	return nil
}

// uses reports whether a workload of the plan runs tool.
func (p Plan) uses(tool Tool) bool {
	for _, w := range p.Workloads {
		if w.Tool == tool {
			return true
		}
	}
	return false
}

// Sample is one measurement of one target in one round.
type Sample struct {
	Workload     string  `json:"workload"`
	Target       string  `json:"target"`
	Round        int     `json:"round"`
	RPS          float64 `json:"rps,omitempty"`
	P50Ms        float64 `json:"p50_ms,omitempty"`
	P99Ms        float64 `json:"p99_ms,omitempty"`
	Requests     int64   `json:"requests,omitempty"`
	SocketErrors int64   `json:"socket_errors,omitempty"`
	Non2xx       int64   `json:"non_2xx,omitempty"`
	Conns        int     `json:"idle_conns,omitempty"`
	BaselineKB   int64   `json:"baseline_kb,omitempty"`
	LoadedKB     int64   `json:"loaded_kb,omitempty"`
	PerConnKB    float64 `json:"per_conn_kb,omitempty"`
	// ProxyCores is the CPU the proxy used during the measurement, in cores.
	ProxyCores float64 `json:"proxy_cores"`
	// OtherProxyCPU and OtherLoadCPU are the share of the proxy's and the load generator's
	// CPU that processes outside the benchmark used during the measurement (noise).
	OtherProxyCPU float64 `json:"other_proxy_cpu"`
	OtherLoadCPU  float64 `json:"other_load_cpu"`
	Seconds       float64 `json:"seconds"`
	// QuietWaited is how long the measurement waited for a quiet machine; NotQuiet is set
	// when it gave up and measured anyway.
	QuietWaited float64 `json:"quiet_waited_s,omitempty"`
	NotQuiet    bool    `json:"not_quiet,omitempty"`
	Err         string  `json:"error,omitempty"`
}

type runner struct {
	plan     Plan
	procs    Procs
	proc     procfs.FS
	backends map[Backend]*backendProc
	backend  *Proc  // the current workload's backend (its CPU is accounted as ours)
	bAddr    string // and its address
	nextSrc  int    // second octet of the next idle measurement's first source address
}

// backendProc is a running backend.
type backendProc struct {
	proc *Proc
	addr string
}

// Run executes the plan and returns every sample. A target that fails in one round is recorded
// with Err and the run goes on; Run itself fails only when the backend cannot run or ctx ends.
// Every process it started is stopped before it returns.
func Run(ctx context.Context, plan Plan) ([]Sample, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	if plan.Progress == nil {
		plan.Progress = io.Discard
	}
	r := &runner{plan: plan, proc: procfs.Proc(), nextSrc: 1, backends: map[Backend]*backendProc{}}
	defer r.procs.StopAll(2 * time.Second)

	var samples []Sample
	for _, w := range plan.Workloads {
		if err := r.useBackend(ctx, w.Backend); err != nil {
			return samples, err
		}
		targets := make([]Target, 0, len(plan.Targets))
		for _, t := range plan.Targets {
			if w.Runs(t) {
				targets = append(targets, t)
			}
		}
		for round := 1; round <= plan.Rounds; round++ {
			for _, t := range targets {
				if err := ctx.Err(); err != nil {
					return samples, err
				}
				s := r.measure(ctx, w, t, round)
				samples = append(samples, s)
				fmt.Fprintf(plan.Progress, "[%s %d/%d] %-15s %s\n", w.Name, round, plan.Rounds, t.Name, s.summary())
			}
		}
	}
	for kind, b := range r.backends {
		if err := r.procs.Stop(b.proc, 5*time.Second); err != nil {
			return samples, fmt.Errorf("bench: %s backend: %w", backendName(kind), err)
		}
	}
	return samples, nil
}

func backendName(b Backend) string {
	if b == BackendHTTP1 {
		return "http1"
	}
	return string(b)
}

func (s Sample) summary() string {
	if s.Err != "" {
		return "FAILED: " + s.Err
	}
	noise := fmt.Sprintf("(proxy %.2f cores; others on proxy/load CPU %.0f%%/%.0f%%)",
		s.ProxyCores, 100*s.OtherProxyCPU, 100*s.OtherLoadCPU)
	if s.Conns > 0 {
		return fmt.Sprintf("%.2f KiB per conn (%d -> %d KiB, %d conns) %s", s.PerConnKB, s.BaselineKB, s.LoadedKB, s.Conns, noise)
	}
	return fmt.Sprintf("%.0f req/s  p99 %.2f ms %s", s.RPS, s.P99Ms, noise)
}

// useBackend makes b the current backend, starting it on the load CPU the first time.
func (r *runner) useBackend(ctx context.Context, b Backend) error {
	if bp := r.backends[b]; bp != nil {
		r.backend, r.bAddr = bp.proc, bp.addr
		return nil
	}
	port, err := FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	dir, err := r.procDir("backend-" + backendName(b))
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var p *Proc
	switch tmpl := nginxBackendTemplate(b); {
	case tmpl != "":
		d, err := newConfigData(dir, "127.0.0.1", port, addr)
		if err != nil {
			return err
		}
		cfg, err := writeConfig(tmpl, dir, "nginx.conf", d)
		if err != nil {
			return err
		}
		p, err = StartProc("backend-"+backendName(b), r.plan.LoadCPU, nil, filepath.Join(dir, "out.log"),
			r.plan.Tools.Nginx, "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", cfg)
		if err != nil {
			return err
		}
	case b == BackendGRPC:
		// Pinned like nginx's backend: the load CPU, one Go processor.
		p, err = StartProc("backend-grpc", r.plan.LoadCPU, []string{"GOMAXPROCS=1"}, filepath.Join(dir, "out.log"),
			r.plan.Tools.GRPCLoad, "-serve", addr)
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown backend %q", ErrPlan, b)
	}
	r.procs.Add(p)
	if err := WaitReady(ctx, protocolOf(b), addr, p, 10*time.Second); err != nil {
		return fmt.Errorf("bench: %s backend: %w", backendName(b), err)
	}
	r.backends[b] = &backendProc{proc: p, addr: addr}
	r.backend, r.bAddr = p, addr
	return nil
}

func (r *runner) procDir(name string) (string, error) {
	dir, err := os.MkdirTemp(r.plan.WorkDir, name+"-")
	if err != nil {
		return "", fmt.Errorf("bench: work dir: %w", err)
	}
	// nginx workers drop root privileges; let them reach their directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("bench: work dir: %w", err)
	}
	return dir, nil
}

// startProxy renders the target's config for the workload's mode, starts it on the proxy CPU
// and waits until a request through it reaches the backend.
func (r *runner) startProxy(ctx context.Context, w Workload, t Target) (*Proc, string, error) {
	mode := w.templates()
	port, err := FreePort("127.0.0.1")
	if err != nil {
		return nil, "", err
	}
	dir, err := r.procDir(t.Name)
	if err != nil {
		return nil, "", err
	}
	d, err := newConfigData(dir, "127.0.0.1", port, r.bAddr)
	if err != nil {
		return nil, "", err
	}
	d.Transport = t.Transport
	d.StreamModule = r.plan.Tools.StreamModule
	tools := r.plan.Tools
	var argv, env []string
	switch t.Kind {
	case KindNginx:
		cfg, err := writeConfig(templateName(mode, t.Kind), dir, "nginx.conf", d)
		if err != nil {
			return nil, "", err
		}
		argv = []string{tools.Nginx, "-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", cfg}
	case KindHAProxy:
		cfg, err := writeConfig(templateName(mode, t.Kind), dir, "haproxy.cfg", d)
		if err != nil {
			return nil, "", err
		}
		argv = []string{tools.HAProxy, "-db", "-f", cfg}
	case KindStrait:
		cfg, err := writeConfig(templateName(mode, t.Kind), dir, "strait.yaml", d)
		if err != nil {
			return nil, "", err
		}
		// GOMAXPROCS is Strait's own choice (strait.runtime gomaxprocs, default: one P per
		// event loop plus a spare on gnet; Go's default, the one CPU, otherwise).
		argv = []string{tools.Strait, "-c", cfg, "--transport", t.Transport}
	default:
		return nil, "", fmt.Errorf("%w: %s has no process", ErrUnknownTarget, t.Name)
	}
	p, err := StartProc(t.Name, r.plan.ProxyCPU, env, filepath.Join(dir, "out.log"), argv...)
	if err != nil {
		return nil, "", err
	}
	r.procs.Add(p)
	if err := WaitReady(ctx, protocolOf(w.Backend), d.Addr, p, 10*time.Second); err != nil {
		_ = r.procs.Stop(p, 2*time.Second)
		return nil, "", err
	}
	return p, d.Addr, nil
}

// cpuMark is a snapshot of the counters that attribute CPU time during a measurement.
type cpuMark struct {
	at      time.Time
	busy    map[int]int64
	proxy   int64
	backend int64
	self    int64
}

func (r *runner) mark(proxy *Proc) (cpuMark, error) {
	m := cpuMark{at: time.Now()}
	var err error
	if m.busy, err = r.proc.CPUBusy(); err != nil {
		return m, err
	}
	if proxy != nil {
		if m.proxy, err = r.proc.TreeCPUTicks(proxy.PID()); err != nil {
			return m, fmt.Errorf("bench: %s: %w", proxy.Name, err)
		}
	}
	if m.backend, err = r.proc.TreeCPUTicks(r.backend.PID()); err != nil {
		return m, fmt.Errorf("bench: backend: %w", err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return m, fmt.Errorf("bench: getrusage: %w", err)
	}
	m.self = rusageTicks(ru.Utime, ru.Stime)
	return m, nil
}

func rusageTicks(u, s syscall.Timeval) int64 {
	us := u.Sec*1e6 + u.Usec + s.Sec*1e6 + s.Usec
	return int64(us) * procfs.UserHZ / 1e6
}

// account fills the sample's CPU figures from two marks and the load generator's CPU ticks.
func (r *runner) account(s *Sample, a, b cpuMark, loadTicks int64) {
	secs := b.at.Sub(a.at).Seconds()
	s.Seconds = secs
	if secs <= 0 {
		return
	}
	ticks := secs * procfs.UserHZ
	proxy := float64(b.proxy - a.proxy)
	ours := float64(b.backend-a.backend+b.self-a.self) + float64(loadTicks)
	s.ProxyCores = proxy / ticks
	s.OtherProxyCPU = max(0, float64(b.busy[r.plan.ProxyCPU]-a.busy[r.plan.ProxyCPU])-proxy) / ticks
	s.OtherLoadCPU = max(0, float64(b.busy[r.plan.LoadCPU]-a.busy[r.plan.LoadCPU])-ours) / ticks
}

func (r *runner) measure(ctx context.Context, w Workload, t Target, round int) Sample {
	s := Sample{Workload: w.Name, Target: t.Name, Round: round}
	if err := r.measureInto(ctx, w, t, &s); err != nil {
		s.Err = err.Error()
	}
	return s
}

func (r *runner) measureInto(ctx context.Context, w Workload, t Target, s *Sample) (err error) {
	// Let the previous measurement's connections finish closing.
	time.Sleep(300 * time.Millisecond)
	if r.plan.QuietWait > 0 {
		waited, quiet, err := r.waitQuiet(ctx)
		if err != nil {
			return err
		}
		s.QuietWaited, s.NotQuiet = waited.Seconds(), !quiet
	}
	addr := r.bAddr
	var proxy *Proc
	if t.Kind != KindDirect {
		if proxy, addr, err = r.startProxy(ctx, w, t); err != nil {
			return err
		}
		defer func() {
			if stopErr := r.procs.Stop(proxy, 5*time.Second); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
	}
	switch w.Tool {
	case ToolWrk:
		return r.measureWrk(ctx, w, addr, proxy, s)
	case ToolH2load:
		return r.measureH2load(ctx, w, addr, proxy, s)
	case ToolGRPC:
		return r.measureGRPC(ctx, addr, proxy, s)
	case ToolIdle:
		if proxy == nil {
			return fmt.Errorf("%w: the idle meter needs a proxy process", ErrPlan)
		}
		return r.measureIdle(ctx, addr, proxy, s)
	}
	return fmt.Errorf("%w: workload %s has no tool", ErrPlan, w.Name)
}

// waitQuiet waits up to QuietWait for one second in which other processes use less than
// QuietBelow of the proxy CPU and of the load CPU. It reports how long it waited and whether
// it found quiet.
func (r *runner) waitQuiet(ctx context.Context) (time.Duration, bool, error) {
	below := r.plan.QuietBelow
	if below <= 0 {
		below = 0.10
	}
	start := time.Now()
	for {
		a, err := r.mark(nil)
		if err != nil {
			return 0, false, err
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(time.Second):
		}
		b, err := r.mark(nil)
		if err != nil {
			return 0, false, err
		}
		var probe Sample
		r.account(&probe, a, b, 0)
		if probe.OtherProxyCPU < below && probe.OtherLoadCPU < below {
			return time.Since(start), true, nil
		}
		if time.Since(start) >= r.plan.QuietWait {
			return time.Since(start), false, nil
		}
	}
}

// timedRun runs a load tool for the plan's warm-up, then for its duration between two CPU
// marks of proxy, and accounts the proxy's and the tool's CPU in s. A measured run that
// failed is returned with its error after accounting when keep says its result is usable
// (a partial result says what went wrong better than none).
func timedRun[T any](r *runner, proxy *Proc, s *Sample, run func(time.Duration) (T, int64, error), keep func(T) bool) (T, error) {
	var zero T
	if r.plan.Warmup > 0 {
		if _, _, err := run(r.plan.Warmup); err != nil {
			return zero, fmt.Errorf("warm-up: %w", err)
		}
	}
	a, err := r.mark(proxy)
	if err != nil {
		return zero, err
	}
	res, loadTicks, runErr := run(r.plan.Duration)
	if runErr != nil && (keep == nil || !keep(res)) {
		return zero, runErr
	}
	b, err := r.mark(proxy)
	if err != nil {
		return zero, err
	}
	r.account(s, a, b, loadTicks)
	return res, runErr
}

func (r *runner) measureWrk(ctx context.Context, w Workload, addr string, proxy *Proc, s *Sample) error {
	url := "http://" + addr + w.Path
	res, err := timedRun(r, proxy, s, func(d time.Duration) (WrkResult, int64, error) {
		return r.runWrk(ctx, url, d, w.conns(r.plan))
	}, nil)
	if err != nil {
		return err
	}
	s.RPS, s.Requests, s.SocketErrors, s.Non2xx = res.RPS, res.Requests, res.SocketErrors, res.Non2xx
	s.P50Ms = float64(res.P50) / float64(time.Millisecond)
	s.P99Ms = float64(res.P99) / float64(time.Millisecond)
	if res.Non2xx > 0 || res.SocketErrors*100 > res.Requests {
		return fmt.Errorf("%w: %d non-2xx responses, %d socket errors in %d requests (%s)", ErrLoad, res.Non2xx, res.SocketErrors, res.Requests, res.ErrorDetail)
	}
	return nil
}

// runWrk runs wrk on the load CPU and returns its figures and the CPU ticks it used.
func (r *runner) runWrk(ctx context.Context, url string, d time.Duration, conns int) (WrkResult, int64, error) {
	args := []string{"-c", strconv.Itoa(r.plan.LoadCPU), r.plan.Tools.Wrk,
		"-t" + strconv.Itoa(min(r.plan.Threads, conns)), "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(d/time.Second)) + "s", "--latency", url}
	out, ticks, err := r.runLoad(ctx, d+30*time.Second, args)
	if err != nil {
		return WrkResult{}, 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	res, err := ParseWrk(string(out))
	return res, ticks, err
}

func (r *runner) measureIdle(ctx context.Context, addr string, proxy *Proc, s *Sample) error {
	blocks := (r.plan.IdleConns + 65023) / 65024
	if r.nextSrc+blocks > 255 {
		r.nextSrc = 1
	}
	src := netip.AddrFrom4([4]byte{127, byte(r.nextSrc), 0, 1})
	r.nextSrc += blocks
	args := []string{"-c", strconv.Itoa(r.plan.LoadCPU), r.plan.Tools.Meter, "-json",
		"-addr", addr, "-n", strconv.Itoa(r.plan.IdleConns), "-src", src.String(),
		"-pid", strconv.Itoa(proxy.PID()), "-hold", r.plan.IdleHold.String()}
	a, err := r.mark(proxy)
	if err != nil {
		return err
	}
	limit := r.plan.IdleHold + time.Duration(r.plan.IdleConns)*time.Millisecond + time.Minute
	out, loadTicks, err := r.runLoad(ctx, limit, args)
	if err != nil {
		return fmt.Errorf("idle meter: %w: %s", err, out)
	}
	b, err := r.mark(proxy)
	if err != nil {
		return err
	}
	r.account(s, a, b, loadTicks)
	var res idlemeter.Result
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("idle meter output %q: %w", out, err)
	}
	s.Conns, s.BaselineKB, s.LoadedKB, s.PerConnKB = res.Conns, res.BaselineKB, res.LoadedKB, res.PerConnKB
	if done, perr := proxy.Exited(); done {
		return fmt.Errorf("%w: %s during the idle hold: %v", ErrExited, proxy.Name, perr)
	}
	return nil
}

// runLoad runs taskset with args, bounded by limit, and returns stdout (stderr appended on
// failure) and the CPU ticks the process used.
func (r *runner) runLoad(ctx context.Context, limit time.Duration, args []string) ([]byte, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.plan.Tools.Taskset, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ticks int64
	if cmd.ProcessState != nil {
		ticks = int64((cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()) * procfs.UserHZ / time.Second)
	}
	if err != nil {
		return append(stdout.Bytes(), stderr.Bytes()...), ticks, err
	}
	return stdout.Bytes(), ticks, nil
}
