package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strait-proxy/strait/benchmarks/grpcload"
)

// ErrH2loadOutput is returned when h2load's output or log lacks a figure the harness needs.
var ErrH2loadOutput = errors.New("bench: unexpected h2load output")

// H2loadResult is what the harness reads from h2load's summary and its --log-file.
type H2loadResult struct {
	RPS                                        float64
	Total, Done, Succeeded                     int64
	Failed, Errored, Timeout                   int64
	Status2xx, Status3xx, Status4xx, Status5xx int64
	P50, P99                                   time.Duration // from the log file
	Logged                                     int64         // requests in the log file
}

// ParseH2load parses h2load's summary:
//
//	finished in 5.00s, 35650.00 req/s, 1.19MB/s
//	requests: 106950 total, 107590 started, 106950 done, 106950 succeeded, 0 failed, 0 errored, 0 timeout
//	status codes: 106950 2xx, 0 3xx, 0 4xx, 0 5xx
func ParseH2load(out string) (H2loadResult, error) {
	var r H2loadResult
	var haveRPS, haveReq, haveStatus bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "finished in "):
			// finished in 5.00s, 35650.00 req/s, 1.19MB/s
			parts := strings.Split(line, ", ")
			if len(parts) < 2 || !strings.HasSuffix(parts[1], " req/s") {
				return r, fmt.Errorf("%w: %q", ErrH2loadOutput, line)
			}
			v, err := strconv.ParseFloat(strings.TrimSuffix(parts[1], " req/s"), 64)
			if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return r, fmt.Errorf("%w: req/s in %q", ErrH2loadOutput, line)
			}
			r.RPS, haveRPS = v, true
		case strings.HasPrefix(line, "requests: "):
			nums, err := countsBefore(strings.TrimPrefix(line, "requests: "),
				"total", "started", "done", "succeeded", "failed", "errored", "timeout")
			if err != nil {
				return r, err
			}
			r.Total, r.Done, r.Succeeded = nums[0], nums[2], nums[3]
			r.Failed, r.Errored, r.Timeout = nums[4], nums[5], nums[6]
			haveReq = true
		case strings.HasPrefix(line, "status codes: "):
			nums, err := countsBefore(strings.TrimPrefix(line, "status codes: "), "2xx", "3xx", "4xx", "5xx")
			if err != nil {
				return r, err
			}
			r.Status2xx, r.Status3xx, r.Status4xx, r.Status5xx = nums[0], nums[1], nums[2], nums[3]
			haveStatus = true
		}
	}
	if !haveRPS || !haveReq || !haveStatus {
		return r, fmt.Errorf("%w: missing the finished, requests or status codes line", ErrH2loadOutput)
	}
	return r, nil
}

// countsBefore parses "N word, N word, ..." with the words in the given order.
func countsBefore(s string, words ...string) ([]int64, error) {
	parts := strings.Split(s, ", ")
	if len(parts) != len(words) {
		return nil, fmt.Errorf("%w: %q", ErrH2loadOutput, s)
	}
	out := make([]int64, len(words))
	for i, p := range parts {
		f := strings.Fields(p)
		if len(f) != 2 || f[1] != words[i] {
			return nil, fmt.Errorf("%w: %q (want a count of %s)", ErrH2loadOutput, p, words[i])
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%w: %q", ErrH2loadOutput, p)
		}
		out[i] = v
	}
	return out, nil
}

// ParseH2loadLog reads h2load's --log-file (tab-separated: start time in µs since the epoch,
// HTTP status, µs until the end of the response) and returns the median and 99th
// percentile latency and the number of requests logged.
func ParseH2loadLog(r io.Reader) (p50, p99 time.Duration, n int64, err error) {
	var lat []time.Duration
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), "\t")
		if len(f) < 3 {
			if len(f) == 1 && f[0] == "" {
				continue
			}
			return 0, 0, 0, fmt.Errorf("%w: log line %q", ErrH2loadOutput, sc.Text())
		}
		us, perr := strconv.ParseInt(f[2], 10, 64)
		if perr != nil || us < 0 {
			return 0, 0, 0, fmt.Errorf("%w: log line %q", ErrH2loadOutput, sc.Text())
		}
		lat = append(lat, time.Duration(us)*time.Microsecond)
	}
	if err := sc.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("bench: h2load log: %w", err)
	}
	if len(lat) == 0 {
		return 0, 0, 0, fmt.Errorf("%w: empty log", ErrH2loadOutput)
	}
	slices.Sort(lat)
	return grpcload.Percentile(lat, 0.50), grpcload.Percentile(lat, 0.99), int64(len(lat)), nil
}

