package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol/bolt"
	"github.com/strait-proxy/strait/protocol/bolt/bolttest"
)

// Bolt through Strait's RPC proxy, configured from a bootstrap as in examples/bolt-proxy.yaml,
// on every transport, between bolttest's real client and server: the scenarios of
// protocol/bolt/e2e_test.go (which drives the stream manager directly on stdnet).

const (
	boltSlowService  = "com.slow.Service"
	boltRouteTimeout = 300 * time.Millisecond
)

func boltProxyFilter() string {
	return `      - name: strait.filters.network.rpc_proxy
        typed_config:
          "@type": type.googleapis.com/xds.type.v3.TypedStruct
          type_url: type.googleapis.com/strait.filters.network.rpc_proxy.v1.RpcProxy
          value:
            stat_prefix: bolt
            protocol: bolt
            idle_timeout: 60s
            max_streams: 2048
            routes:
            - name: slow
              match: { service: ` + boltSlowService + ` }
              route: { cluster: backend, timeout: "` + boltRouteTimeout.String() + `" }
            - name: echo
              match: { service_prefix: com.echo. }
              route:
                cluster: backend
                timeout: 10s
                retry_policy: { num_retries: 1, retry_on: [connect-failure] }
`
}

// boltBackend is a bolttest server that echoes calls (content, class, a call header) after
// an optional delay, and reports oneways on a channel.
type boltBackend struct {
	srv     *bolttest.Server
	addr    string
	oneways chan *bolttest.Message
}

