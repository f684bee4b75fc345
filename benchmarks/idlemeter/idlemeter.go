// Package idlemeter measures what idle connections cost a server process: it records the
// process tree's resident memory (VmRSS), opens N connections each from its own source address
// in 127.0.0.0/8 (so ephemeral ports never run out), sends one HTTP request on each and reads
// the response so per-connection buffers are touched, holds them for a while, and reports the
// growth of resident memory divided by N.
//
// Who may call it: benchmarks/cmd/idleconns and the benchmark harness. It dials loopback only.
package idlemeter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/strait-proxy/strait/benchmarks/procfs"
)

// Sentinel errors.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("idlemeter: invalid config")
	// ErrSourceRange is returned when N source addresses do not fit in 127.0.0.0/8 from the
	// first one.
	ErrSourceRange = errors.New("idlemeter: source addresses leave 127.0.0.0/8")
	// ErrResponse reports a response that was not a complete HTTP 200.
	ErrResponse = errors.New("idlemeter: bad response")
	// ErrConnsFailed reports that some connections could not be opened or answered.
	ErrConnsFailed = errors.New("idlemeter: connections failed")
)

// DefaultRequest is the request sent on each connection when Config.Request is nil.
var defaultRequest = []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: strait-idlemeter\r\n\r\n")

// DefaultRequest returns the request sent on each connection unless Config.Request is set.
func DefaultRequest() []byte { return bytes.Clone(defaultRequest) }

// Config describes one measurement.
type Config struct {
	// Addr is the server's host:port.
	Addr string
	// N is the number of connections.
	N int
	// FirstSource is the first source address; connection i binds the i-th usable address
	// after it (last octets 0 and 255 are skipped). It must be in 127.0.0.0/8.
	FirstSource netip.Addr
	// Request is written once on each connection, and one HTTP response is read back. Empty
	// (with NoRequest) means the connections stay untouched.
	Request   []byte
	NoRequest bool
	// Concurrency bounds connections being opened at once (default 128), so the listen
	// backlog never overflows.
	Concurrency int
	// Timeout bounds each connect and each response (default 10s).
	Timeout time.Duration
	// Hold is how long to wait after the last connection is ready before reading memory.
	Hold time.Duration
	// PID is the root of the process tree whose VmRSS is measured; 0 measures nothing.
	PID int
	// Proc is the /proc to read; the zero value means the live /proc.
	Proc *procfs.FS
}

// Validate reports a config that cannot run.
func (c Config) Validate() error {
	if c.Addr == "" {
		return fmt.Errorf("%w: empty Addr", ErrConfig)
	}
	if c.N <= 0 {
		return fmt.Errorf("%w: N must be positive, got %d", ErrConfig, c.N)
	}
	if c.Concurrency < 0 || c.Timeout < 0 || c.Hold < 0 || c.PID < 0 {
		return fmt.Errorf("%w: negative Concurrency, Timeout, Hold or PID", ErrConfig)
	}
	if _, err := Sources(c.FirstSource, c.N); err != nil {
		return err
	}
	return nil
}

// Result is one measurement.
type Result struct {
	Conns      int           `json:"conns"`
	BaselineKB int64         `json:"baseline_kb"`
	LoadedKB   int64         `json:"loaded_kb"`
	PerConnKB  float64       `json:"per_conn_kb"`
	OpenTime   time.Duration `json:"open_ns"`
}

