// Command idleconns measures the resident memory a server spends per idle connection.
//
// It reads the VmRSS of a process tree (-pid), opens -n connections to -addr, each bound to its
// own source address in 127.0.0.0/8 starting at -src, sends one HTTP request on each and reads
// the response, holds them for -hold, reads VmRSS again and prints the growth per connection.
// With -json it prints one JSON object (idlemeter.Result) on stdout for the harness.
//
//	idleconns -addr 127.0.0.1:8080 -n 8000 -pid $(pidof haproxy) -hold 3s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/strait-proxy/strait/benchmarks/idlemeter"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		addr      = flag.String("addr", "", "server host:port (required)")
		n         = flag.Int("n", 1000, "number of connections")
		src       = flag.String("src", "127.1.0.1", "first source address (127.0.0.0/8)")
		pid       = flag.Int("pid", 0, "root PID of the process tree to measure (0: do not measure)")
		hold      = flag.Duration("hold", 3*time.Second, "wait after opening before reading memory")
		noRequest = flag.Bool("no-request", false, "open connections without sending a request")
		conc      = flag.Int("concurrency", 128, "connections opened at once")
		timeout   = flag.Duration("timeout", 10*time.Second, "connect and response timeout")
		asJSON    = flag.Bool("json", false, "print the result as one JSON object")
	)
	flag.Parse()
	first, err := netip.ParseAddr(*src)
	if err != nil {
		return fmt.Errorf("-src: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := idlemeter.Run(ctx, idlemeter.Config{
		Addr: *addr, N: *n, FirstSource: first, NoRequest: *noRequest,
		Concurrency: *conc, Timeout: *timeout, Hold: *hold, PID: *pid,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("%d connections opened in %v\n", res.Conns, res.OpenTime.Round(time.Millisecond))
	if *pid > 0 {
		fmt.Printf("VmRSS %d KiB -> %d KiB: %.2f KiB per connection\n", res.BaselineKB, res.LoadedKB, res.PerConnKB)
	}
	return nil
}
