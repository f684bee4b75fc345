package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/router"
	"github.com/strait-proxy/strait/pipeline/stream"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/protocol/bolt"
	"github.com/strait-proxy/strait/protocol/bolt/bolttest"
	"github.com/strait-proxy/strait/reactor"
	"github.com/strait-proxy/strait/stdnet"
)

// One upstream host, one cluster: the smallest pipeline.ClusterManager.
type testHost struct {
	addr  string
	stats pipeline.HostStats
}

func (h *testHost) Address() string            { return h.addr }
func (h *testHost) Stats() *pipeline.HostStats { return &h.stats }

type testCluster struct {
	host *testHost
	cb   *pipeline.CircuitBreaker
}

func (c *testCluster) Name() string                                 { return "backend" }
func (c *testCluster) ConnectTimeout() time.Duration                { return time.Second }
func (c *testCluster) ChooseHost(*pipeline.LBContext) pipeline.Host { return c.host }
func (c *testCluster) Limits() *pipeline.CircuitBreaker             { return c.cb }

type testClusters struct{ backend *testCluster }

func (m testClusters) Cluster(name string) pipeline.Cluster {
	if name == "backend" {
		return m.backend
	}
	return nil
}

// proxyEnv is Strait's stream manager with the Bolt codec on the stdnet transport, in front
// of a bolttest server.
type proxyEnv struct {
	addr     string // Strait's listener
	baddr    string // the bolttest server behind it
	backend  *bolttest.Server
	oneways  chan *bolttest.Message
	stats    *pipeline.Stats
	shutdown func()
}

const (
	slowClass    = "com.slow.Service"
	routeTimeout = 300 * time.Millisecond
)

