package grpcload

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestRunAgainstBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := Probe(context.Background(), ln.Addr().String(), 5*time.Second); err != nil {
		t.Fatalf("probe: %v", err)
	}
	r, err := Run(context.Background(), Options{Addr: ln.Addr().String(), Conns: 2, Concurrency: 8,
		Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 10 || r.RPS <= 0 || r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.Errors != 0 {
		t.Fatalf("implausible result %+v", r)
	}
	t.Logf("%+v", r)
}

func TestRunFailsWithoutServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r, err := Run(context.Background(), Options{Addr: addr, Conns: 1, Concurrency: 2,
		Duration: 200 * time.Millisecond, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrCalls) || r.Errors == 0 {
		t.Fatalf("Run against nothing = %+v, %v; want ErrCalls with errors counted", r, err)
	}
}

func TestValidateAndPercentile(t *testing.T) {
	for _, o := range []Options{
		{},
		{Addr: "x:1", Conns: 2, Concurrency: 1, Duration: time.Second, Timeout: time.Second},
		{Addr: "x:1", Conns: 1, Concurrency: 1, Timeout: time.Second},
		{Addr: "x:1", Conns: 1, Concurrency: 1, Duration: time.Second},
	} {
		if err := o.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrConfig", o, err)
		}
	}
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := Percentile(d, 0.5); p != 5 {
		t.Errorf("p50 = %v", p)
	}
	if p := Percentile(d, 0.99); p != 10 {
		t.Errorf("p99 = %v", p)
	}
	if p := Percentile(nil, 0.99); p != 0 {
		t.Errorf("p99 of nothing = %v", p)
	}
}
