package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkIdleConnHeap measures what an idle HTTP/1.1 keep-alive connection costs Strait:
// for each transport, Strait runs in-process from an HCM bootstrap (1 h idle timeout, as
// Envoy's default), N client connections each make one proxied request and stay open, and
// the live heap (after runtime.GC), goroutine stacks and VmRSS are compared with a baseline
// taken after a warm-up. The client side uses raw socket file descriptors (no Go object
// per connection), so the whole difference is Strait's and its transport's. With
// runtime.MemProfileRate = 1 the heap difference is broken down by allocation site (the
// first frame outside the runtime, and the Strait frame that led there).
//
//	go test -run '^$' -bench BenchmarkIdleConnHeap -benchtime 1x ./cmd/strait/
//	STRAIT_IDLE_CONNS=5000 STRAIT_IDLE_TRANSPORTS=gnet go test -run '^$' -bench BenchmarkIdleConnHeap -benchtime 1x ./cmd/strait/
//
// Reported metrics per idle connection: heap-B/conn (live heap), stack-B/conn (goroutine
// stacks), rss-B/conn (VmRSS growth; GC headroom makes it larger than the live heap).
func BenchmarkIdleConnHeap(b *testing.B) {
	n := 2000
	if v := os.Getenv("STRAIT_IDLE_CONNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 || n > 8000 {
			b.Fatalf("STRAIT_IDLE_CONNS=%q: want 1..8000", v)
		}
	}
	transports := e2eTransports()
	if v := os.Getenv("STRAIT_IDLE_TRANSPORTS"); v != "" {
		transports = strings.Split(v, ",")
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	b.Cleanup(func() { runtime.MemProfileRate = old })
	up := newFixedUpstream(b)
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			s := runStrait(b, tr, bootstrapYAML(
				[]listenerSpec{{"idle", hcmFilter("idle", `name: idle
virtual_hosts:
- name: all
  domains: ["*"]
  routes: [{match: {prefix: /}, route: {cluster: fixed}}]`)}},
				[]clusterSpec{{name: "fixed", hosts: []string{up.addr()}}}, ""))
			addr := s.addr(b, "idle")
			for range b.N {
				r := measureIdle(b, addr, n)
				b.ReportMetric(r.heap, "heap-B/conn")
				b.ReportMetric(r.stack, "stack-B/conn")
				b.ReportMetric(r.rss, "rss-B/conn")
				b.ReportMetric(0, "ns/op")
				// Printed, not logged: the testing package truncates benchmark logs.
				fmt.Printf("%s: %d idle conns: heap %.0f B/conn, stacks %.0f B/conn, RSS %.0f B/conn\n%s",
					tr, n, r.heap, r.stack, r.rss, r.sites)
			}
		})
	}
}

type idleResult struct {
	heap, stack, rss float64
	sites            string
}

// measureIdle opens n idle keep-alive connections to addr after one request each and
// returns what they cost per connection. The connections are closed before it returns.
func measureIdle(b testing.TB, addr string, n int) idleResult {
	b.Helper()
	sa := sockaddr(b, addr)
	// Warm up: upstream connections, pools, lazily built per-executor state.
	warm := openIdle(b, sa, 64)
	defer closeFDs(warm)
	time.Sleep(200 * time.Millisecond)
	heap0, stack0, rss0, prof0 := snapshot()
	fds := openIdle(b, sa, n)
	defer closeFDs(fds)
	time.Sleep(500 * time.Millisecond) // let executors finish what the requests left queued
	heap1, stack1, rss1, prof1 := snapshot()
	per := func(a, z uint64) float64 { return (float64(z) - float64(a)) / float64(n) }
	return idleResult{
		heap:  per(heap0, heap1),
		stack: per(stack0, stack1),
		rss:   per(rss0, rss1),
		sites: siteTable(prof0, prof1, n),
	}
}

// snapshot collects garbage and returns the live heap, stack bytes, VmRSS and the in-use
// bytes of each allocation site.
func snapshot() (heap, stack, rss uint64, sites map[string]int64) {
	// Two cycles: sync.Pool keeps a victim cache for one cycle, and the memory profile
	// reflects the last completed cycle.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse, vmRSS(), memSites()
}