func startProxy(t testing.TB) *proxyEnv {
	t.Helper()
	env := &proxyEnv{oneways: make(chan *bolttest.Message, 16), stats: pipeline.NewStats()}
	handler := func(req *bolttest.Message) *bolttest.Message {
		if req.Kind == bolt.KindOneway {
			env.oneways <- req
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
		if req.Class == slowClass {
			return 3 * routeTimeout
		}
		if at, err := strconv.ParseInt(req.Header["answer-at-ms"], 10, 64); err == nil {
			return time.Until(time.UnixMilli(at))
		}
		ms, _ := strconv.Atoi(req.Header["delay-ms"])
		return time.Duration(ms) * time.Millisecond
	}
	backend, baddr, err := bolttest.Listen("127.0.0.1:0", handler, bolttest.ServerOptions{Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	env.backend = backend
	env.baddr = baddr.String()

	tr, err := stdnet.New(reactor.Options{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	reg := protocol.NewRegistry()
	if err := reg.Register(bolt.NewCodec(bolt.Limits{}, bolt.CodecOptions{})); err != nil {
		t.Fatal(err)
	}
	// Upstream connections carry at most 3 streams each, so concurrent calls of one downstream
	// connection spread over several upstream connections and their responses (and the requests
	// of several downstream connections sharing one upstream connection) race for the wire.
	up := bolt.NewCodec(bolt.Limits{}, bolt.CodecOptions{MaxStreams: 3})
	up.Name = "bolt-upstream"
	if err := reg.Register(up); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := pipeline.NewPool("bolt-e2e", 8, 256, log)
	deps := &pipeline.Deps{
		Logger:    log,
		Clusters:  testClusters{&testCluster{host: &testHost{addr: baddr.String()}, cb: pipeline.NewCircuitBreaker(0, 0, 0, 0)}},
		Transport: tr,
		Go:        pool.Go,
		Stats:     env.stats,
		Codecs:    reg,
	}
	routes := &router.Config{Name: "bolt", VirtualHosts: []router.VirtualHost{{
		Name: "services", Domains: []string{"*"},
		Routes: []router.Route{
			{Name: "slow", Match: router.Match{Path: slowClass}, Action: &router.Action{Cluster: "backend", Timeout: routeTimeout}},
			{Name: "echo", Match: router.Match{Prefix: "com.echo."}, Action: &router.Action{Cluster: "backend", Timeout: 10 * time.Second}},
		},
	}}}
	l, err := pipeline.NewListener(pipeline.ListenerConfig{
		Name: "bolt", Address: "127.0.0.1:0",
		FilterChain: []pipeline.NamedFilter{{Name: "bolt_proxy", Config: &stream.Config{
			StatPrefix: "bolt", Codecs: []string{"bolt"}, UpstreamCodec: "bolt-upstream", Route: routes,
		}}},
	}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	env.addr = l.Addr().String()
	env.shutdown = func() {
		_ = l.StopAccepting()
		_ = tr.Close()
		_ = backend.Close()
	}
	t.Cleanup(env.shutdown)
	return env
}

func dial(t testing.TB, addr string) *bolttest.Client {
	t.Helper()
	cl, err := bolttest.Dial(addr, bolttest.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func call(ctx context.Context, cl *bolttest.Client, class, callID string, content []byte, kv ...string) (*bolttest.Message, error) {
	h := map[string]string{"call": callID}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return cl.Call(ctx, &bolttest.Message{Class: class, Header: h, Content: content})
}

func TestE2EBoltProxy(t *testing.T) {
	env := startProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("concurrent calls on shared connections", func(t *testing.T) {
		const clients, calls = 4, 40
		var wg sync.WaitGroup
		errs := make(chan error, clients*calls)
		for c := range clients {
			cl := dial(t, env.addr)
			for i := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("c%d-%d", c, i)
					body := bytes.Repeat([]byte(id), 1+i*7)
					resp, err := call(ctx, cl, "com.echo.Service", id, body, "delay-ms", strconv.Itoa((i*13)%40))
					switch {
					case err != nil:
						errs <- fmt.Errorf("%s: %w", id, err)
					case resp.Status != bolt.StatusSuccess || !bytes.Equal(resp.Content, body) ||
						resp.Header["echo-call"] != id || resp.Class != "java.lang.String":
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
		// Every upstream answers at the same moment, so responses of one downstream connection
		// arrive from several upstream connections at once and must queue behind each other.
		at := strconv.FormatInt(time.Now().Add(500*time.Millisecond).UnixMilli(), 10)
		for c := range clients {
			cl := dial(t, env.addr)
			for i := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("big%d-%d", c, i)
					body := bytes.Repeat([]byte(id+"|"), (300<<10)/(len(id)+1)*(1+i%2))
					resp, err := call(ctx, cl, "com.echo.Bulk", id, body, "answer-at-ms", at)
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
		if n := env.stats.Counter(`strait_stream_upstream_cx_total{stat_prefix="bolt"}`).Load(); n < 2 {
			t.Errorf("%d upstream connections: the calls did not spread", n)
		}
	})

	t.Run("responses out of order", func(t *testing.T) {
		cl := dial(t, env.addr)
		done := make(chan string, 2)
		go func() {
			_, err := call(ctx, cl, "com.echo.Service", "slow", []byte("s"), "delay-ms", "400")
			done <- fmt.Sprint("slow ", err)
		}()
		time.Sleep(50 * time.Millisecond) // the slow call is on the wire first
		go func() {
			_, err := call(ctx, cl, "com.echo.Service", "fast", []byte("f"))
			done <- fmt.Sprint("fast ", err)
		}()
		if first, second := <-done, <-done; first != "fast <nil>" || second != "slow <nil>" {
			t.Fatalf("completion order %q, %q", first, second)
		}
	})

	t.Run("heartbeats answered by the proxy", func(t *testing.T) {
		cl := dial(t, env.addr)
		for range 3 {
			if err := cl.Heartbeat(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := env.backend.Heartbeats(); n != 0 {
			t.Fatalf("%d heartbeats reached the upstream", n)
		}
	})

	t.Run("oneway", func(t *testing.T) {
		cl := dial(t, env.addr)
		if err := cl.Oneway(&bolttest.Message{Class: "com.echo.Log", Header: map[string]string{"k": "v"}, Content: []byte("fire and forget")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-env.oneways:
			if string(m.Content) != "fire and forget" || m.Header["k"] != "v" || m.Class != "com.echo.Log" {
				t.Fatalf("upstream got %+v", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("oneway never reached the upstream")
		}
		// The connection still serves calls, and nothing was sent back for the oneway.
		if resp, err := call(ctx, cl, "com.echo.Service", "after-oneway", []byte("x")); err != nil || resp.Status != bolt.StatusSuccess {
			t.Fatalf("call after oneway: %v %+v", err, resp)
		}
		if n := cl.Unmatched(); n != 0 {
			t.Fatalf("%d unexpected responses", n)
		}
	})

	t.Run("route timeout answers TIMEOUT", func(t *testing.T) {
		cl := dial(t, env.addr)
		start := time.Now()
		resp, err := call(ctx, cl, slowClass, "late", []byte("zzz"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != bolt.StatusTimeout || len(resp.Content) != 0 {
			t.Fatalf("status %v, %d bytes", resp.Status, len(resp.Content))
		}
		if d := time.Since(start); d < routeTimeout || d > 3*routeTimeout {
			t.Fatalf("answered after %v, route timeout %v", d, routeTimeout)
		}
		// The late upstream answer is dropped by the proxy; the connection goes on.
		time.Sleep(3 * routeTimeout)
		if resp, err := call(ctx, cl, "com.echo.Service", "after-timeout", []byte("y")); err != nil || string(resp.Content) != "y" {
			t.Fatalf("call after timeout: %v %+v", err, resp)
		}
		if n := cl.Unmatched(); n != 0 {
			t.Fatalf("%d unmatched responses reached the client", n)
		}
	})

	t.Run("no route answers NO_PROCESSOR", func(t *testing.T) {
		cl := dial(t, env.addr)
		resp, err := call(ctx, cl, "com.unknown.Service", "nr", []byte("q"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != bolt.StatusNoProcessor {
			t.Fatalf("status %v", resp.Status)
		}
	})

	// Bigger than the transport's 4 MiB read-buffer cap: it only passes if the codec streams
	// content instead of waiting for whole frames.
	t.Run("10 MiB each way", func(t *testing.T) {
		cl := dial(t, env.addr)
		body := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
		resp, err := call(ctx, cl, "com.echo.Big", "big", body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != bolt.StatusSuccess || !bytes.Equal(resp.Content, body) {
			t.Fatalf("status %v, %d bytes back", resp.Status, len(resp.Content))
		}
	})

	t.Run("hostile bytes close only that connection", func(t *testing.T) {
		cl := dial(t, env.addr)
		// A oneway with a header map announcing 0x8000 bytes: fatal for Bolt framing.
		raw := bolt.AppendHeartbeat(nil, 1)
		raw[1], raw[3] = bolt.TypeOneway, 1
		raw[16] = 0x80
		if err := rawWrite(env.addr, raw); err != nil {
			t.Fatal(err)
		}
		if resp, err := call(ctx, cl, "com.echo.Service", "still-up", []byte("ok")); err != nil || string(resp.Content) != "ok" {
			t.Fatalf("healthy connection after a hostile one: %v", err)
		}
	})
	if v := env.stats.Counter(`strait_stream_no_route_total{stat_prefix="bolt"}`).Load(); v != 1 {
		t.Errorf("no_route counter %d", v)
	}
	if v := env.stats.Counter(`strait_stream_upstream_rq_timeout_total{stat_prefix="bolt"}`).Load(); v != 1 {
		t.Errorf("timeout counter %d", v)
	}
}

// rawWrite sends raw bytes on a fresh connection and waits until the proxy closed it.
func rawWrite(addr string, raw []byte) error {
	nc, err := dialTCP(addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := nc.Write(raw); err != nil {
		return err
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		if _, err := nc.Read(buf); err != nil {
			if errors.Is(err, io.EOF) || isReset(err) {
				return nil
			}
			return fmt.Errorf("proxy kept the hostile connection open: %w", err)
		}
	}
}

func dialTCP(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// BenchmarkE2ECall is a 1 KiB call from bolttest's client, directly to the bolttest server and
// through Strait (stream manager, Bolt codec, stdnet), with 8 calls in flight on one
// connection. Allocations include bolttest's own (about 35 per call, not a hot path).
func BenchmarkE2ECall(b *testing.B) {
	env := startProxy(b)
	body := bytes.Repeat([]byte("x"), 1024)
	for _, target := range []struct{ name, addr string }{{"direct", env.baddr}, {"via_strait", env.addr}} {
		b.Run(target.name, func(b *testing.B) {
			cl := dial(b, target.addr)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(4) // 2 CPUs: 8 goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := call(ctx, cl, "com.echo.Bench", "b", body)
					if err != nil || resp.Status != bolt.StatusSuccess || len(resp.Content) != len(body) {
						b.Errorf("call: %v", err)
						return
					}
				}
			})
		})
	}
}
