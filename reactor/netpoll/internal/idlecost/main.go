// Command idlecost measures what an idle connection costs the netpoll transport: it starts
// itself again as a server process (the netpoll transport with an echo handler), opens N
// connections to it from distinct 127.x.y.z source addresses, optionally does one 64-byte echo
// on each ("warm"), lets everything settle and reports the server's VmRSS growth per
// connection, before and after asking the server to return free memory to the OS.
//
//	go run ./reactor/netpoll/internal/idlecost -n 10000            # default options
//	go run ./reactor/netpoll/internal/idlecost -n 10000 -buf 1024  # 1 KiB read buffers
//
// It is a measurement tool for reactor/netpoll/README.md, not part of the proxy.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strait-proxy/strait/reactor"
	"github.com/strait-proxy/strait/reactor/netpoll"
)

func main() {
	serve := flag.Bool("serve", false, "run as the measured server (internal)")
	n := flag.Int("n", 10000, "connections")
	buf := flag.Int("buf", 0, "Options.ReadBufferSize (0: the default)")
	warm := flag.Bool("warm", true, "one 64-byte echo per connection before idling")
	run := flag.Int("run", int(time.Now().Unix()%200)+20, "second octet of the source addresses")
	flag.Parse()
	if *serve {
		server(*buf)
		return
	}
	if err := measure(*n, *buf, *warm, *run); err != nil {
		log.Fatal(err)
	}
}

// server runs the transport and prints its address; SIGUSR1 returns free memory to the OS.
func server(buf int) {
	tr, err := netpoll.New(reactor.Options{ReadBufferSize: buf})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tr.Listen("127.0.0.1:0", echo{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM)
	for s := range sig {
		if s == syscall.SIGTERM {
			_ = tr.Close()
			return
		}
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Println(ms.HeapInuse, runtime.NumGoroutine())
	}
}

type echo struct{}

func (echo) OnOpen(reactor.Conn) {}
func (echo) OnData(c reactor.Conn, in reactor.View) {
	_ = c.Write(in.Peek(-1))
	in.Skip(in.Len())
}
func (echo) OnWritable(reactor.Conn)       {}
func (echo) OnPeerClose(reactor.Conn) bool { return false }
func (echo) OnClose(reactor.Conn, error)   {}

func measure(n, buf int, warm bool, run int) error {
	cmd := exec.Command(os.Args[0], "-serve", "-buf", strconv.Itoa(buf))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	out := bufio.NewScanner(stdout)
	if !out.Scan() {
		return fmt.Errorf("server printed no address")
	}
	addr := out.Text()
	pid := cmd.Process.Pid
	// free makes the server collect garbage and return free memory; it reports the server's
	// in-use heap and goroutine count.
	free := func() (heap int64, goroutines int, err error) {
		if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			return 0, 0, err
		}
		if !out.Scan() {
			return 0, 0, fmt.Errorf("server did not answer SIGUSR1")
		}
		_, err = fmt.Sscan(out.Text(), &heap, &goroutines)
		return heap, goroutines, err
	}
	time.Sleep(time.Second)
	heap0, _, err := free()
	if err != nil {
		return err
	}
	base := rss(pid)
	baseFree := base // the baseline is taken after a FreeOSMemory already
	fds0 := fds(pid)

	conns := make([]*net.TCPConn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	msg := make([]byte, 64)
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			src := net.IPv4(127, byte(run), byte(i/250), byte(i%250+2))
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			tc := c.(*net.TCPConn)
			conns[i] = tc
			if warm {
				got := make([]byte, 64)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := tc.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(tc, got); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return fmt.Errorf("client: %w", err)
	}
	for fds(pid) < fds0+n {
		time.Sleep(10 * time.Millisecond)
	}
	opened := time.Since(start)
	time.Sleep(3 * time.Second)
	after := rss(pid)
	heap1, goroutines, err := free()
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	afterFree := rss(pid)
	for _, c := range conns {
		_ = c.SetLinger(0)
		_ = c.Close()
	}
	state := "never used"
	if warm {
		state = "warm (one 64 B echo)"
	}
	size := "default"
	if buf > 0 {
		size = fmt.Sprintf("%d B", buf)
	}
	fmt.Printf("netpoll transport, ReadBufferSize %s, %d conns %s, opened in %v\n", size, n, state, opened.Round(time.Millisecond))
	fmt.Printf("  VmRSS: %.1f MiB idle -> %.1f MiB with conns: %.2f KiB/conn\n",
		mib(base), mib(after), float64(after-base)/float64(n)/1024)
	fmt.Printf("  after GC + FreeOSMemory: %.1f MiB -> %.1f MiB: %.2f KiB/conn\n",
		mib(baseFree), mib(afterFree), float64(afterFree-baseFree)/float64(n)/1024)
	fmt.Printf("  Go heap in use: %.1f MiB -> %.1f MiB: %.2f KiB/conn; %d goroutines\n",
		mib(heap0), mib(heap1), float64(heap1-heap0)/float64(n)/1024, goroutines)
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// rss returns the VmRSS of pid in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	log.Fatal("no VmRSS")
	return 0
}

func fds(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		log.Fatal(err)
	}
	return len(ents)
}
