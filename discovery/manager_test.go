package discovery

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/pipeline"
)

// fakeResolver answers from a table that tests change while the cluster runs.
type fakeResolver struct {
	mu       sync.Mutex
	answers  map[string][]netip.Addr
	fail     map[string]bool
	networks []string
	calls    atomic.Int64
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.networks = append(r.networks, network)
	if r.fail[host] {
		return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
	}
	a, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(a), nil
}

func (r *fakeResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	r.answers[host] = out
}

func (r *fakeResolver) setFail(host string, fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[host] = fail
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{answers: map[string][]netip.Addr{}, fail: map[string]bool{}}
}

func addrs(c *Cluster) []string {
	var out []string
	for _, h := range c.Hosts() {
		out = append(out, h.Address())
	}
	return out
}

var quiet = slog.New(slog.DiscardHandler)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStaticClusterFromBootstrap(t *testing.T) {
	s, err := parseFile(t, "valid-tcp-proxy.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	stats := pipeline.NewStats()
	m, err := NewClusterManager(s.Clusters, ClusterManagerOptions{Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.Cluster("nope") != nil {
		t.Fatal("an unknown cluster must be a nil interface, not a typed nil")
	}
	c := m.Cluster("backend")
	if c == nil || c.Name() != "backend" || c.ConnectTimeout() != time.Second {
		t.Fatalf("cluster %v", c)
	}
	lim := c.Limits()
	if lim.MaxConnections != 10000 || lim.MaxPendingRequests != 1024 || lim.MaxRetries != 3 {
		t.Fatalf("limits %+v", lim)
	}
	// Round robin with weights 1 and 2: exactly 1:2 over whole periods.
	counts := map[string]int{}
	for range 3000 {
		counts[c.ChooseHost(nil).Address()]++
	}
	if counts["127.0.0.1:8080"] != 1000 || counts["127.0.0.1:8081"] != 2000 {
		t.Fatalf("picks %v, want 1000 and 2000", counts)
	}
	if v, _ := stats.Value(`strait_cluster_hosts{cluster="backend"}`); v != 2 {
		t.Fatalf("hosts gauge %d", v)
	}
}

func TestEveryPolicyServesTraffic(t *testing.T) {
	s, err := parseFile(t, "valid-clusters.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	res := newFakeResolver()
	res.set("backend.example.internal", "192.0.2.10", "192.0.2.11")
	m, err := NewClusterManager(s.Clusters, ClusterManagerOptions{Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	lbctx := &pipeline.LBContext{DownstreamAddr: &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 5555}}
	for _, c := range m.Clusters() {
		h := c.ChooseHost(lbctx)
		if h == nil {
			t.Fatalf("cluster %s (%v) chose no host", c.Name(), c.Config().LBPolicy)
		}
		if c.Name() == "ring" && h.Address() != "[2001:db8::1]:80" {
			t.Fatalf("ring host %s", h.Address())
		}
	}
	if got := m.Get("random").Limits().MaxRetries; got != 0 {
		t.Fatalf("explicit max_retries 0 became %d", got)
	}
	if got := addrs(m.Get("dns")); !slices.Equal(got, []string{"192.0.2.10:80", "192.0.2.11:80"}) {
		t.Fatalf("dns hosts %v", got)
	}
}

func TestStrictDNSRefresh(t *testing.T) {
	res := newFakeResolver()
	res.set("api.internal", "10.0.0.1", "10.0.0.2")
	res.set("v6.internal", "2001:db8::5", "10.9.9.9")
	cfg := []ClusterConfig{{
		Name: "api", Type: ClusterStrictDNS, DNSRefreshRate: 20 * time.Millisecond,
		Endpoints: []EndpointConfig{{"api.internal", 8080, 1}, {"10.0.0.100", 9090, 3}},
	}, {
		Name: "v6", Type: ClusterStrictDNS, Endpoints: []EndpointConfig{{"v6.internal", 80, 1}},
	}, {
		Name: "v4", Type: ClusterStrictDNS, DNSLookupFamily: DNSV4Only, Endpoints: []EndpointConfig{{"v6.internal", 80, 1}},
	}}
	stats := pipeline.NewStats()
	m, err := NewClusterManager(cfg, ClusterManagerOptions{Resolver: res, Stats: stats, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	api := m.Get("api")
	if got := addrs(api); !slices.Equal(got, []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.100:9090"}) {
		t.Fatalf("hosts %v", got)
	}
	if got := addrs(m.Get("v6")); !slices.Equal(got, []string{"[2001:db8::5]:80"}) {
		t.Fatalf("AUTO must prefer IPv6: %v", got)
	}
	if got := addrs(m.Get("v4")); !slices.Equal(got, []string{"10.9.9.9:80"}) {
		t.Fatalf("V4_ONLY: %v", got)
	}
	res.mu.Lock()
	sawIP4 := slices.Contains(res.networks, "ip4")
	res.mu.Unlock()
	if !sawIP4 {
		t.Fatal("V4_ONLY must ask the resolver for ip4")
	}

	// Traffic in flight on a host that stays keeps its counters across the refresh.
	kept := api.Hosts()[1]
	kept.Stats().ActiveRequests.Add(7)
	res.set("api.internal", "10.0.0.3", "10.0.0.2")
	waitFor(t, "the new DNS answer", func() bool {
		return slices.Equal(addrs(api), []string{"10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.100:9090"})
	})
	if api.Hosts()[0] != kept || kept.Stats().ActiveRequests.Load() != 7 {
		t.Fatal("a host that stayed in DNS was replaced; its counters were lost")
	}

	// A failing resolver keeps the last good hosts.
	res.setFail("api.internal", true)
	before := res.calls.Load()
	waitFor(t, "failed lookups", func() bool { return res.calls.Load() > before+3 })
	if got := addrs(api); !slices.Equal(got, []string{"10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.100:9090"}) {
		t.Fatalf("hosts after DNS failures %v", got)
	}
	if v, _ := stats.Value(`strait_cluster_dns_resolve_failures_total{cluster="api"}`); v == 0 {
		t.Fatal("DNS failures not counted")
	}
	// Weighted: the literal endpoint (weight 3) gets 3/5 of the picks.
	counts := map[string]int{}
	for range 5000 {
		counts[api.ChooseHost(nil).Address()]++
	}
	if counts["10.0.0.100:9090"] != 3000 {
		t.Fatalf("picks %v", counts)
	}

	// Close stops the refresh goroutines.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	after := res.calls.Load()
	time.Sleep(80 * time.Millisecond)
	if res.calls.Load() != after {
		t.Fatal("DNS lookups continue after Close")
	}
	if m.Close() != nil {
		t.Fatal("second Close")
	}
	if api.ChooseHost(nil) == nil {
		t.Fatal("a closed manager's clusters keep their last hosts")
	}
}

func TestStrictDNSNoAnswerYet(t *testing.T) {
	res := newFakeResolver() // knows no name
	m, err := NewClusterManager([]ClusterConfig{{Name: "gone", Type: ClusterStrictDNS, DNSRefreshRate: time.Hour,
		Endpoints: []EndpointConfig{{"gone.internal", 80, 1}}}}, ClusterManagerOptions{Resolver: res, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := m.Cluster("gone").ChooseHost(nil); h != nil {
		t.Fatalf("a name that never resolved yields host %v", h)
	}
}

func TestReadyHonoursContext(t *testing.T) {
	block := make(chan struct{})
	m, err := NewClusterManager([]ClusterConfig{{Name: "slow", Type: ClusterStrictDNS,
		Endpoints: []EndpointConfig{{"slow.internal", 80, 1}}}},
		ClusterManagerOptions{Resolver: blockingResolver(block), ResolveTimeout: time.Minute, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := m.Ready(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ready: %v", err)
	}
	// Close cancels the lookup in flight.
	done := make(chan struct{})
	go func() { m.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a lookup")
	}
	close(block)
}

type blockingResolver chan struct{}

func (b blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	select {
	case <-b:
	case <-ctx.Done():
	}
	return nil, ctx.Err()
}

func TestNewClusterManagerRejects(t *testing.T) {
	_, err := NewClusterManager([]ClusterConfig{
		{Name: "a", Endpoints: []EndpointConfig{{"10.0.0.1", 80, 1}}},
		{Name: "a"},
		{Name: "b", Endpoints: []EndpointConfig{{"not-an-ip", 80, 1}}},
	}, ClusterManagerOptions{})
	if !errors.Is(err, ErrDuplicate) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("%v", err)
	}
	for _, w := range []string{`clusters[1] ("a"): name: duplicate cluster name "a"`, `clusters[2] ("b"): endpoints[0].address: invalid value: "not-an-ip" is not an IP address`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
}

// TestChooseDuringRefresh runs pickers against a cluster whose host set is swapped every
// few milliseconds; with -race this proves ChooseHost needs no lock.
func TestChooseDuringRefresh(t *testing.T) {
	res := newFakeResolver()
	res.set("flap.internal", "10.0.0.1")
	m, err := NewClusterManager([]ClusterConfig{{Name: "flap", Type: ClusterStrictDNS, LBPolicy: LeastRequest,
		DNSRefreshRate: 2 * time.Millisecond, Endpoints: []EndpointConfig{{"flap.internal", 80, 1}}}},
		ClusterManagerOptions{Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := m.Cluster("flap")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var nilPicks atomic.Int64
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				h := c.ChooseHost(nil)
				if h == nil {
					nilPicks.Add(1)
					continue
				}
				h.Stats().ActiveRequests.Add(1)
				h.Stats().ActiveRequests.Add(-1)
			}
		})
	}
	for i := range 20 {
		if i%2 == 0 {
			res.set("flap.internal", "10.0.0.1", "10.0.0.2", "10.0.0.3")
		} else {
			res.set("flap.internal", "10.0.0.2")
		}
		time.Sleep(3 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if nilPicks.Load() != 0 {
		t.Fatalf("%d picks found no host while every DNS answer had one", nilPicks.Load())
	}
}

func BenchmarkChooseHost(b *testing.B) {
	m, err := NewClusterManager([]ClusterConfig{{Name: "c", Endpoints: []EndpointConfig{
		{"10.0.0.1", 80, 1}, {"10.0.0.2", 80, 2}, {"10.0.0.3", 80, 3}}}}, ClusterManagerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ReportAllocs()
	var h pipeline.Host
	for b.Loop() {
		h = m.Cluster("c").ChooseHost(nil)
	}
	_ = h
}
