// Command straitbench runs Strait's whole-system benchmark: nginx, HAProxy and Strait's
// transports side by side on one proxy core, in alternating rounds, and writes a Markdown report
// with a PNG chart. benchmarks/run.sh installs the peers, builds this command, the idle meter and
// Strait, and runs it pinned to the load CPU; see benchmarks/README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/strait-proxy/strait/benchmarks/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "straitbench:", err)
		os.Exit(1)
	}
}

// profile holds the defaults of --short and --full.
type profile struct {
	rounds    int
	duration  time.Duration
	warmup    time.Duration
	idleConns int
}

// profileNamed returns a profile's defaults.
func profileNamed(name string) (profile, bool) {
	switch name {
	case "short": // a CI smoke check that runs in well under a minute
		return profile{rounds: 1, duration: 2 * time.Second, warmup: 0, idleConns: 500}, true
	case "full": // the numbers that go into RESULTS.md
		return profile{rounds: 5, duration: 5 * time.Second, warmup: time.Second, idleConns: 8000}, true
	}
	return profile{}, false
}

func run() error {
	var (
		prof        = flag.String("profile", "full", "short (CI smoke check) or full")
		workloads   = flag.String("workloads", "", "comma-separated workloads (default all: "+workloadNames()+")")
		targets     = flag.String("targets", "", "comma-separated targets (default all available: direct,nginx,haproxy,strait-gnet,strait-netpoll,strait-stdnet; \"strait\" means all three)")
		rounds      = flag.Int("rounds", 0, "rounds (default from the profile)")
		duration    = flag.Duration("duration", 0, "wrk duration per measurement, whole seconds (default from the profile)")
		warmup      = flag.Duration("warmup", -1, "unrecorded wrk run before each measurement (default from the profile)")
		idleConns   = flag.Int("idle-conns", 0, "idle connections (default from the profile)")
		idleHold    = flag.Duration("idle-hold", 3*time.Second, "wait after opening idle connections before reading memory")
		quietWait   = flag.Duration("quiet-wait", 0, "before each measurement, wait up to this long for a quiet second on both CPUs (0: do not wait)")
		quietBelow  = flag.Float64("quiet-below", 0.10, "what quiet means: other processes' share of each CPU below this")
		threads     = flag.Int("threads", 1, "wrk threads")
		conns       = flag.Int("conns", 64, "wrk and h2load connections; gRPC calls in flight")
		streams     = flag.Int("streams", 10, "h2load streams in flight per connection (-m)")
		grpcConns   = flag.Int("grpc-conns", 8, "HTTP/2 connections carrying the gRPC calls")
		grpcLoad    = flag.String("grpcload", "", "grpcload binary (default: beside this binary)")
		proxyCPU    = flag.Int("proxy-cpu", 0, "CPU for the proxy under test")
		loadCPU     = flag.Int("load-cpu", 1, "CPU for the backend and the load generator")
		strait      = flag.String("strait", "", "Strait binary (empty: Strait is not measured)")
		straitVer   = flag.String("strait-version", "", "Strait version line for the report")
		straitNote  = flag.String("strait-note", "", "why Strait is not measured, for the report")
		meter       = flag.String("meter", "", "idleconns binary (default: beside this binary)")
		streamMod   = flag.String("stream-module", "", "nginx ngx_stream_module.so (default: searched)")
		out         = flag.String("out", "benchmarks/out", "output directory for report.md, report.png, samples.json")
		results     = flag.String("results", "", "also write the report here (e.g. benchmarks/RESULTS.md; chart beside it as .png)")
		cmdline     = flag.String("cmdline", "", "command line shown in the report (default: this one)")
		keep        = flag.Bool("keep", false, "keep the work directory (configs, logs)")
		extraNotes  = flag.String("note", "", "extra note for the report header")
		checkOnly   = flag.Bool("check", false, "only check that the tools are present and exit")
		progressOut = os.Stderr
	)
	flag.Parse()
	pr, ok := profileNamed(*prof)
	if !ok {
		return fmt.Errorf("unknown profile %q (short or full)", *prof)
	}
	plan := bench.Plan{
		Rounds: pick(*rounds, pr.rounds), Duration: pickD(*duration, pr.duration),
		Warmup: pr.warmup, IdleConns: pick(*idleConns, pr.idleConns), IdleHold: *idleHold,
		Threads: *threads, Conns: *conns, Streams: *streams, GRPCConns: *grpcConns,
		ProxyCPU: *proxyCPU, LoadCPU: *loadCPU,
		QuietWait: *quietWait, QuietBelow: *quietBelow,
		Progress: progressOut,
	}
	if *warmup >= 0 {
		plan.Warmup = *warmup
	}
	var err error
	if *workloads == "" {
		plan.Workloads = bench.Workloads()
	} else if plan.Workloads, err = bench.ParseWorkloads(*workloads); err != nil {
		return err
	}
	if *targets == "" {
		plan.Targets = bench.AllTargets(*strait != "")
	} else if plan.Targets, err = bench.ParseTargets(*targets); err != nil {
		return err
	}

	tools, err := findTools(*strait, *meter, *grpcLoad, *streamMod)
	if err != nil {
		return err
	}
	plan.Tools = tools
	gnuplot, _ := exec.LookPath("gnuplot")
	if *checkOnly {
		fmt.Printf("tools: %+v gnuplot=%q\n", tools, gnuplot)
		return nil
	}

	work, err := os.MkdirTemp("", "straitbench-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	plan.WorkDir = work
	if err := plan.Validate(); err != nil {
		return err
	}

	meta := collectMeta(tools, gnuplot, *straitVer)
	meta.CmdLine = *cmdline
	if meta.CmdLine == "" {
		meta.CmdLine = strings.Join(os.Args, " ")
	}
	if *strait == "" && *straitNote != "" {
		meta.Notes = append(meta.Notes, "Strait not measured: "+*straitNote)
	}
	if *extraNotes != "" {
		meta.Notes = append(meta.Notes, *extraNotes)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	samples, runErr := bench.Run(ctx, plan)
	fmt.Fprintf(progressOut, "measured in %v\n", time.Since(start).Round(time.Second))

	failed := 0
	for _, s := range samples {
		if s.Err != "" {
			failed++
		}
	}
	if len(samples) > 0 {
		if err := writeOutputs(*out, *results, gnuplot, plan, meta, samples); err != nil {
			return errors.Join(runErr, err)
		}
	}
	if *keep || failed > 0 || runErr != nil {
		fmt.Fprintf(progressOut, "work directory (configs and logs) kept: %s\n", work)
	} else {
		_ = os.RemoveAll(work)
	}
	if runErr != nil {
		return runErr
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d measurements failed (see the report)", failed, len(samples))
	}
	return nil
}

func writeOutputs(out, results, gnuplot string, plan bench.Plan, meta bench.Meta, samples []bench.Sample) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("output dir: %w", err)
	}
	js, err := json.MarshalIndent(samples, "", "  ")
	if err != nil {
		return fmt.Errorf("samples: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "samples.json"), js, 0o644); err != nil {
		return fmt.Errorf("samples: %w", err)
	}
	md := filepath.Join(out, "report.md")
	if err := bench.WriteReport(md, filepath.Join(out, "report.png"), gnuplot, plan, meta, samples); err != nil {
		fmt.Fprintln(os.Stderr, "straitbench: warning:", err)
	}
	fmt.Fprintf(os.Stderr, "report: %s\n", md)
	if results != "" {
		png := strings.TrimSuffix(results, filepath.Ext(results)) + ".png"
		if err := bench.WriteReport(results, png, gnuplot, plan, meta, samples); err != nil {
			fmt.Fprintln(os.Stderr, "straitbench: warning:", err)
		}
		fmt.Fprintf(os.Stderr, "report: %s\n", results)
	}
	return nil
}

func workloadNames() string {
	var n []string
	for _, w := range bench.Workloads() {
		n = append(n, w.Name)
	}
	return strings.Join(n, ",")
}

func pick(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func pickD(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// findTools locates every program the harness runs.
func findTools(strait, meter, grpcLoad, streamMod string) (bench.Tools, error) {
	var t bench.Tools
	var missing []string
	look := func(name string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
		}
		return p
	}
	t.Nginx, t.HAProxy, t.Wrk, t.Taskset = look("nginx"), look("haproxy"), look("wrk"), look("taskset")
	t.H2load = look("h2load")
	beside := func(given, name string) string {
		if given == "" {
			if self, err := os.Executable(); err == nil {
				given = filepath.Join(filepath.Dir(self), name)
			}
		}
		if _, err := os.Stat(given); err != nil {
			missing = append(missing, name+" (go build ./benchmarks/cmd/"+name+")")
		}
		return given
	}
	t.Meter = beside(meter, "idleconns")
	t.GRPCLoad = beside(grpcLoad, "grpcload")
	if streamMod == "" {
		for _, c := range []string{
			"/usr/lib/nginx/modules/ngx_stream_module.so",
			"/usr/share/nginx/modules/ngx_stream_module.so",
			"/usr/lib64/nginx/modules/ngx_stream_module.so",
		} {
			if _, err := os.Stat(c); err == nil {
				streamMod = c
				break
			}
		}
	}
	if streamMod == "" {
		missing = append(missing, "ngx_stream_module.so (libnginx-mod-stream)")
	}
	t.StreamModule = streamMod
	if strait != "" {
		if _, err := os.Stat(strait); err != nil {
			missing = append(missing, "strait binary "+strait)
		}
		t.Strait = strait
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("missing: %s (benchmarks/run.sh installs them)", strings.Join(missing, ", "))
	}
	return t, nil
}

// collectMeta gathers the report header: CPU, kernel, and each peer's version.
func collectMeta(t bench.Tools, gnuplot, straitVer string) bench.Meta {
	m := bench.Meta{Date: time.Now(), CPU: cpuModel(), Kernel: firstLine(cmdOut("uname", "-r"))}
	add := func(name, v string) { m.Versions = append(m.Versions, [2]string{name, v}) }
	add("nginx", strings.TrimPrefix(firstLine(cmdOut(t.Nginx, "-v")), "nginx version: "))
	add("HAProxy", firstLine(cmdOut(t.HAProxy, "-v")))
	add("wrk", firstLine(cmdOut(t.Wrk, "-v")))
	add("h2load", firstLine(cmdOut(t.H2load, "--version")))
	add("grpc-go (grpcload and its backend)", grpcVersion())
	if t.Strait != "" {
		v := straitVer
		if v == "" {
			v = t.Strait
		}
		if out, err := exec.Command(t.Strait, "version").Output(); err == nil {
			v += "; `strait version`: " + firstLine(string(out))
		}
		add("Strait", v)
	}
	add("Go (harness)", runtime.Version())
	if gnuplot != "" {
		add("gnuplot", firstLine(cmdOut(gnuplot, "--version")))
	}
	return m
}

// grpcVersion is the grpc-go module version this harness (and grpcload) was built with.
func grpcVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "google.golang.org/grpc" {
				return d.Version
			}
		}
	}
	return "unknown"
}

// cmdOut runs a version command; many print to stderr and some exit non-zero.
func cmdOut(name string, args ...string) string {
	if name == "" {
		return "not found"
	}
	out, _ := exec.Command(name, args...).CombinedOutput()
	return string(out)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return "unknown"
	}
	return strings.TrimSpace(s)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	model, n := "unknown", 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			model = strings.TrimSpace(v)
		case "processor":
			n++
		}
	}
	return fmt.Sprintf("%s × %d online CPUs", model, n)
}
