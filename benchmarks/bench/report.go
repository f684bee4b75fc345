package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrChart is returned when the chart could not be drawn.
var ErrChart = errors.New("bench: chart")

// Noise thresholds: the share of a CPU that other processes used during measurements above
// which a run is reported as noisy.
const (
	noisyMean = 0.05
	noisyMax  = 0.20
)

// Meta is the header of a report.
type Meta struct {
	CmdLine  string
	Date     time.Time
	CPU      string
	Kernel   string
	Versions [][2]string // name, version, in display order
	Notes    []string    // extra lines (e.g. why Strait was not measured)
}

// Row is one target's summary in one mode's table.
type Row struct {
	Target                Target
	RPS, RPSLo, RPSHi     float64
	P99, P99Lo, P99Hi     float64 // ms
	KB, KBLo, KBHi        float64 // KiB per idle connection or pair
	ProxyCores            float64
	CPUPerReq, CPULo      float64 // µs of proxy CPU per request
	CPUHi, CPURatio       float64
	RPSRatio, KBRatio     float64
	AddedP99              float64 // ms over the direct target's median p99, NaN without one
	RPSSamples, KBSamples int
	RPSFailed, IdleFailed int
	// rpsMeasured and kbMeasured tell whether the target ran in the mode's throughput and
	// idle workloads at all (possibly failing every round).
	rpsMeasured, kbMeasured bool
}

// Summarize builds one table row per target for the workloads of mode.
func Summarize(plan Plan, mode string, samples []Sample) []Row {
	var wrkW, idleW *Workload
	for i := range plan.Workloads {
		w := &plan.Workloads[i]
		if w.Mode != mode {
			continue
		}
		switch {
		case w.Tool.throughput():
			wrkW = w
		case w.Tool == ToolIdle:
			idleW = w
		}
	}
	rows := make([]Row, 0, len(plan.Targets))
	for _, t := range plan.Targets {
		row := Row{Target: t}
		var rps, p99, kb, cores, cpu []float64
		for _, s := range samples {
			if s.Target != t.Name {
				continue
			}
			switch {
			case wrkW != nil && s.Workload == wrkW.Name:
				row.rpsMeasured = true
				if s.Err != "" {
					row.RPSFailed++
					continue
				}
				rps, p99, cores = append(rps, s.RPS), append(p99, s.P99Ms), append(cores, s.ProxyCores)
				if t.Kind != KindDirect && s.RPS > 0 {
					cpu = append(cpu, s.ProxyCores*1e6/s.RPS)
				}
			case idleW != nil && s.Workload == idleW.Name:
				row.kbMeasured = true
				if s.Err != "" {
					row.IdleFailed++
					continue
				}
				kb = append(kb, s.PerConnKB)
			}
		}
		if !row.rpsMeasured && !row.kbMeasured {
			continue
		}
		row.RPS, row.P99, row.KB, row.ProxyCores = Median(rps), Median(p99), Median(kb), Median(cores)
		row.RPSLo, row.RPSHi = MinMax(rps)
		row.P99Lo, row.P99Hi = MinMax(p99)
		row.KBLo, row.KBHi = MinMax(kb)
		row.CPUPerReq = Median(cpu)
		row.CPULo, row.CPUHi = MinMax(cpu)
		row.RPSSamples, row.KBSamples = len(rps), len(kb)
		rows = append(rows, row)
	}
	var direct *Row
	ref := refRow(rows)
	for i := range rows {
		if rows[i].Target.Kind == KindDirect {
			direct = &rows[i]
		}
	}
	for i := range rows {
		row := &rows[i]
		row.RPSRatio, row.KBRatio, row.AddedP99, row.CPURatio = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if ref != nil {
			row.CPURatio = Ratio(row.CPUPerReq, ref.CPUPerReq)
			row.RPSRatio = Ratio(row.RPS, ref.RPS)
			row.KBRatio = Ratio(row.KB, ref.KB)
		}
		if direct != nil && row.Target.Kind != KindDirect {
			row.AddedP99 = row.P99 - direct.P99
		}
	}
	return rows
}

