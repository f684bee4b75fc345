// Command grpcload is the benchmark's gRPC peer: with -serve it runs the grpc-go backend
// (grpc.testing.TestService/UnaryCall answering "hello world\n"); otherwise it is the load
// generator, keeping -concurrency unary calls in flight over -conns HTTP/2 connections to
// -addr for -duration (after -warmup) and printing throughput and latency percentiles (one
// JSON object with -json, for the harness).
//
//	grpcload -serve 127.0.0.1:50051
//	grpcload -addr 127.0.0.1:50051 -conns 8 -concurrency 64 -duration 5s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/strait-proxy/strait/benchmarks/grpcload"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "grpcload:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		serve       = flag.String("serve", "", "run the backend on this host:port instead of generating load")
		addr        = flag.String("addr", "", "target host:port (load mode)")
		conns       = flag.Int("conns", 8, "HTTP/2 connections")
		concurrency = flag.Int("concurrency", 64, "calls in flight (spread over the connections)")
		duration    = flag.Duration("duration", 5*time.Second, "measured duration")
		warmup      = flag.Duration("warmup", 0, "unrecorded load before the measurement")
		timeout     = flag.Duration("timeout", 10*time.Second, "per-call timeout")
		asJSON      = flag.Bool("json", false, "print the result as one JSON object")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *serve != "" {
		ln, err := net.Listen("tcp", *serve)
		if err != nil {
			return err
		}
		return grpcload.Serve(ctx, ln)
	}
	res, err := grpcload.Run(ctx, grpcload.Options{
		Addr: *addr, Conns: *conns, Concurrency: *concurrency,
		Duration: *duration, Warmup: *warmup, Timeout: *timeout,
	})
	if *asJSON && res.Seconds > 0 {
		if jerr := json.NewEncoder(os.Stdout).Encode(res); jerr != nil {
			return jerr
		}
	} else if res.Seconds > 0 {
		fmt.Printf("%.0f calls/s, p50 %.3f ms, p99 %.3f ms, %d calls, %d errors\n", res.RPS, res.P50Ms, res.P99Ms, res.Requests, res.Errors)
	}
	return err
}
