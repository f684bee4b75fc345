// Command idlecost measures what one idle, warmed connection costs a server process: it
// starts itself again as the server (stdnet with an echo handler, or a plain
// goroutine-per-connection echo server for comparison), opens N client connections from
// distinct 127.x.y.z source addresses, does one 64-byte echo on each, waits, and reports the
// server's VmRSS growth divided by N, with its Go heap and stack figures.
//
//	go run ./stdnet/internal/idlecost -n 5000              # stdnet
//	go run ./stdnet/internal/idlecost -n 5000 -server plain
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strait-proxy/strait/reactor"
	"github.com/strait-proxy/strait/stdnet"
)

func main() {
	n := flag.Int("n", 5000, "idle connections to open (client and server each hold n descriptors)")
	server := flag.String("server", "stdnet", "server to measure: stdnet or plain (goroutine per conn, 4 KiB buffer)")
	serve := flag.Bool("serve", false, "internal: run as the server child")
	idle := flag.Duration("idle", 0, "stdnet: SetIdleTimeout on every connection (0: none)")
	settle := flag.Duration("settle", 3*time.Second, "wait after the last echo before reading VmRSS")
	subnet := flag.Int("subnet", 1, "second octet of the client source addresses (change it between runs)")
	flag.Parse()
	var err error
	if *serve {
		err = runServer(*server, *idle)
	} else {
		err = measure(*n, *server, *idle, *settle, *subnet)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "idlecost:", err)
		os.Exit(1)
	}
}

// runServer prints its address, then answers "stats" lines on stdin until stdin closes.
func runServer(kind string, idle time.Duration) error {
	var addr string
	switch kind {
	case "stdnet":
		tr, err := stdnet.New(reactor.Options{})
		if err != nil {
			return err
		}
		defer tr.Close()
		ln, err := tr.Listen("127.0.0.1:0", &echo{idle: idle})
		if err != nil {
			return err
		}
		addr = ln.Addr().String()
	case "plain":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		go plainServe(ln)
		addr = ln.Addr().String()
	default:
		return fmt.Errorf("unknown server %q", kind)
	}
	fmt.Println(addr)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("heap_inuse=%d stack_inuse=%d goroutines=%d\n", ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine())
	}
	return nil
}

type echo struct{ idle time.Duration }

func (e *echo) OnOpen(c reactor.Conn) {
	if e.idle > 0 {
		c.SetIdleTimeout(e.idle)
	}
}

func (e *echo) OnData(c reactor.Conn, in reactor.View) {
	if c.Write(in.Peek(-1)) == nil {
		in.Skip(in.Len())
	}
}

func (e *echo) OnWritable(reactor.Conn)       {}
func (e *echo) OnPeerClose(reactor.Conn) bool { return false }
func (e *echo) OnClose(reactor.Conn, error)   {}

func plainServe(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 4<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

func measure(n int, kind string, idle, settle time.Duration, subnet int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-serve", "-server", kind, "-idle", idle.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	out := bufio.NewScanner(stdout)
	if !out.Scan() {
		return errors.New("the server printed no address")
	}
	addr := out.Text()
	stats := func() (string, int64, error) {
		if _, err := io.WriteString(stdin, "stats\n"); err != nil {
			return "", 0, err
		}
		if !out.Scan() {
			return "", 0, errors.New("the server stopped answering")
		}
		time.Sleep(200 * time.Millisecond)
		rss, err := vmRSS(cmd.Process.Pid)
		return out.Text(), rss, err
	}
	time.Sleep(500 * time.Millisecond)
	base, rss0, err := stats()
	if err != nil {
		return err
	}

	start := time.Now()
	conns := make([]*net.TCPConn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			src := &net.TCPAddr{IP: net.IPv4(127, byte(subnet), byte(2+i/250), byte(2+i%250))}
			d := net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				errs <- fmt.Errorf("conn %d from %v: %w", i, src.IP, err)
				return
			}
			tc := c.(*net.TCPConn)
			conns[i] = tc
			msg := make([]byte, 64)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := tc.Write(msg); err != nil {
				errs <- err
				return
			}
			if _, err := io.ReadFull(tc, msg); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	opened := time.Since(start)
	time.Sleep(settle)
	after, rss1, err := stats()
	if err != nil {
		return err
	}
	for _, c := range conns {
		_ = c.SetLinger(0) // no TIME_WAIT left behind
		c.Close()
	}
	fmt.Printf("server=%s idle_timeout=%v conns=%d (opened and warmed in %v, settled %v)\n",
		kind, idle, n, opened.Round(time.Millisecond), settle)
	fmt.Printf("before: VmRSS=%d KiB %s\n", rss0>>10, base)
	fmt.Printf("after:  VmRSS=%d KiB %s\n", rss1>>10, after)
	fmt.Printf("VmRSS growth per idle warmed connection: %.2f KiB\n", float64(rss1-rss0)/float64(n)/1024)
	hb, sb := field(base, "heap_inuse"), field(base, "stack_inuse")
	ha, sa := field(after, "heap_inuse"), field(after, "stack_inuse")
	fmt.Printf("Go heap in use per connection: %.2f KiB, goroutine stacks per connection: %.2f KiB\n",
		float64(ha-hb)/float64(n)/1024, float64(sa-sb)/float64(n)/1024)
	return nil
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

func field(s, name string) int64 {
	for _, f := range strings.Fields(s) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
