package tcpproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/tcpproxy"
	"github.com/strait-proxy/strait/reactor"
	gnetreactor "github.com/strait-proxy/strait/reactor/gnet"
	netpollreactor "github.com/strait-proxy/strait/reactor/netpoll"
	"github.com/strait-proxy/strait/stdnet"
)

// --- a minimal cluster manager for the tests ------------------------------------------------

type host struct {
	addr  string
	stats pipeline.HostStats
}

func (h *host) Address() string            { return h.addr }
func (h *host) Stats() *pipeline.HostStats { return &h.stats }

type cluster struct {
	name  string
	hosts []*host
	next  atomic.Uint64
	cb    *pipeline.CircuitBreaker
}

func (c *cluster) Name() string                     { return c.name }
func (c *cluster) ConnectTimeout() time.Duration    { return time.Second }
func (c *cluster) Limits() *pipeline.CircuitBreaker { return c.cb }
func (c *cluster) ChooseHost(lb *pipeline.LBContext) pipeline.Host {
	if len(c.hosts) == 0 {
		return nil
	}
	return c.hosts[int(c.next.Add(1)-1)%len(c.hosts)]
}

type clusters map[string]*cluster

func (m clusters) Cluster(name string) pipeline.Cluster {
	if c, ok := m[name]; ok {
		return c
	}
	return nil
}

func newCluster(name string, addrs ...string) *cluster {
	c := &cluster{name: name, cb: pipeline.NewCircuitBreaker(0, 0, 0, 0)}
	for _, a := range addrs {
		c.hosts = append(c.hosts, &host{addr: a})
	}
	return c
}

// --- upstreams ------------------------------------------------------------------------------

// echoServer echoes every connection; after the client's FIN it writes "bye" and closes.
func echoServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				io.Copy(c, c)
				io.WriteString(c, "bye")
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// --- harness ---------------------------------------------------------------------------------

var transports = []struct {
	name string
	new  reactor.Factory
}{
	{"gnet", gnetreactor.New},
	{"netpoll", netpollreactor.New},
	{"stdnet", stdnet.New},
}

type proxy struct {
	addr  string
	stats *pipeline.Stats
	l     *pipeline.Listener
}

func startProxy(t *testing.T, newT reactor.Factory, cm clusters, cfg tcpproxy.Config) *proxy {
	t.Helper()
	tr, err := newT(reactor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	stats := pipeline.NewStats()
	deps := &pipeline.Deps{Clusters: cm, Transport: tr, Stats: stats}
	l, err := pipeline.NewListener(pipeline.ListenerConfig{
		Name: "t", Address: "127.0.0.1:0",
		FilterChain: []pipeline.NamedFilter{{Name: "tcp_proxy", Config: &cfg}},
	}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.StopAccepting() })
	return &proxy{addr: l.Addr().String(), stats: stats, l: l}
}

func (p *proxy) counter(t *testing.T, name string) int64 {
	v, _ := p.stats.Value(`strait_tcp_proxy_` + name + `{stat_prefix="t"}`)
	return v
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func eachTransport(t *testing.T, fn func(t *testing.T, newT reactor.Factory)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { fn(t, tr.new) })
	}
}

func cfg(cluster string) tcpproxy.Config {
	return tcpproxy.Config{StatPrefix: "t", Cluster: cluster, MaxConnectAttempts: 1, IdleTimeout: time.Minute}
}

// --- tests -----------------------------------------------------------------------------------

// TestHalfCloseBothWays: the client's FIN reaches the upstream, whose reply written after it
// still reaches the client, followed by EOF; counters add up.
func TestHalfCloseBothWays(t *testing.T) {
	eachTransport(t, func(t *testing.T, newT reactor.Factory) {
		up, _ := echoServer(t)
		p := startProxy(t, newT, clusters{"b": newCluster("b", up)}, cfg("b"))
		c := dial(t, p.addr)
		msg := bytes.Repeat([]byte("half-close "), 1000)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read after half-close: %v", err)
		}
		want := append(append([]byte{}, msg...), "bye"...)
		if !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d (echo then bye)", len(got), len(want))
		}
		waitFor(t, "byte counters", func() bool {
			return p.counter(t, "downstream_rx_bytes_total") == int64(len(msg)) &&
				p.counter(t, "downstream_tx_bytes_total") == int64(len(want)) &&
				p.counter(t, "downstream_cx_active") == 0
		})
	})
}

// TestConnectAttemptsMoveToTheNextHost: with the first host down, max_connect_attempts 2
// reaches the second; with 1 the client is closed.
func TestConnectAttemptsMoveToTheNextHost(t *testing.T) {
	eachTransport(t, func(t *testing.T, newT reactor.Factory) {
		up, accepted := echoServer(t)
		down := closedPort(t)
		c2 := cfg("b")
		c2.MaxConnectAttempts = 2
		p := startProxy(t, newT, clusters{"b": newCluster("b", down, up)}, c2)
		c := dial(t, p.addr)
		io.WriteString(c, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("after a failed first attempt: %q %v", buf, err)
		}
		if accepted.Load() != 1 || p.counter(t, "upstream_connect_fail_total") != 1 {
			t.Fatalf("accepted %d, connect failures %d", accepted.Load(), p.counter(t, "upstream_connect_fail_total"))
		}

		p1 := startProxy(t, newT, clusters{"b": newCluster("b", down)}, cfg("b"))
		c = dial(t, p1.addr)
		if _, err := c.Read(buf); err == nil {
			t.Fatal("a connection with no reachable upstream stayed open")
		}
	})
}

