package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/pipeline"
)

// Resolver looks up a name's addresses; *net.Resolver implements it. network is "ip" or
// "ip4".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ClusterManagerOptions are the cluster manager's dependencies; every field is optional.
type ClusterManagerOptions struct {
	// Resolver resolves STRICT_DNS endpoints; nil means net.DefaultResolver.
	Resolver Resolver
	// ResolveTimeout bounds one resolution round of a cluster; 0 means 5s.
	ResolveTimeout time.Duration
	// Logger receives DNS failures; nil means slog.Default().
	Logger *slog.Logger
	// Stats receives strait_cluster_* counters and gauges (nil: detached).
	Stats *pipeline.Stats
}

// DefaultResolveTimeout bounds one STRICT_DNS resolution round.
const DefaultResolveTimeout = 5 * time.Second

// Host is one upstream endpoint of a cluster. Its counters survive DNS refreshes that keep
// its address.
type Host struct {
	addr   string
	weight uint32
	stats  pipeline.HostStats
}

var _ pipeline.Host = (*Host)(nil)

// Address implements pipeline.Host: "ip:port" ("[ip6]:port" for IPv6).
func (h *Host) Address() string { return h.addr }

// Stats implements pipeline.Host.
func (h *Host) Stats() *pipeline.HostStats { return &h.stats }

// Weight is the host's load_balancing_weight.
func (h *Host) Weight() uint32 { return h.weight }

// hostSet is what ChooseHost reads: replaced as a whole, never mutated.
type hostSet struct {
	hosts    []*Host
	balancer lb.Balancer // nil when hosts is empty
}

// Cluster is a running cluster: its host set (swapped atomically on DNS changes), its
// balancer and its circuit breaker.
type Cluster struct {
	cfg     ClusterConfig
	factory lb.Factory
	limits  *pipeline.CircuitBreaker
	set     atomic.Pointer[hostSet]

	// STRICT_DNS state, owned by the cluster's resolver goroutine.
	resolved  [][]netip.Addr // last good addresses per endpoint
	failing   []string       // per endpoint: the last lookup error, "" after a success
	ready     chan struct{}  // closed after the first resolution round
	readyOnce sync.Once
	dnsFails  *atomic.Uint64
	hostGauge *atomic.Int64
}

var _ pipeline.Cluster = (*Cluster)(nil)

// Name implements pipeline.Cluster.
func (c *Cluster) Name() string { return c.cfg.Name }

// ConnectTimeout implements pipeline.Cluster.
func (c *Cluster) ConnectTimeout() time.Duration { return c.cfg.connectTimeout() }

// Limits implements pipeline.Cluster.
func (c *Cluster) Limits() *pipeline.CircuitBreaker { return c.limits }

// ChooseHost implements pipeline.Cluster. It never locks: one atomic load, then the
// balancer's lock-free pick.
func (c *Cluster) ChooseHost(ctx *pipeline.LBContext) pipeline.Host {
	s := c.set.Load()
	if s == nil || s.balancer == nil {
		return nil
	}
	return s.balancer.Choose(ctx)
}

// Hosts returns the current hosts (a snapshot; do not modify).
func (c *Cluster) Hosts() []*Host {
	if s := c.set.Load(); s != nil {
		return s.hosts
	}
	return nil
}

// Config returns a copy of the cluster's configuration.
func (c *Cluster) Config() ClusterConfig {
	cfg := c.cfg
	cfg.Endpoints = slices.Clone(cfg.Endpoints)
	if cfg.CircuitBreakers != nil {
		th := *cfg.CircuitBreakers
		cfg.CircuitBreakers = &th
	}
	return cfg
}

// swap installs hosts (in the given order) with a fresh balancer.
func (c *Cluster) swap(hosts []*Host) error {
	s := &hostSet{hosts: hosts}
	if len(hosts) > 0 {
		eps := make([]lb.Endpoint, len(hosts))
		for i, h := range hosts {
			eps[i] = lb.Endpoint{Host: h, Weight: h.weight}
		}
		b, err := c.factory(eps)
		if err != nil {
			return err
		}
		s.balancer = b
	}
	c.set.Store(s)
	c.hostGauge.Store(int64(len(hosts)))
	return nil
}

// ClusterManager holds a snapshot's clusters. It implements pipeline.ClusterManager; its map
// is fixed at construction, so lookups take no lock.
type ClusterManager struct {
	clusters map[string]*Cluster
	order    []*Cluster
	opts     ClusterManagerOptions
	log      *slog.Logger
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   atomic.Bool
}

var _ pipeline.ClusterManager = (*ClusterManager)(nil)

