package bench

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrWrkOutput is returned when wrk's output lacks a figure the harness needs.
var ErrWrkOutput = errors.New("bench: unexpected wrk output")

// WrkResult is what the harness reads from `wrk --latency` output.
type WrkResult struct {
	RPS          float64
	P50, P99     time.Duration
	Requests     int64
	SocketErrors int64  // connect + read + write + timeout
	ErrorDetail  string // wrk's "Socket errors:" line, when it printed one
	Non2xx       int64
}

// ParseWrk parses the output of `wrk --latency`.
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	var haveRPS, haveP99, haveReq bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return r, fmt.Errorf("%w: Requests/sec %q", ErrWrkOutput, f[1])
			}
			r.RPS, haveRPS = v, true
		case len(f) == 2 && (f[0] == "99%" || f[0] == "50%"):
			d, err := ParseWrkDuration(f[1])
			if err != nil {
				return r, err
			}
			if f[0] == "99%" {
				r.P99, haveP99 = d, true
			} else {
				r.P50 = d
			}
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("%w: request count %q", ErrWrkOutput, f[0])
			}
			r.Requests, haveReq = v, true
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			r.ErrorDetail = strings.TrimSpace(sc.Text())
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return r, fmt.Errorf("%w: socket errors %q", ErrWrkOutput, sc.Text())
				}
				r.SocketErrors += v
			}
		case len(f) == 5 && f[0] == "Non-2xx":
			v, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return r, fmt.Errorf("%w: non-2xx %q", ErrWrkOutput, f[4])
			}
			r.Non2xx = v
		}
	}
	if !haveRPS || !haveP99 || !haveReq {
		return r, fmt.Errorf("%w: missing Requests/sec, 99%% or request count (was --latency given?)", ErrWrkOutput)
	}
	return r, nil
}

// ParseWrkDuration parses wrk's time figures: "583.00us", "1.17ms", "2.01s", "1.00m".
func ParseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || v > 1e6 {
				break
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("%w: duration %q", ErrWrkOutput, s)
}