// refRow is the row ratios are taken to: nginx's, or HAProxy's in a mode without nginx.
func refRow(rows []Row) *Row {
	for _, k := range []Kind{KindNginx, KindHAProxy} {
		for i := range rows {
			if rows[i].Target.Kind == k {
				return &rows[i]
			}
		}
	}
	return nil
}

// refName names the reference of a mode's ratios.
func refName(rows []Row) string {
	if r := refRow(rows); r != nil {
		return r.Target.Name
	}
	return "nginx"
}

// planModes lists the plan's modes in workload order.
func planModes(plan Plan) []string {
	var modes []string
	seen := map[string]bool{}
	for _, w := range plan.Workloads {
		if !seen[w.Mode] {
			seen[w.Mode] = true
			modes = append(modes, w.Mode)
		}
	}
	return modes
}

// WriteReport writes the Markdown report to mdPath and, when gnuplot is non-empty, the chart
// to pngPath (linked from the report by its base name). A chart that fails is noted in the
// report and returned as an error after the report is written.
func WriteReport(mdPath, pngPath, gnuplot string, plan Plan, meta Meta, samples []Sample) error {
	var chartErr error
	if gnuplot == "" {
		chartErr = fmt.Errorf("%w: gnuplot not found", ErrChart)
	} else {
		chartErr = writeChart(gnuplot, pngPath, plan, samples)
	}
	md := renderMarkdown(plan, meta, samples, filepath.Base(pngPath), chartErr)
	if err := os.WriteFile(mdPath, md, 0o644); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	return chartErr
}