// NewClusterManager validates cfgs and builds their clusters. STATIC clusters are ready at
// once; each STRICT_DNS cluster starts a goroutine that resolves its endpoints now and every
// dns_refresh_rate until Close. Until its first resolution a DNS cluster has no host (see
// Ready).
func NewClusterManager(cfgs []ClusterConfig, opts ClusterManagerOptions) (*ClusterManager, error) {
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.ResolveTimeout <= 0 {
		opts.ResolveTimeout = DefaultResolveTimeout
	}
	m := &ClusterManager{clusters: make(map[string]*Cluster, len(cfgs)), opts: opts, log: opts.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	var e errs
	for i, cfg := range cfgs {
		res := fmt.Sprintf("clusters[%d] (%q)", i, cfg.Name)
		if err := cfg.Validate(); err != nil {
			e.list = append(e.list, located("", res, err)...)
			continue
		}
		if _, dup := m.clusters[cfg.Name]; dup {
			e.list = append(e.list, &FieldError{Resource: res, Field: "name", Err: fmt.Errorf("%w cluster name %q", ErrDuplicate, cfg.Name)})
			continue
		}
		c, err := m.newCluster(cfg)
		if err != nil {
			e.list = append(e.list, located("", res, err)...)
			continue
		}
		m.clusters[cfg.Name] = c
		m.order = append(m.order, c)
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	for _, c := range m.order {
		if c.cfg.Type == ClusterStrictDNS {
			m.wg.Go(func() { m.runDNS(ctx, c) })
		}
	}
	return m, nil
}

func (m *ClusterManager) newCluster(cfg ClusterConfig) (*Cluster, error) {
	factory, err := cfg.balancerFactory()
	if err != nil {
		return nil, err
	}
	th := DefaultThresholds()
	if cfg.CircuitBreakers != nil {
		th = *cfg.CircuitBreakers
	}
	cfg.Endpoints = slices.Clone(cfg.Endpoints)
	if cfg.CircuitBreakers != nil {
		cb := *cfg.CircuitBreakers
		cfg.CircuitBreakers = &cb
	}
	label := `{cluster="` + cfg.Name + `"}`
	c := &Cluster{
		cfg:     cfg,
		factory: factory,
		limits: &pipeline.CircuitBreaker{
			MaxConnections:     int64(th.MaxConnections),
			MaxPendingRequests: int64(th.MaxPendingRequests),
			MaxRequests:        int64(th.MaxRequests),
			MaxRetries:         int64(th.MaxRetries),
		},
		ready:     make(chan struct{}),
		dnsFails:  m.opts.Stats.Counter("strait_cluster_dns_resolve_failures_total" + label),
		hostGauge: m.opts.Stats.Gauge("strait_cluster_hosts" + label),
	}
	if cfg.Type == ClusterStatic {
		hosts := make([]*Host, len(cfg.Endpoints))
		for i, ep := range cfg.Endpoints {
			ip, err := netip.ParseAddr(ep.Address)
			if err != nil {
				return nil, &FieldError{Field: "endpoints[" + strconv.Itoa(i) + "].address", Err: fmt.Errorf("%w: %v", ErrInvalid, err)}
			}
			hosts[i] = &Host{addr: netip.AddrPortFrom(ip.Unmap(), ep.Port).String(), weight: ep.Weight}
		}
		if err := c.swap(hosts); err != nil {
			return nil, err
		}
		close(c.ready)
	} else {
		c.resolved = make([][]netip.Addr, len(cfg.Endpoints))
		c.failing = make([]string, len(cfg.Endpoints))
		c.set.Store(&hostSet{})
	}
	return c, nil
}

// Cluster implements pipeline.ClusterManager.
func (m *ClusterManager) Cluster(name string) pipeline.Cluster {
	if c, ok := m.clusters[name]; ok {
		return c
	}
	return nil
}

// Get returns the named cluster with its concrete type, or nil.
func (m *ClusterManager) Get(name string) *Cluster { return m.clusters[name] }

// Clusters returns every cluster in configuration order.
func (m *ClusterManager) Clusters() []*Cluster { return slices.Clone(m.order) }

// Ready blocks until every STRICT_DNS cluster has finished its first resolution round
// (successful or not), or ctx ends. cmd/strait calls it before starting listeners, as Envoy
// warms clusters before listeners.
func (m *ClusterManager) Ready(ctx context.Context) error {
	for _, c := range m.order {
		select {
		case <-c.ready:
		case <-ctx.Done():
			return fmt.Errorf("discovery: waiting for cluster %q: %w", c.cfg.Name, ctx.Err())
		}
	}
	return nil
}

// Close stops the DNS goroutines and waits for them. Clusters keep serving their last host
// sets. Close is idempotent.
func (m *ClusterManager) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.cancel()
	m.wg.Wait()
	return nil
}

func (m *ClusterManager) runDNS(ctx context.Context, c *Cluster) {
	defer c.readyOnce.Do(func() { close(c.ready) })
	m.resolve(ctx, c)
	c.readyOnce.Do(func() { close(c.ready) })
	t := time.NewTicker(c.cfg.dnsRefreshRate())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.resolve(ctx, c)
		}
	}
}