// TestWeightedClustersSplitConnections sends connections to clusters by weight.
func TestWeightedClustersSplitConnections(t *testing.T) {
	eachTransport(t, func(t *testing.T, newT reactor.Factory) {
		a, accA := echoServer(t)
		b, accB := echoServer(t)
		c := tcpproxy.Config{StatPrefix: "t", MaxConnectAttempts: 1,
			WeightedClusters: []tcpproxy.WeightedCluster{{Name: "a", Weight: 3}, {Name: "b", Weight: 1}}}
		p := startProxy(t, newT, clusters{"a": newCluster("a", a), "b": newCluster("b", b)}, c)
		const n = 200
		for i := 0; i < n; i++ {
			conn := dial(t, p.addr)
			io.WriteString(conn, "x")
			one := make([]byte, 1)
			if _, err := io.ReadFull(conn, one); err != nil {
				t.Fatal(err)
			}
			conn.Close()
		}
		if got := accA.Load(); got < 120 || got > 180 || got+accB.Load() != n {
			t.Fatalf("3:1 split of %d connections gave %d:%d", n, got, accB.Load())
		}
	})
}

// TestUpstreamResetResetsDownstream: an upstream RST becomes a downstream RST.
func TestUpstreamResetResetsDownstream(t *testing.T) {
	eachTransport(t, func(t *testing.T, newT reactor.Factory) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				buf := make([]byte, 1)
				c.Read(buf)
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}()
		p := startProxy(t, newT, clusters{"b": newCluster("b", ln.Addr().String())}, cfg("b"))
		c := dial(t, p.addr)
		io.WriteString(c, "x")
		_, err = io.ReadAll(c)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("client saw %v, want a connection reset", err)
		}
	})
}

// TestIdleTimeoutClosesBothSides closes an idle proxied pair.
func TestIdleTimeoutClosesBothSides(t *testing.T) {
	eachTransport(t, func(t *testing.T, newT reactor.Factory) {
		up, _ := echoServer(t)
		c1 := cfg("b")
		c1.IdleTimeout = 300 * time.Millisecond
		p := startProxy(t, newT, clusters{"b": newCluster("b", up)}, c1)
		c := dial(t, p.addr)
		io.WriteString(c, "x")
		start := time.Now()
		got, _ := io.ReadAll(c) // the echo, then EOF when the idle timeout closes the pair
		if el := time.Since(start); el < 250*time.Millisecond || el > 5*time.Second {
			t.Fatalf("closed after %v, want about 300ms", el)
		}
		if string(got) != "x" && string(got) != "xbye" {
			t.Fatalf("got %q", got)
		}
		waitFor(t, "idle counter", func() bool { return p.counter(t, "idle_timeout_total") == 1 })
	})
}

// TestCircuitBreakerLimitsUpstreamConnections refuses connections past max_connections.
func TestCircuitBreakerLimitsUpstreamConnections(t *testing.T) {
	eachTransport(t, func(t *testing.T, newT reactor.Factory) {
		up, accepted := echoServer(t)
		cl := newCluster("b", up)
		cl.cb = pipeline.NewCircuitBreaker(2, 0, 0, 0)
		p := startProxy(t, newT, clusters{"b": cl}, cfg("b"))
		var open []*net.TCPConn
		for i := 0; i < 2; i++ {
			c := dial(t, p.addr)
			io.WriteString(c, "x")
			one := make([]byte, 1)
			if _, err := io.ReadFull(c, one); err != nil {
				t.Fatal(err)
			}
			open = append(open, c)
		}
		third := dial(t, p.addr)
		if _, err := third.Read(make([]byte, 1)); err == nil {
			t.Fatal("third connection was forwarded past max_connections 2")
		}
		if accepted.Load() != 2 || p.counter(t, "upstream_cx_overflow_total") != 1 {
			t.Fatalf("accepted %d overflow %d", accepted.Load(), p.counter(t, "upstream_cx_overflow_total"))
		}
		open[0].Close()
		waitFor(t, "slot freed", func() bool { return cl.cb.Connections.Load() == 1 })
		c := dial(t, p.addr)
		io.WriteString(c, "y")
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("after a slot freed: %v", err)
		}
	})
}

// TestSlowClientBoundsProxyMemory: an upstream pushing 64 MiB to a client reading slowly
// arrives complete while the proxy's queued bytes stay near the watermark.
func TestSlowClientBoundsProxyMemory(t *testing.T) {
	const total = 64 << 20
	eachTransport(t, func(t *testing.T, newT reactor.Factory) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
			for sent := 0; sent < total; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		p := startProxy(t, newT, clusters{"b": newCluster("b", ln.Addr().String())}, cfg("b"))
		c := dial(t, p.addr)
		c.SetDeadline(time.Now().Add(60 * time.Second))
		var peak atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() { // sample the heap while the transfer runs
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					if v := liveHeap(); v > peak.Load() {
						peak.Store(v)
					}
				}
			}
		}()
		base := liveHeap()
		buf := make([]byte, 16<<10)
		n := 0
		for n < total {
			m, err := c.Read(buf)
			n += m
			if err != nil {
				break
			}
			if n < 8<<20 {
				time.Sleep(time.Millisecond) // slow at first, so the proxy must push back
			}
		}
		close(stop)
		wg.Wait()
		if n != total {
			t.Fatalf("received %d of %d bytes", n, total)
		}
		grew := peak.Load() - base
		t.Logf("live heap grew by at most %.1f MiB during a slow 64 MiB transfer", float64(grew)/(1<<20))
		if grew > 12<<20 {
			t.Fatalf("live heap grew by %d MiB during a slow 64 MiB transfer", grew>>20)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liveHeap is the heap still reachable after collections: what the proxy holds, not the
// garbage the collector has yet to reclaim (which depends on GC pacing, not on Strait), nor
// idle buffers in sync.Pools (the second collection empties their victim caches).
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