func renderMarkdown(plan Plan, meta Meta, samples []Sample, png string, chartErr error) []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Strait whole-system benchmark\n\n")
	p("- Command: `%s`\n", meta.CmdLine)
	p("- Date: %s\n", meta.Date.UTC().Format("2006-01-02 15:04 MST"))
	p("- CPU: %s; kernel %s\n", meta.CPU, meta.Kernel)
	for _, v := range meta.Versions {
		p("- %s: %s\n", v[0], v[1])
	}
	p("- Setup: proxy alone on CPU %d (one worker / thread / event loop; Strait chooses GOMAXPROCS itself: 2 on gnet, a spare P beside its loop, 1 on netpoll and stdnet); backend (nginx with one worker, or the grpc-go backend for gRPC; see each table) and load generator on CPU %d.\n",
		plan.ProxyCPU, plan.LoadCPU)
	p("- Load: %d s per measurement with the load generator each table names, %d round(s), targets alternating within each round, fresh proxy process per measurement",
		int(plan.Duration/time.Second), plan.Rounds)
	if plan.Warmup > 0 {
		p(" after a %v unrecorded warm-up", plan.Warmup)
	}
	p("; idle: %d connections from distinct 127.0.0.0/8 source addresses, one request each, held %v, VmRSS growth of the proxy's process tree / N.\n",
		plan.IdleConns, plan.IdleHold)
	if plan.QuietWait > 0 {
		var waited float64
		notQuiet := 0
		for _, s := range samples {
			waited += s.QuietWaited
			if s.NotQuiet {
				notQuiet++
			}
		}
		p("- Quiet gate: before each measurement the harness waited (up to %v) for a second in which other processes used under %.0f%% of each CPU; it waited %.0f s in all, and %d of %d measurements started without finding one.\n",
			plan.QuietWait, 100*quietBelow(plan), waited, notQuiet, len(samples))
	}
	for _, n := range meta.Notes {
		p("- Note: %s\n", n)
	}
	p("\n")
	p("%s\n", noiseVerdict(samples))

	for _, mode := range planModes(plan) {
		rows := Summarize(plan, mode, samples)
		ref := refName(rows)
		p("## %s\n\n", strings.ToUpper(mode))
		for _, w := range plan.Workloads {
			if w.Mode == mode {
				p("- `%s`: %s.\n", w.Name, w.About)
				p("- Load: %s.\n", loadLine(plan, w))
				for _, k := range []Kind{KindNginx, KindHAProxy, KindStrait} {
					if why, ok := w.Without[k]; ok {
						p("- No %s row: %s.\n", k, why)
					}
				}
			}
		}
		per := "idle conn"
		for _, w := range plan.Workloads {
			if w.Mode == mode && w.Tool == ToolIdle {
				per = w.Per
				p("- Memory is per %s.\n", w.PerLong)
			}
		}
		p("\nMedians of %d round(s); the range (min–max over rounds) is in brackets. Ratios are to %s in this run.\n\n", plan.Rounds, ref)
		p("| target | req/s | vs %[2]s | p99 | added p99 | proxy CPU | proxy CPU per request | vs %[2]s | RSS per %[1]s | vs %[2]s |\n", per, ref)
		p("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			name := r.Target.Name
			if r.Target.Kind == KindDirect {
				name += " (no proxy, reference)"
			}
			rps, ratio, p99, added, cores, cpu, cpuRatio := "—", "—", "—", "—", "—", "—", "—"
			if r.rpsMeasured {
				rps = fmtRange(r.RPS, r.RPSLo, r.RPSHi, fmtK) + failures(r.RPSFailed)
				ratio = fmtRatio(r.RPSRatio)
				p99 = fmtRange(r.P99, r.P99Lo, r.P99Hi, func(v float64) string { return fmt.Sprintf("%.2f ms", v) })
				if !math.IsNaN(r.AddedP99) {
					added = fmt.Sprintf("%+.2f ms", r.AddedP99)
				}
				if r.Target.Kind != KindDirect && !math.IsNaN(r.ProxyCores) {
					cores = fmt.Sprintf("%.2f cores", r.ProxyCores)
				}
				if !math.IsNaN(r.CPUPerReq) {
					cpu = fmtRange(r.CPUPerReq, r.CPULo, r.CPUHi, func(v float64) string { return fmt.Sprintf("%.1f µs", v) })
					cpuRatio = fmtRatio(r.CPURatio)
				}
			}
			kb, kbRatio := "—", "—"
			if r.kbMeasured {
				kb = fmtRange(r.KB, r.KBLo, r.KBHi, func(v float64) string { return fmt.Sprintf("%.2f KiB", v) }) + failures(r.IdleFailed)
				kbRatio = fmtRatio(r.KBRatio)
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, rps, ratio, p99, added, cores, cpu, cpuRatio, kb, kbRatio)
		}
		p("\nAdded p99 is the target's median p99 minus the direct row's, at the same concurrency. Proxy CPU is the median share of its core the proxy used: well below 1.00 means it was not the bottleneck (CPU %d, the load generator and backend, was). Proxy CPU per request is that CPU time divided by the requests served: it does not depend on which side was the bottleneck and is the steadier figure on a busy machine (lower is better).\n\n", plan.LoadCPU)
	}
	if chartErr == nil {
		p("![chart](%s)\n\n", png)
	} else {
		p("(No chart: %v.)\n\n", chartErr)
	}
	p("## Every measurement\n\n")
	p("| workload | round | target | result | p50 | p99 | proxy CPU | other load on proxy / load CPU |\n")
	p("|---|---|---|---|---|---|---|---|\n")
	for _, s := range samples {
		res, p50, p99 := "", "", ""
		switch {
		case s.Err != "":
			res = "FAILED: " + strings.ReplaceAll(s.Err, "|", "\\|")
		case s.Conns > 0:
			res = fmt.Sprintf("%.2f KiB/conn (%d→%d KiB, %d conns)", s.PerConnKB, s.BaselineKB, s.LoadedKB, s.Conns)
		default:
			res = fmt.Sprintf("%.0f req/s", s.RPS)
			p50, p99 = fmt.Sprintf("%.2f ms", s.P50Ms), fmt.Sprintf("%.2f ms", s.P99Ms)
		}
		p("| %s | %d | %s | %s | %s | %s | %.2f | %.0f%% / %.0f%% |\n", s.Workload, s.Round, s.Target, res, p50, p99,
			s.ProxyCores, 100*s.OtherProxyCPU, 100*s.OtherLoadCPU)
	}
	return b.Bytes()
}