// resolve runs one round: every endpoint name is looked up; a failed lookup keeps that
// endpoint's previous addresses (Envoy keeps the last good result). The host set is swapped
// only if it changed, and hosts whose address stays keep their identity and counters.
func (m *ClusterManager) resolve(ctx context.Context, c *Cluster) {
	rctx, cancel := context.WithTimeout(ctx, m.opts.ResolveTimeout)
	defer cancel()
	network := "ip"
	if c.cfg.DNSLookupFamily == DNSV4Only {
		network = "ip4"
	}
	for i, ep := range c.cfg.Endpoints {
		if ip, err := netip.ParseAddr(ep.Address); err == nil {
			c.resolved[i] = []netip.Addr{ip.Unmap()}
			continue
		}
		addrs, err := m.opts.Resolver.LookupNetIP(rctx, network, ep.Address)
		if err == nil {
			addrs = pickFamily(addrs, c.cfg.DNSLookupFamily)
			if len(addrs) == 0 {
				err = fmt.Errorf("no usable address for %q", ep.Address)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return // shutting down
			}
			c.dnsFails.Add(1)
			// Warn when a name starts failing or fails differently, not every refresh.
			level := slog.LevelDebug
			if msg := err.Error(); msg != c.failing[i] {
				level, c.failing[i] = slog.LevelWarn, msg
			}
			m.log.Log(ctx, level, "dns resolution failed; keeping the previous addresses",
				"cluster", c.cfg.Name, "host", ep.Address, "err", err, "previous", len(c.resolved[i]))
			continue
		}
		if c.failing[i] != "" {
			m.log.Info("dns resolution recovered", "cluster", c.cfg.Name, "host", ep.Address)
			c.failing[i] = ""
		}
		c.resolved[i] = addrs
	}
	old := c.set.Load()
	byKey := make(map[string]*Host, len(old.hosts))
	for _, h := range old.hosts {
		byKey[hostKey(h.addr, h.weight)] = h
	}
	var hosts []*Host
	for i, ep := range c.cfg.Endpoints {
		for _, ip := range c.resolved[i] {
			addr := netip.AddrPortFrom(ip, ep.Port).String()
			h, ok := byKey[hostKey(addr, ep.Weight)]
			if ok {
				delete(byKey, hostKey(addr, ep.Weight)) // a duplicate address gets its own Host
			} else {
				h = &Host{addr: addr, weight: ep.Weight}
			}
			hosts = append(hosts, h)
		}
	}
	if slices.Equal(hosts, old.hosts) {
		return
	}
	if err := c.swap(hosts); err != nil {
		m.log.Error("rebuilding the load balancer failed; keeping the previous hosts", "cluster", c.cfg.Name, "err", err)
		return
	}
	m.log.Debug("cluster hosts updated", "cluster", c.cfg.Name, "hosts", len(hosts))
}

func hostKey(addr string, weight uint32) string {
	return addr + "/" + strconv.FormatUint(uint64(weight), 10)
}

// pickFamily applies dns_lookup_family: V4_ONLY keeps IPv4; AUTO keeps the IPv6 addresses
// if there are any, else the IPv4 ones. The result is unmapped, de-duplicated and sorted so
// that an unchanged answer in another order does not rebuild the balancer.
func pickFamily(addrs []netip.Addr, fam DNSLookupFamily) []netip.Addr {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if a.Is4() {
			v4 = append(v4, a)
		} else if a.Is6() && a.Zone() == "" {
			v6 = append(v6, a)
		}
	}
	out := v4
	if fam == DNSAuto && len(v6) > 0 {
		out = v6
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

var _ pipeline.ConnPoolSettings = (*Cluster)(nil)

// ConnPool implements pipeline.ConnPoolSettings: the cluster's upstream HTTP connection
// pool settings (typed_extension_protocol_options).
func (c *Cluster) ConnPool() pipeline.ConnPoolOptions { return c.cfg.ConnPool }