// runH2load runs h2load on the load CPU for d against url and returns its figures and the
// CPU ticks it used. The per-request log goes to a file in the work directory.
func (r *runner) runH2load(ctx context.Context, url string, d time.Duration) (H2loadResult, int64, error) {
	f, err := os.CreateTemp(r.plan.WorkDir, "h2load-*.log")
	if err != nil {
		return H2loadResult{}, 0, fmt.Errorf("bench: h2load log: %w", err)
	}
	logPath := f.Name()
	_ = f.Close()
	defer os.Remove(logPath)
	args := []string{"-c", strconv.Itoa(r.plan.LoadCPU), r.plan.Tools.H2load,
		"-t1", "-c" + strconv.Itoa(r.plan.Conns), "-m" + strconv.Itoa(r.plan.Streams),
		"-D" + strconv.Itoa(int(d/time.Second)), "--log-file=" + logPath, url}
	out, ticks, err := r.runLoad(ctx, d+30*time.Second, args)
	if err != nil {
		return H2loadResult{}, ticks, fmt.Errorf("h2load: %w: %s", err, out)
	}
	res, err := ParseH2load(string(out))
	if err != nil {
		return res, ticks, err
	}
	lf, err := os.Open(logPath)
	if err != nil {
		return res, ticks, fmt.Errorf("bench: h2load log: %w", err)
	}
	defer lf.Close()
	res.P50, res.P99, res.Logged, err = ParseH2loadLog(lf)
	return res, ticks, err
}

func (r *runner) measureH2load(ctx context.Context, w Workload, addr string, proxy *Proc, s *Sample) error {
	url := "http://" + addr + w.Path
	res, err := timedRun(r, proxy, s, func(d time.Duration) (H2loadResult, int64, error) {
		return r.runH2load(ctx, url, d)
	}, nil)
	if err != nil {
		return err
	}
	s.RPS, s.Requests = res.RPS, res.Succeeded
	s.SocketErrors = res.Errored + res.Timeout
	s.Non2xx = res.Done - res.Status2xx
	s.P50Ms = float64(res.P50) / float64(time.Millisecond)
	s.P99Ms = float64(res.P99) / float64(time.Millisecond)
	if s.Non2xx > 0 || res.Failed > 0 || s.SocketErrors*100 > res.Done {
		return fmt.Errorf("%w: %d non-2xx, %d failed, %d errored, %d timed out in %d requests", ErrLoad, s.Non2xx, res.Failed, res.Errored, res.Timeout, res.Done)
	}
	return nil
}

// runGRPC runs grpcload on the load CPU for d against addr and returns its figures and the
// CPU ticks it used.
func (r *runner) runGRPC(ctx context.Context, addr string, d time.Duration) (grpcload.Result, int64, error) {
	args := []string{"-c", strconv.Itoa(r.plan.LoadCPU), r.plan.Tools.GRPCLoad, "-json",
		"-addr", addr, "-conns", strconv.Itoa(r.plan.GRPCConns), "-concurrency", strconv.Itoa(r.plan.Conns),
		"-duration", d.String()}
	out, ticks, err := r.runLoad(ctx, d+30*time.Second, args)
	var res grpcload.Result
	if jerr := json.Unmarshal(firstLine(out), &res); jerr != nil {
		if err != nil {
			return res, ticks, fmt.Errorf("grpcload: %w: %s", err, out)
		}
		return res, ticks, fmt.Errorf("grpcload output %q: %w", out, jerr)
	}
	if err != nil {
		return res, ticks, fmt.Errorf("%w: grpcload: %d of %d calls failed (%s)", ErrLoad, res.Errors, res.Errors+res.Requests, res.FirstError)
	}
	return res, ticks, nil
}

func firstLine(b []byte) []byte {
	s, _, _ := strings.Cut(string(b), "\n")
	return []byte(s)
}

func (r *runner) measureGRPC(ctx context.Context, addr string, proxy *Proc, s *Sample) error {
	res, runErr := timedRun(r, proxy, s, func(d time.Duration) (grpcload.Result, int64, error) {
		return r.runGRPC(ctx, addr, d)
	}, func(res grpcload.Result) bool { return res.Seconds > 0 })
	if runErr != nil && res.Seconds == 0 {
		return runErr
	}
	s.RPS, s.Requests, s.SocketErrors = res.RPS, res.Requests, res.Errors
	s.P50Ms, s.P99Ms = res.P50Ms, res.P99Ms
	return runErr
}