// loadLine describes a workload's load generator and backend.
func loadLine(plan Plan, w Workload) string {
	d := int(plan.Duration / time.Second)
	switch w.Tool {
	case ToolWrk:
		c := w.conns(plan)
		return fmt.Sprintf("`wrk -t%d -c%d -d%ds --latency`; backend nginx (one worker, `return 200 \"hello world\\n\"`) over HTTP/1.1", min(plan.Threads, c), c, d)
	case ToolH2load:
		return fmt.Sprintf("`h2load -t1 -c%d -m%d -D%d` (%d streams in flight; p50 and p99 from its per-request log); backend nginx (one worker, `listen ... http2`, `return 200 \"hello world\\n\"`)",
			plan.Conns, plan.Streams, d, plan.Conns*plan.Streams)
	case ToolGRPC:
		return fmt.Sprintf("`grpcload -conns %d -concurrency %d -duration %ds` (benchmarks/cmd/grpcload: grpc-go, %d unary calls in flight over %d HTTP/2 connections); backend grpc-go (`grpcload -serve`, GOMAXPROCS=1)",
			plan.GRPCConns, plan.Conns, d, plan.Conns, plan.GRPCConns)
	case ToolIdle:
		return fmt.Sprintf("%d idle connections from distinct 127.0.0.0/8 source addresses, one request each, held %v", plan.IdleConns, plan.IdleHold)
	}
	return string(w.Tool)
}

// noiseVerdict summarizes how much CPU other processes took during the measurements.
func noiseVerdict(samples []Sample) string {
	var sumP, sumL, maxP, maxL float64
	n := 0
	for _, s := range samples {
		if s.Err != "" || s.Seconds == 0 {
			continue
		}
		n++
		sumP += s.OtherProxyCPU
		sumL += s.OtherLoadCPU
		maxP, maxL = max(maxP, s.OtherProxyCPU), max(maxL, s.OtherLoadCPU)
	}
	if n == 0 {
		return "**Noise:** no successful measurement to judge."
	}
	meanP, meanL := sumP/float64(n), sumL/float64(n)
	verdict := "quiet"
	if meanP > noisyMean || meanL > noisyMean || maxP > noisyMax || maxL > noisyMax {
		verdict = "NOISY: other processes competed for the benchmark's CPUs; compare ratios, not absolute numbers, and rerun on a quiet machine"
	}
	return fmt.Sprintf("**Noise: %s.** CPU used by processes outside the benchmark during measurements: proxy CPU mean %.0f%% (max %.0f%%), load CPU mean %.0f%% (max %.0f%%) of a core.\n",
		verdict, 100*meanP, 100*maxP, 100*meanL, 100*maxL)
}

func quietBelow(plan Plan) float64 {
	if plan.QuietBelow > 0 {
		return plan.QuietBelow
	}
	return 0.10
}

func failures(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d failed)", n)
}

