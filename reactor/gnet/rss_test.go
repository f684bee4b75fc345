package gnet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gnetv2 "github.com/panjf2000/gnet/v2"

	"github.com/strait-proxy/strait/reactor"
)

// rssServerEnv makes the test binary act as the measured server process (see TestMain).
const rssServerEnv = "STRAIT_GNET_RSS_SERVER"

func TestMain(m *testing.M) {
	switch os.Getenv(rssServerEnv) {
	case "1":
		os.Exit(rssServer(os.Stdin, os.Stdout))
	case "raw":
		os.Exit(rawGnetServer(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// rssServer serves an echo on a gnet transport and answers commands on in: "stats" prints
// "<open conns> <VmRSS KiB> <HeapInuse bytes> <goroutines>", "quit" exits.
func rssServer(in io.Reader, out io.Writer) int {
	tr, err := New(reactor.Options{})
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	defer tr.Close()
	var open atomic.Int64
	h := &hfuncs{
		open: func(c reactor.Conn) { open.Add(1) },
		data: func(c reactor.Conn, in reactor.View) {
			_ = c.Write(in.Peek(-1))
			in.Skip(in.Len())
		},
		close: func(c reactor.Conn, err error) { open.Add(-1) },
	}
	ln, err := tr.Listen("127.0.0.1:0", h)
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	fmt.Fprintln(out, ln.Addr())
	return serveStats(in, out, &open)
}

// rawGnetServer is rssServer on bare gnet (same options, no reactor layer): the baseline
// that shows what this backend adds per connection.
func rawGnetServer(in io.Reader, out io.Writer) int {
	h := &rawEcho{ready: make(chan gnetv2.Engine, 1)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	addr := l.Addr().String()
	l.Close()
	go func() {
		_ = gnetv2.Run(h, "tcp://"+addr, gnetv2.WithReadBufferCap(reactor.DefaultReadBufferSize), gnetv2.WithLogger(quietLogger{}))
	}()
	eng := <-h.ready
	defer eng.Stop(context.Background())
	fmt.Fprintln(out, addr)
	return serveStats(in, out, &h.open)
}

type rawEcho struct {
	gnetv2.BuiltinEventEngine
	ready chan gnetv2.Engine
	open  atomic.Int64
}

func (r *rawEcho) OnBoot(e gnetv2.Engine) gnetv2.Action { r.ready <- e; return gnetv2.None }
func (r *rawEcho) OnOpen(gnetv2.Conn) ([]byte, gnetv2.Action) {
	r.open.Add(1)
	return nil, gnetv2.None
}
func (r *rawEcho) OnClose(gnetv2.Conn, error) gnetv2.Action { r.open.Add(-1); return gnetv2.None }
func (r *rawEcho) OnTraffic(c gnetv2.Conn) gnetv2.Action {
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	return gnetv2.None
}

func serveStats(in io.Reader, out io.Writer, open *atomic.Int64) int {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "stats":
			runtime.GC()
			debug.FreeOSMemory()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintln(out, open.Load(), vmRSS(), ms.HeapInuse, runtime.NumGoroutine())
		case "quit":
			return 0
		}
	}
	return 0
}

// vmRSS is this process's resident set in KiB.
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return -1
}

type serverStats struct {
	open, rssKiB, heap, goroutines int64
}

// TestIdleConnRSS measures what one idle, warmed connection costs the server process: the
// server runs in a child process, the client opens n connections from distinct 127.x source
// addresses, does one 64-byte echo on each, and the growth of the child's VmRSS is divided by
// n. Run it alone for the figure in the README:
//
//	go test -count=1 -run TestIdleConnRSS -v ./reactor/gnet/
func TestIdleConnRSS(t *testing.T) {
	n := 5000
	limit := 1.0 // KiB per connection
	if raceEnabled {
		n, limit = 1000, 16 // the race detector's shadow memory dwarfs the real cost
	}
	ours := measureIdle(t, "1", n)
	raw := measureIdle(t, "raw", n)
	t.Logf("per idle warmed connection: this backend %.2f KiB RSS (%.2f KiB heap), bare gnet %.2f KiB RSS (%.2f KiB heap)",
		ours.rss, ours.heap, raw.rss, raw.heap)
	if ours.rss > limit {
		t.Fatalf("an idle connection costs %.2f KiB of RSS, more than %.1f KiB", ours.rss, limit)
	}
	if ours.goroutines > 10 {
		t.Fatalf("%d idle connections added %d goroutines", n, ours.goroutines)
	}
}

type idleCost struct {
	rss, heap  float64 // KiB per connection
	goroutines int64   // added by the n connections
}

// measureIdle starts a server process in mode ("1": this backend, "raw": bare gnet), opens n
// idle warmed connections to it and returns the growth per connection.
func measureIdle(t *testing.T, mode string, n int) idleCost {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), rssServerEnv+"="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		fmt.Fprintln(stdin, "quit")
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	lines := bufio.NewScanner(stdout)
	readLine := func() string {
		if !lines.Scan() {
			t.Fatalf("server process: %v", lines.Err())
		}
		return lines.Text()
	}
	addr := readLine()
	if strings.HasPrefix(addr, "error") {
		t.Fatal(addr)
	}
	stats := func() serverStats {
		fmt.Fprintln(stdin, "stats")
		var s serverStats
		if _, err := fmt.Sscan(readLine(), &s.open, &s.rssKiB, &s.heap, &s.goroutines); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Warm up the loop (its first connections allocate per-loop state), then the baseline.
	warm := openIdle(t, addr, 50, 250)
	closeAll(warm)
	waitOpen(t, stats, 0)
	base := stats()

	// A fresh second octet per run: no (source, port) pair is reused from an earlier run.
	conns := openIdle(t, addr, n, 1+rand.IntN(250))
	defer closeAll(conns)
	waitOpen(t, stats, int64(n))
	time.Sleep(time.Second)
	got := stats()

	c := idleCost{
		rss:        float64(got.rssKiB-base.rssKiB) / float64(n),
		heap:       float64(got.heap-base.heap) / float64(n) / 1024,
		goroutines: got.goroutines - base.goroutines,
	}
	t.Logf("server %q, %d idle warmed conns: VmRSS %d -> %d KiB = %.2f KiB/conn; heap in use %.2f KiB/conn; "+
		"goroutines %d -> %d (race detector: %v)",
		mode, n, base.rssKiB, got.rssKiB, c.rss, c.heap, base.goroutines, got.goroutines, raceEnabled)
	return c
}

// openIdle opens n connections from source addresses 127.octet.x.y, one 64-byte echo each.
func openIdle(t *testing.T, addr string, n, octet int) []*net.TCPConn {
	t.Helper()
	conns := make([]*net.TCPConn, n)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	next := atomic.Int64{}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, got := pattern(1, 0, 64), make([]byte, 64)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				src := net.IPv4(127, byte(octet), byte(i/250), byte(2+i%250))
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				tc := c.(*net.TCPConn)
				_ = tc.SetLinger(0) // no TIME_WAIT left behind
				_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := tc.Write(msg); err == nil {
					_, err = io.ReadFull(tc, got)
				}
				if err != nil {
					errs <- err
					return
				}
				conns[i] = tc
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		closeAll(conns)
		t.Fatalf("opening %d connections: %v", n, err)
	}
	return conns
}

func closeAll(conns []*net.TCPConn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

func waitOpen(t *testing.T, stats func() serverStats, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s := stats(); s.open == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("server has %d open connections, want %d", s.open, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