func newBoltBackend(t *testing.T) *boltBackend {
	t.Helper()
	b := &boltBackend{oneways: make(chan *bolttest.Message, 16)}
	handler := func(req *bolttest.Message) *bolttest.Message {
		if req.Kind == bolt.KindOneway {
			b.oneways <- req
			return nil
		}
		return &bolttest.Message{
			Status:  bolt.StatusSuccess,
			Class:   "java.lang.String",
			Header:  map[string]string{"echo-call": req.Header["call"], "seen-class": req.Class},
			Content: req.Content,
		}
	}
	delay := func(req *bolttest.Message) time.Duration {
		if req.Class == boltSlowService {
			return 3 * boltRouteTimeout
		}
		if at, err := strconv.ParseInt(req.Header["answer-at-ms"], 10, 64); err == nil {
			return time.Until(time.UnixMilli(at))
		}
		ms, _ := strconv.Atoi(req.Header["delay-ms"])
		return time.Duration(ms) * time.Millisecond
	}
	srv, addr, err := bolttest.Listen("127.0.0.1:0", handler, bolttest.ServerOptions{Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	b.srv, b.addr = srv, addr.String()
	return b
}

func boltDial(t *testing.T, addr string) *bolttest.Client {
	t.Helper()
	cl, err := bolttest.Dial(addr, bolttest.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func boltCall(ctx context.Context, cl *bolttest.Client, class, id string, content []byte, kv ...string) (*bolttest.Message, error) {
	h := map[string]string{"call": id}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return cl.Call(ctx, &bolttest.Message{Class: class, Header: h, Content: content})
}

func TestBoltE2EEveryTransport(t *testing.T) {
	backend := newBoltBackend(t)
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"bolt", boltProxyFilter()}},
				[]clusterSpec{{name: "backend", hosts: []string{backend.addr}}},
				"request_dispatch: inline"))
			addr := s.addr(t, "bolt")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			t.Run("multiplexed concurrent calls", func(t *testing.T) {
				const clients, calls = 4, 30
				var wg sync.WaitGroup
				errs := make(chan error, clients*calls)
				for c := range clients {
					cl := boltDial(t, addr)
					for i := range calls {
						wg.Add(1)
						go func() {
							defer wg.Done()
							id := fmt.Sprintf("c%d-%d", c, i)
							body := bytes.Repeat([]byte(id), 1+i*50)
							// Delays make later calls finish first: responses come back out of order.
							resp, err := boltCall(ctx, cl, "com.echo.Service", id, body, "delay-ms", strconv.Itoa((calls-i)*5%60))
							switch {
							case err != nil:
								errs <- fmt.Errorf("%s: %w", id, err)
							case resp.Status != bolt.StatusSuccess || !bytes.Equal(resp.Content, body) ||
								resp.Header["echo-call"] != id || resp.Header["seen-class"] != "com.echo.Service":
								errs <- fmt.Errorf("%s: status %v, %d bytes, header %v", id, resp.Status, len(resp.Content), resp.Header)
							}
						}()
					}
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})

			t.Run("large concurrent calls keep frames whole", func(t *testing.T) {
				const clients, calls = 3, 4
				var wg sync.WaitGroup
				errs := make(chan error, clients*calls)
				// Every call is answered at the same moment: large responses for one
				// downstream connection arrive together and must not interleave.
				at := strconv.FormatInt(time.Now().Add(500*time.Millisecond).UnixMilli(), 10)
				for c := range clients {
					cl := boltDial(t, addr)
					for i := range calls {
						wg.Add(1)
						go func() {
							defer wg.Done()
							id := fmt.Sprintf("big%d-%d", c, i)
							body := bytes.Repeat([]byte(id+"|"), (300<<10)/(len(id)+1)*(1+i%2))
							resp, err := boltCall(ctx, cl, "com.echo.Bulk", id, body, "answer-at-ms", at)
							switch {
							case err != nil:
								errs <- fmt.Errorf("%s: %w", id, err)
							case resp.Status != bolt.StatusSuccess || !bytes.Equal(resp.Content, body) || resp.Header["echo-call"] != id:
								errs <- fmt.Errorf("%s: status %v, %d of %d bytes", id, resp.Status, len(resp.Content), len(body))
							}
						}()
					}
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})

			t.Run("10 MiB each way", func(t *testing.T) {
				cl := boltDial(t, addr)
				body := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
				resp, err := boltCall(ctx, cl, "com.echo.Big", "big", body)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != bolt.StatusSuccess || !bytes.Equal(resp.Content, body) {
					t.Fatalf("status %v, %d bytes back", resp.Status, len(resp.Content))
				}
			})

			t.Run("responses out of order on one connection", func(t *testing.T) {
				cl := boltDial(t, addr)
				done := make(chan string, 2)
				go func() {
					resp, err := boltCall(ctx, cl, "com.echo.Service", "slow", []byte("s"), "delay-ms", "400")
					done <- fmt.Sprint("slow ", err == nil && string(resp.Content) == "s")
				}()
				time.Sleep(50 * time.Millisecond) // the slow call is on the wire first
				go func() {
					resp, err := boltCall(ctx, cl, "com.echo.Service", "fast", []byte("f"))
					done <- fmt.Sprint("fast ", err == nil && string(resp.Content) == "f")
				}()
				if first, second := <-done, <-done; first != "fast true" || second != "slow true" {
					t.Fatalf("completion order %q, %q", first, second)
				}
			})

			t.Run("heartbeats answered by Strait", func(t *testing.T) {
				cl := boltDial(t, addr)
				before := backend.srv.Heartbeats()
				for range 3 {
					if err := cl.Heartbeat(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if n := backend.srv.Heartbeats() - before; n != 0 {
					t.Fatalf("%d heartbeats reached the upstream", n)
				}
			})

			t.Run("oneway", func(t *testing.T) {
				cl := boltDial(t, addr)
				if err := cl.Oneway(&bolttest.Message{Class: "com.echo.Log", Header: map[string]string{"k": "v"}, Content: []byte("fire and forget")}); err != nil {
					t.Fatal(err)
				}
				select {
				case m := <-backend.oneways:
					if string(m.Content) != "fire and forget" || m.Header["k"] != "v" || m.Class != "com.echo.Log" {
						t.Fatalf("upstream got %+v", m)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the oneway never reached the upstream")
				}
				if resp, err := boltCall(ctx, cl, "com.echo.Service", "after-oneway", []byte("x")); err != nil || resp.Status != bolt.StatusSuccess {
					t.Fatalf("call after a oneway: %v %+v", err, resp)
				}
				if n := cl.Unmatched(); n != 0 {
					t.Fatalf("%d unexpected responses (an answer to the oneway?)", n)
				}
			})

			t.Run("route timeout answers TIMEOUT", func(t *testing.T) {
				cl := boltDial(t, addr)
				start := time.Now()
				resp, err := boltCall(ctx, cl, boltSlowService, "late", []byte("zzz"))
				if err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				if resp.Status != bolt.StatusTimeout || len(resp.Content) != 0 {
					t.Fatalf("status %v, %d bytes", resp.Status, len(resp.Content))
				}
				if took < boltRouteTimeout || took > boltRouteTimeout+1500*time.Millisecond {
					t.Fatalf("answered after %v, route timeout %v", took, boltRouteTimeout)
				}
				// The late upstream answer is dropped; the connection goes on.
				time.Sleep(3 * boltRouteTimeout)
				if resp, err := boltCall(ctx, cl, "com.echo.Service", "after-timeout", []byte("y")); err != nil || string(resp.Content) != "y" {
					t.Fatalf("call after a timeout: %v %+v", err, resp)
				}
				if n := cl.Unmatched(); n != 0 {
					t.Fatalf("%d unmatched responses reached the client", n)
				}
				if n := s.counter("upstream_rq_timeout_total", "bolt"); n != 1 {
					t.Errorf("upstream_rq_timeout_total %d, want 1", n)
				}
			})

			t.Run("no route answers NO_PROCESSOR", func(t *testing.T) {
				cl := boltDial(t, addr)
				resp, err := boltCall(ctx, cl, "com.unknown.Service", "nr", []byte("q"))
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != bolt.StatusNoProcessor {
					t.Fatalf("status %v, want NO_PROCESSOR", resp.Status)
				}
				if n := s.counter("no_route_total", "bolt"); n != 1 {
					t.Errorf("no_route_total %d, want 1", n)
				}
				if resp, err := boltCall(ctx, cl, "com.echo.Service", "after-no-route", []byte("z")); err != nil || string(resp.Content) != "z" {
					t.Fatalf("call after no route: %v %+v", err, resp)
				}
			})
		})
	}
}