func fmtK(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtRange(mid, lo, hi float64, f func(float64) string) string {
	if math.IsNaN(mid) {
		return "no data"
	}
	if lo == hi {
		return f(mid)
	}
	return fmt.Sprintf("%s [%s–%s]", f(mid), f(lo), f(hi))
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

// kindColor gives each proxy a fixed colour in the chart.
func kindColor(k Kind) string {
	switch k {
	case KindDirect:
		return "0x999999"
	case KindNginx:
		return "0x009639"
	case KindHAProxy:
		return "0x1f5fa8"
	}
	return "0xe07b00"
}

// writeChart draws one panel per measured figure and mode (req/s, p99, memory) with gnuplot.
func writeChart(gnuplot, pngPath string, plan Plan, samples []Sample) error {
	dir, err := os.MkdirTemp("", "straitbench-chart-")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrChart, err)
	}
	defer os.RemoveAll(dir)
	type panel struct {
		title, file string
	}
	var panels []panel
	bars := 0
	base := strings.TrimSuffix(filepath.Base(pngPath), ".png")
	for _, mode := range planModes(plan) {
		rows := Summarize(plan, mode, samples)
		bars = max(bars, len(rows))
		var rps, p99, cpu, kb bytes.Buffer
		for _, r := range rows {
			label := strings.ReplaceAll(r.Target.Name, "_", "-")
			color := kindColor(r.Target.Kind)
			if r.rpsMeasured && !math.IsNaN(r.RPS) {
				fmt.Fprintf(&rps, "%q %g %g %g %s %q\n", label, r.RPS/1000, r.RPSLo/1000, r.RPSHi/1000, color, fmtRatioLabel(fmtK(r.RPS), r.RPSRatio))
				fmt.Fprintf(&p99, "%q %g %g %g %s %q\n", label, r.P99, r.P99Lo, r.P99Hi, color, fmt.Sprintf("%.2f", r.P99))
				if !math.IsNaN(r.CPUPerReq) {
					fmt.Fprintf(&cpu, "%q %g %g %g %s %q\n", label, r.CPUPerReq, r.CPULo, r.CPUHi, color, fmtRatioLabel(fmt.Sprintf("%.1f", r.CPUPerReq), r.CPURatio))
				}
			}
			if r.kbMeasured && !math.IsNaN(r.KB) {
				fmt.Fprintf(&kb, "%q %g %g %g %s %q\n", label, r.KB, r.KBLo, r.KBHi, color, fmtRatioLabel(fmt.Sprintf("%.2f", r.KB), r.KBRatio))
			}
		}
		per := "idle conn"
		for _, w := range plan.Workloads {
			if w.Mode == mode && w.Tool == ToolIdle {
				per = w.Per
			}
		}
		M := strings.ToUpper(mode)
		for _, d := range []struct {
			buf   *bytes.Buffer
			title string
			name  string
		}{
			{&rps, M + ": thousand requests/s (higher is better)", "rps"},
			{&p99, M + ": p99 latency, ms (lower is better)", "p99"},
			{&cpu, M + ": proxy CPU µs per request (lower is better)", "cpu"},
			{&kb, M + ": KiB RSS per " + per + " (lower is better)", "kb"},
		} {
			if d.buf.Len() == 0 {
				continue
			}
			f := filepath.Join(dir, base+"-"+mode+"-"+d.name+".dat")
			if err := os.WriteFile(f, d.buf.Bytes(), 0o644); err != nil {
				return fmt.Errorf("%w: %w", ErrChart, err)
			}
			panels = append(panels, panel{title: d.title, file: f})
		}
	}
	if len(panels) == 0 {
		return fmt.Errorf("%w: nothing measured", ErrChart)
	}
	var gp bytes.Buffer
	cols := min(len(panels), 2)
	if len(panels) == 3 {
		cols = 3
	}
	rows := (len(panels) + cols - 1) / cols
	fmt.Fprintf(&gp, "set terminal pngcairo size %d,%d font 'DejaVu Sans,10'\n", max(420, 120+85*bars)*cols, 40+420*rows)
	fmt.Fprintf(&gp, "set output %q\n", pngPath)
	fmt.Fprintf(&gp, "set multiplot layout %d,%d title %q\n", rows, cols,
		fmt.Sprintf("Strait vs peers, one proxy core, medians of %d round(s); labels: value (ratio to nginx, or HAProxy without nginx); bars: min-max", plan.Rounds))
	gp.WriteString("set style fill solid 0.85 border -1\nset boxwidth 0.65\nset grid ytics\nset yrange [0:*]\n" +
		"set xtics rotate by -30 nomirror\nset offsets 0.5,0.5,0,0\nunset key\n")
	for _, pn := range panels {
		fmt.Fprintf(&gp, "set title %q\n", pn.title)
		fmt.Fprintf(&gp, "plot %q using 0:2:5:xtic(1) with boxes lc rgb variable, '' using 0:2:3:4 with yerrorbars lc rgb 'black' ps 0, '' using 0:4:6 with labels offset 0,0.8 font ',9'\n", pn.file)
	}
	gp.WriteString("unset multiplot\n")
	script := filepath.Join(dir, base+".gp")
	if err := os.WriteFile(script, gp.Bytes(), 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrChart, err)
	}
	if out, err := exec.Command(gnuplot, script).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: gnuplot: %w: %s", ErrChart, err, out)
	}
	return nil
}

func fmtRatioLabel(v string, ratio float64) string {
	if math.IsNaN(ratio) {
		return v
	}
	return fmt.Sprintf("%s (%.2f)", v, ratio)
}