// memSites sums the in-use bytes of the memory profile by allocation site.
func memSites() map[string]int64 {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		n, ok = runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
	}
	out := map[string]int64{}
	for i := range recs {
		if in := recs[i].InUseBytes(); in != 0 {
			out[siteOf(recs[i].Stack())] += in
		}
	}
	return out
}

// siteOf names an allocation: the first frame outside the runtime and the allocation helpers,
// plus the first Strait frame above it when that is a different function.
func siteOf(stk []uintptr) string {
	frames := runtime.CallersFrames(stk)
	site, strait := "", ""
	for {
		f, more := frames.Next()
		fn := f.Function
		helper := strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "sync.") ||
			strings.HasPrefix(fn, "internal/") || strings.Contains(fn, "lang/mcache.") ||
			strings.HasPrefix(fn, "reflect.")
		if site == "" && !helper {
			site = trimPkg(fn)
		}
		if site != "" && strings.HasPrefix(fn, "github.com/strait-proxy/strait/") && !strings.HasSuffix(fn, "_test") {
			strait = trimPkg(fn)
			break
		}
		if !more {
			break
		}
	}
	if site == "" {
		site = "(runtime)"
	}
	if strait != "" && strait != site {
		return site + " <- " + strait
	}
	return site
}

func trimPkg(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// siteTable formats the per-connection growth of each site (sites under 4 B/conn are summed
// as "other").
func siteTable(before, after map[string]int64, n int) string {
	type row struct {
		site string
		per  float64
	}
	var rows []row
	var other, total float64
	for k, v := range after {
		d := float64(v-before[k]) / float64(n)
		total += d
		if d >= 4 || d <= -4 {
			rows = append(rows, row{k, d})
		} else {
			other += d
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			total -= float64(v) / float64(n)
			other -= float64(v) / float64(n)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].per > rows[j].per })
	var sb strings.Builder
	fmt.Fprintf(&sb, "    %8s  %s\n", "B/conn", "allocation site (memory profile, in use)")
	for _, r := range rows {
		fmt.Fprintf(&sb, "    %8.1f  %s\n", r.per, r.site)
	}
	fmt.Fprintf(&sb, "    %8.1f  other\n    %8.1f  total\n", other, total)
	return sb.String()
}

func vmRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func sockaddr(b testing.TB, addr string) *syscall.SockaddrInet4 {
	b.Helper()
	host, port, ok := strings.Cut(addr, ":")
	p, err := strconv.Atoi(port)
	if !ok || err != nil || host != "127.0.0.1" {
		b.Fatalf("unexpected listener address %q", addr)
	}
	return &syscall.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}
}

// openIdle opens n connections to sa as bare file descriptors, makes one request on each
// (waiting for the whole response) and returns them open.
func openIdle(b testing.TB, sa *syscall.SockaddrInet4, n int) []int {
	b.Helper()
	fds := make([]int, 0, n)
	buf := make([]byte, 4096)
	tv := syscall.Timeval{Sec: 10}
	for range n {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			closeFDs(fds)
			b.Fatalf("socket after %d conns: %v", len(fds), err)
		}
		fds = append(fds, fd)
		_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
		_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
		if err := syscall.Connect(fd, sa); err != nil {
			closeFDs(fds)
			b.Fatalf("connect after %d conns: %v", len(fds)-1, err)
		}
		if _, err := syscall.Write(fd, benchRequest); err != nil {
			closeFDs(fds)
			b.Fatalf("write: %v", err)
		}
		var resp []byte
		for !bytes.HasSuffix(resp, fixedBody) {
			k, err := syscall.Read(fd, buf)
			if err != nil || k == 0 {
				closeFDs(fds)
				b.Fatalf("read after %d conns: %v (%q)", len(fds)-1, err, resp)
			}
			resp = append(resp, buf[:k]...)
		}
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 ")) {
			closeFDs(fds)
			b.Fatalf("response: %q", resp)
		}
	}
	return fds
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		// SO_LINGER 0: no TIME_WAIT left behind by thousands of connections.
		_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1})
		_ = syscall.Close(fd)
	}
}
