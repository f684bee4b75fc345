// Package grpcload is the benchmark's gRPC peer pair: a grpc-go backend answering
// grpc.testing.TestService/UnaryCall with a 12-byte payload ("hello world\n", the body the
// HTTP backends return), and a load generator that keeps a fixed number of unary calls in
// flight over a fixed number of HTTP/2 connections for a duration and reports throughput
// and latency percentiles.
//
// Who may call it: benchmarks/cmd/grpcload and the benchmark harness (its readiness probe).
// Everything dials and listens on loopback addresses the caller gives.
package grpcload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// Sentinel errors.
var (
	// ErrConfig reports invalid Options.
	ErrConfig = errors.New("grpcload: invalid options")
	// ErrResponse reports a call that succeeded with an unexpected payload.
	ErrResponse = errors.New("grpcload: unexpected response")
	// ErrCalls reports a run in which calls failed.
	ErrCalls = errors.New("grpcload: calls failed")
)

// Body is the payload every response carries.
var Body = []byte("hello world\n")

// backend implements TestService's UnaryCall.
type backend struct {
	testpb.UnimplementedTestServiceServer
}

func (backend) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: Body}}, nil
}

// NewServer returns a grpc-go server with the backend registered; the caller serves it.
func NewServer() *grpc.Server {
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, backend{})
	return s
}

// Options configure a load run.
type Options struct {
	// Addr is the target host:port (a proxy or the backend).
	Addr string
	// Conns is the number of HTTP/2 connections (grpc.ClientConns).
	Conns int
	// Concurrency is the number of calls kept in flight, spread over the connections.
	Concurrency int
	// Duration is the measured time; Warmup runs before it, unrecorded.
	Duration, Warmup time.Duration
	// Timeout bounds each call.
	Timeout time.Duration
}

// Validate reports options that cannot run.
func (o Options) Validate() error {
	switch {
	case o.Addr == "":
		return fmt.Errorf("%w: no address", ErrConfig)
	case o.Conns < 1 || o.Concurrency < o.Conns:
		return fmt.Errorf("%w: %d connections, %d calls in flight (want at least one call per connection)", ErrConfig, o.Conns, o.Concurrency)
	case o.Duration <= 0 || o.Warmup < 0 || o.Timeout <= 0:
		return fmt.Errorf("%w: duration %v, warm-up %v, call timeout %v", ErrConfig, o.Duration, o.Warmup, o.Timeout)
	}
	return nil
}

// Result is what a run measured. Latencies are of the calls completed in the measured
// window.
type Result struct {
	RPS        float64 `json:"rps"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
}

// Dial opens one plaintext HTTP/2 (h2c) grpc-go connection to addr.
func Dial(addr string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("grpcload: dial %s: %w", addr, err)
	}
	return cc, nil
}

// Call makes one unary call and checks its payload.
func Call(ctx context.Context, c testpb.TestServiceClient, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
	if err != nil {
		return err
	}
	if string(resp.GetPayload().GetBody()) != string(Body) {
		return fmt.Errorf("%w: payload %q", ErrResponse, resp.GetPayload().GetBody())
	}
	return nil
}

// Probe makes one call to addr: nil when a correct answer came back within timeout.
func Probe(ctx context.Context, addr string, timeout time.Duration) error {
	cc, err := Dial(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	return Call(ctx, testpb.NewTestServiceClient(cc), timeout)
}

// Run keeps o.Concurrency calls in flight for o.Warmup plus o.Duration and reports the
// calls that completed in the measured window. Failed calls are counted; a run with any is
// returned with an error wrapping ErrCalls along with its figures.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	clients := make([]testpb.TestServiceClient, o.Conns)
	for i := range clients {
		cc, err := Dial(o.Addr)
		if err != nil {
			return Result{}, err
		}
		defer cc.Close()
		cc.Connect()
		clients[i] = testpb.NewTestServiceClient(cc)
	}
	start := time.Now()
	measureFrom := start.Add(o.Warmup)
	end := measureFrom.Add(o.Duration)
	type worker struct {
		lat      []time.Duration
		errs     int64
		firstErr error
	}
	workers := make([]worker, o.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(w *worker, c testpb.TestServiceClient) {
			defer wg.Done()
			w.lat = make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := Call(ctx, c, o.Timeout)
				t1 := time.Now()
				if t0.Before(measureFrom) || t1.After(end) {
					continue // warm-up, or finished after the window
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					w.errs++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.lat = append(w.lat, t1.Sub(t0))
			}
		}(&workers[i], clients[i%o.Conns])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	var all []time.Duration
	var r Result
	for i := range workers {
		all = append(all, workers[i].lat...)
		r.Errors += workers[i].errs
		if r.FirstError == "" && workers[i].firstErr != nil {
			r.FirstError = workers[i].firstErr.Error()
		}
	}
	slices.Sort(all)
	r.Requests = int64(len(all))
	r.Seconds = o.Duration.Seconds()
	r.RPS = float64(r.Requests) / r.Seconds
	r.P50Ms = ms(Percentile(all, 0.50))
	r.P99Ms = ms(Percentile(all, 0.99))
	if r.Errors > 0 {
		return r, fmt.Errorf("%w: %d of %d calls (first: %s)", ErrCalls, r.Errors, r.Errors+r.Requests, r.FirstError)
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("%w: no call completed in %v", ErrCalls, o.Duration)
	}
	return r, nil
}

// Percentile returns the p-quantile (0..1) of sorted latencies, 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Serve serves the backend on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener) error {
	s := NewServer()
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	if err := s.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpcload: serve: %w", err)
	}
	return nil
}