// Sources returns n usable source addresses starting at first, skipping addresses whose last
// octet is 0 or 255.
func Sources(first netip.Addr, n int) ([]netip.Addr, error) {
	if !first.Is4() || first.As4()[0] != 127 {
		return nil, fmt.Errorf("%w: first source %v", ErrSourceRange, first)
	}
	out := make([]netip.Addr, 0, n)
	for a := first; len(out) < n; a = a.Next() {
		b := a.As4()
		if b[0] != 127 {
			return nil, fmt.Errorf("%w: %d addresses from %v", ErrSourceRange, n, first)
		}
		if b[3] == 0 || b[3] == 255 {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// Run performs the measurement: baseline memory, open and exercise N connections, hold, read
// memory, close everything. Connections are closed before Run returns, whatever the outcome.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 128
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	req := cfg.Request
	if len(req) == 0 && !cfg.NoRequest {
		req = defaultRequest
	}
	proc := procfs.Proc()
	if cfg.Proc != nil {
		proc = *cfg.Proc
	}
	srcs, err := Sources(cfg.FirstSource, cfg.N)
	if err != nil {
		return Result{}, err
	}

	var res Result
	if cfg.PID > 0 {
		if res.BaselineKB, err = proc.TreeRSSKB(cfg.PID); err != nil {
			return Result{}, fmt.Errorf("idlemeter: baseline: %w", err)
		}
	}

	conns := make([]net.Conn, cfg.N)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	start := time.Now()
	if err := openAll(ctx, cfg, srcs, req, conns); err != nil {
		return Result{}, err
	}
	res.OpenTime = time.Since(start)
	res.Conns = cfg.N

	select {
	case <-time.After(cfg.Hold):
	case <-ctx.Done():
		return Result{}, fmt.Errorf("idlemeter: hold: %w", ctx.Err())
	}
	if cfg.PID > 0 {
		if res.LoadedKB, err = proc.TreeRSSKB(cfg.PID); err != nil {
			return Result{}, fmt.Errorf("idlemeter: loaded: %w", err)
		}
		res.PerConnKB = float64(res.LoadedKB-res.BaselineKB) / float64(cfg.N)
	}
	// Make sure the server did not drop connections while we held them: a closed connection
	// would have freed its memory and flattered the figure.
	if dead := countClosed(conns); dead > 0 {
		return Result{}, fmt.Errorf("%w: %d of %d closed by the server during the hold", ErrConnsFailed, dead, cfg.N)
	}
	return res, nil
}

func openAll(ctx context.Context, cfg Config, srcs []netip.Addr, req []byte, conns []net.Conn) error {
	jobs := make(chan int)
	var (
		mu       sync.Mutex
		failed   int
		firstErr error
		wg       sync.WaitGroup
	)
	for w := 0; w < cfg.Concurrency && w < cfg.N; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := range jobs {
				c, err := openOne(ctx, cfg, srcs[i], req, buf)
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
feed:
	for i := range cfg.N {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("idlemeter: open: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d, first: %w", ErrConnsFailed, failed, cfg.N, firstErr)
	}
	return nil
}

func openOne(ctx context.Context, cfg Config, src netip.Addr, req, buf []byte) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   cfg.Timeout,
		LocalAddr: &net.TCPAddr{IP: src.AsSlice()},
	}
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial from %v: %w", src, err)
	}
	if len(req) == 0 {
		return c, nil
	}
	if err := c.SetDeadline(time.Now().Add(cfg.Timeout)); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("deadline: %w", err)
	}
	if _, err := c.Write(req); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("write from %v: %w", src, err)
	}
	if err := ReadResponse(c, buf); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("response to %v: %w", src, err)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("deadline: %w", err)
	}
	return c, nil
}

// ReadResponse reads one HTTP/1.x response with a Content-Length body from c using buf as
// scratch (it must hold the whole head) and fails unless the status is 200.
func ReadResponse(c net.Conn, buf []byte) error {
	n := 0
	for {
		if n == len(buf) {
			return fmt.Errorf("%w: head larger than %d bytes", ErrResponse, len(buf))
		}
		m, err := c.Read(buf[n:])
		n += m
		if end := bytes.Index(buf[:n], []byte("\r\n\r\n")); end >= 0 {
			head := buf[:end]
			body := n - end - 4
			want, err := parseHead(head)
			if err != nil {
				return err
			}
			return discard(c, buf, want-body)
		}
		if err != nil {
			return fmt.Errorf("%w: after %d bytes: %w", ErrResponse, n, err)
		}
	}
}

func parseHead(head []byte) (contentLength int, err error) {
	lines := bytes.Split(head, []byte("\r\n"))
	status := lines[0]
	if !bytes.HasPrefix(status, []byte("HTTP/1.")) || len(status) < 12 || string(status[9:12]) != "200" {
		return 0, fmt.Errorf("%w: status line %q", ErrResponse, status)
	}
	for _, l := range lines[1:] {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(k), []byte("Content-Length")) {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: Content-Length %q", ErrResponse, v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: no Content-Length", ErrResponse)
}

func discard(c net.Conn, buf []byte, left int) error {
	if left < 0 {
		return fmt.Errorf("%w: %d bytes past the body", ErrResponse, -left)
	}
	for left > 0 {
		m, err := c.Read(buf[:min(left, len(buf))])
		left -= m
		if err != nil && left > 0 {
			return fmt.Errorf("%w: body short by %d: %w", ErrResponse, left, err)
		}
	}
	return nil
}

// countClosed peeks at every connection without blocking: one the server closed reads EOF
// (or fails), one still open has nothing to read.
func countClosed(conns []net.Conn) int {
	dead := 0
	for _, c := range conns {
		if !alive(c) {
			dead++
		}
	}
	return dead
}

func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var one [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN):
			ok = true // open and quiet
		case rerr == nil && n > 0:
			ok = true // open; unexpected bytes are not our concern here
		}
		return true
	})
	return err == nil && ok
}
