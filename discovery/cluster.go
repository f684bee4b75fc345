package discovery

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/discovery/lb/leastrequest"
	"github.com/strait-proxy/strait/discovery/lb/maglev"
	"github.com/strait-proxy/strait/discovery/lb/random"
	"github.com/strait-proxy/strait/discovery/lb/ringhash"
	"github.com/strait-proxy/strait/discovery/lb/roundrobin"
	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/protocol/http2"
)

// ClusterType is how a cluster finds its hosts.
type ClusterType uint8

const (
	// ClusterStatic: endpoints are IP addresses, fixed for the snapshot.
	ClusterStatic ClusterType = iota
	// ClusterStrictDNS: every endpoint name is resolved periodically and each returned
	// address becomes a host.
	ClusterStrictDNS
)

func (t ClusterType) String() string {
	switch t {
	case ClusterStatic:
		return "STATIC"
	case ClusterStrictDNS:
		return "STRICT_DNS"
	}
	return "ClusterType(" + strconv.Itoa(int(t)) + ")"
}

// LBPolicy is a cluster's load-balancing policy.
type LBPolicy uint8

// The supported policies, one folder each under lb/.
const (
	RoundRobin LBPolicy = iota
	LeastRequest
	Random
	RingHash
	Maglev
)

func (p LBPolicy) String() string {
	switch p {
	case RoundRobin:
		return "ROUND_ROBIN"
	case LeastRequest:
		return "LEAST_REQUEST"
	case Random:
		return "RANDOM"
	case RingHash:
		return "RING_HASH"
	case Maglev:
		return "MAGLEV"
	}
	return "LBPolicy(" + strconv.Itoa(int(p)) + ")"
}

// DNSLookupFamily selects which addresses a STRICT_DNS cluster uses.
type DNSLookupFamily uint8

const (
	// DNSAuto uses the IPv6 addresses of a name if it has any, else its IPv4 ones (Envoy's
	// AUTO).
	DNSAuto DNSLookupFamily = iota
	// DNSV4Only uses IPv4 addresses only.
	DNSV4Only
)

// Defaults applied to a ClusterConfig's zero fields.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultDNSRefreshRate = 5 * time.Second
	// MinDNSRefreshRate is Envoy's lower bound for dns_refresh_rate.
	MinDNSRefreshRate = time.Millisecond
)

// ClusterConfig is one upstream cluster of a snapshot.
type ClusterConfig struct {
	// Name is unique within a snapshot.
	Name string
	Type ClusterType
	// ConnectTimeout bounds an upstream connect; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	LBPolicy       LBPolicy
	// Policy options; only the one matching LBPolicy may be non-zero.
	LeastRequest leastrequest.Config
	RingHash     ringhash.Config
	Maglev       maglev.Config
	// Endpoints are the hosts (priority 0). STATIC endpoints are IP addresses.
	Endpoints []EndpointConfig
	// CircuitBreakers are the default-priority thresholds; nil means Envoy's defaults.
	CircuitBreakers *Thresholds
	// DNSRefreshRate is the STRICT_DNS re-resolution period; 0 means DefaultDNSRefreshRate.
	DNSRefreshRate  time.Duration
	DNSLookupFamily DNSLookupFamily
	// ConnPool are the upstream HTTP connection pool settings (Envoy's
	// typed_extension_protocol_options HttpProtocolOptions); the zero value chooses no
	// protocol (the stream manager's default: HTTP/1.1 from an HTTP connection manager) and
	// keeps the stream manager's other defaults.
	ConnPool pipeline.ConnPoolOptions
}

// EndpointConfig is one lb_endpoint.
type EndpointConfig struct {
	// Address is an IP address, or a DNS name in a STRICT_DNS cluster.
	Address string
	Port    uint16
	// Weight is load_balancing_weight, at least 1.
	Weight uint32
}

// Thresholds are circuit_breakers.thresholds for the default priority. Unlike
// pipeline.NewCircuitBreaker's arguments, 0 here means zero (max_retries: 0 forbids retries).
type Thresholds struct {
	MaxConnections     uint32
	MaxPendingRequests uint32
	MaxRequests        uint32
	MaxRetries         uint32
}

// DefaultThresholds are Envoy's defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MaxConnections:     pipeline.DefaultMaxConnections,
		MaxPendingRequests: pipeline.DefaultMaxPendingRequests,
		MaxRequests:        pipeline.DefaultMaxRequests,
		MaxRetries:         pipeline.DefaultMaxRetries,
	}
}

// Validate reports every problem with the cluster, each naming its field.
func (c *ClusterConfig) Validate() error {
	var e errs
	if c.Name == "" {
		e.add("name", fmt.Errorf("%w: a cluster needs a name", ErrInvalid))
	}
	if c.Type > ClusterStrictDNS {
		e.add("type", fmt.Errorf("%w: %v", ErrInvalid, c.Type))
	}
	if c.ConnectTimeout < 0 {
		e.add("connect_timeout", fmt.Errorf("%w: negative", ErrInvalid))
	}
	if c.Type == ClusterStatic && c.DNSRefreshRate != 0 {
		e.add("dns_refresh_rate", fmt.Errorf("%w: applies to STRICT_DNS clusters only", ErrInvalid))
	}
	if c.Type == ClusterStatic && c.DNSLookupFamily != DNSAuto {
		e.add("dns_lookup_family", fmt.Errorf("%w: applies to STRICT_DNS clusters only", ErrInvalid))
	}
	if c.DNSRefreshRate < 0 || (c.DNSRefreshRate > 0 && c.DNSRefreshRate < MinDNSRefreshRate) {
		e.add("dns_refresh_rate", fmt.Errorf("%w: %v (want at least %v)", ErrInvalid, c.DNSRefreshRate, MinDNSRefreshRate))
	}
	if c.DNSLookupFamily > DNSV4Only {
		e.add("dns_lookup_family", fmt.Errorf("%w: %d", ErrInvalid, c.DNSLookupFamily))
	}
	if _, err := c.balancerFactory(); err != nil {
		e.add("lb_policy", err)
	}
	for i, ep := range c.Endpoints {
		path := "endpoints[" + strconv.Itoa(i) + "]"
		if ep.Weight == 0 {
			e.add(path+".weight", fmt.Errorf("%w: must be at least 1", ErrInvalid))
		}
		ip, err := netip.ParseAddr(ep.Address)
		switch {
		case err == nil && ip.Zone() != "":
			e.add(path+".address", fmt.Errorf("%q: zoned addresses are %w", ep.Address, ErrUnsupported))
		case err != nil && c.Type == ClusterStatic:
			e.add(path+".address", fmt.Errorf("%w: %q is not an IP address (STATIC clusters need IPs; use STRICT_DNS for names)", ErrInvalid, ep.Address))
		case err != nil && !validHostname(ep.Address):
			e.add(path+".address", fmt.Errorf("%w: %q is neither an IP address nor a DNS name", ErrInvalid, ep.Address))
		}
	}
	switch c.ConnPool.Protocol {
	case "", CodecHTTP1, CodecHTTP2, pipeline.ProtocolDownstream:
	default:
		e.add("conn_pool.protocol", fmt.Errorf("%w: %q (want http1, http2, %s or empty)", ErrInvalid, c.ConnPool.Protocol, pipeline.ProtocolDownstream))
	}
	for name, cc := range c.ConnPool.CodecConfigs {
		h2, ok := cc.(http2.Config)
		if name != CodecHTTP2 || !ok {
			e.add("conn_pool.codec_configs", fmt.Errorf("%w: %q: %T (want an http2.Config under %q)", ErrInvalid, name, cc, CodecHTTP2))
			continue
		}
		if err := h2.Validate(); err != nil {
			e.add("conn_pool.codec_configs", fmt.Errorf("%w: %w", ErrInvalid, err))
		}
	}
	if c.ConnPool.MaxRequestsPerConnection < 0 || c.ConnPool.IdleTimeout < 0 || c.ConnPool.MaxConcurrentStreams < 0 {
		e.add("conn_pool", fmt.Errorf("%w: negative limits", ErrInvalid))
	}
	if m := c.Maglev.TableSize; c.LBPolicy == Maglev && m != 0 && uint64(len(c.Endpoints)) > m {
		e.add("maglev_lb_config.table_size", fmt.Errorf("%w: %d is smaller than the %d endpoints", ErrInvalid, m, len(c.Endpoints)))
	}
	return e.err()
}

// balancerFactory checks the policy options and returns the policy's factory.
func (c *ClusterConfig) balancerFactory() (lb.Factory, error) {
	var zeroLR leastrequest.Config
	var zeroRH ringhash.Config
	var zeroMG maglev.Config
	if c.LeastRequest != zeroLR && c.LBPolicy != LeastRequest {
		return nil, fmt.Errorf("%w: least_request_lb_config is set but lb_policy is %v", ErrInvalid, c.LBPolicy)
	}
	if c.RingHash != zeroRH && c.LBPolicy != RingHash {
		return nil, fmt.Errorf("%w: ring_hash_lb_config is set but lb_policy is %v", ErrInvalid, c.LBPolicy)
	}
	if c.Maglev != zeroMG && c.LBPolicy != Maglev {
		return nil, fmt.Errorf("%w: maglev_lb_config is set but lb_policy is %v", ErrInvalid, c.LBPolicy)
	}
	switch c.LBPolicy {
	case RoundRobin:
		return roundrobin.Factory(), nil
	case Random:
		return random.Factory(), nil
	case LeastRequest:
		return leastrequest.Factory(c.LeastRequest)
	case RingHash:
		return ringhash.Factory(c.RingHash)
	case Maglev:
		return maglev.Factory(c.Maglev)
	}
	return nil, fmt.Errorf("%w: %v", ErrInvalid, c.LBPolicy)
}

func (c *ClusterConfig) connectTimeout() time.Duration {
	if c.ConnectTimeout == 0 {
		return DefaultConnectTimeout
	}
	return c.ConnectTimeout
}

func (c *ClusterConfig) dnsRefreshRate() time.Duration {
	if c.DNSRefreshRate == 0 {
		return DefaultDNSRefreshRate
	}
	return c.DNSRefreshRate
}

// TranslateCluster turns an Envoy cluster into its runtime configuration. Supported: name,
// type STATIC or STRICT_DNS, connect_timeout, lb_policy ROUND_ROBIN, LEAST_REQUEST,
// RANDOM, RING_HASH or MAGLEV with their *_lb_config, load_assignment (priority 0
// lb_endpoints with endpoint.address.socket_address and load_balancing_weight),
// circuit_breakers.thresholds (default priority), dns_refresh_rate, dns_lookup_family
// (AUTO, V4_ONLY) and typed_extension_protocol_options (HttpProtocolOptions, see
// translateHTTPProtocolOptions). Every problem is reported (errors.Join of *FieldError, Resource
// `cluster "name"`).
func TranslateCluster(c *clusterv3.Cluster) (ClusterConfig, error) {
	var e errs
	checkSupported(c.ProtoReflect(), "", &e)
	cfg := ClusterConfig{Name: c.GetName()}
	switch c.GetType() {
	case clusterv3.Cluster_STATIC:
		cfg.Type = ClusterStatic
	case clusterv3.Cluster_STRICT_DNS:
		cfg.Type = ClusterStrictDNS
	default:
		e.add("type", fmt.Errorf("%v is %w (STATIC, STRICT_DNS)", c.GetType(), ErrUnsupported))
	}
	if c.ConnectTimeout != nil {
		cfg.ConnectTimeout = duration(c.ConnectTimeout.AsDuration(), "connect_timeout", &e)
		if cfg.ConnectTimeout == 0 {
			e.add("connect_timeout", fmt.Errorf("%w: must be positive", ErrInvalid))
		}
	}
	switch c.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
		cfg.LBPolicy = RoundRobin
	case clusterv3.Cluster_LEAST_REQUEST:
		cfg.LBPolicy = LeastRequest
	case clusterv3.Cluster_RANDOM:
		cfg.LBPolicy = Random
	case clusterv3.Cluster_RING_HASH:
		cfg.LBPolicy = RingHash
	case clusterv3.Cluster_MAGLEV:
		cfg.LBPolicy = Maglev
	default:
		e.add("lb_policy", fmt.Errorf("%v is %w (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)", c.GetLbPolicy(), ErrUnsupported))
	}
	if lr := c.GetLeastRequestLbConfig(); lr != nil {
		if lr.ChoiceCount != nil {
			cfg.LeastRequest.ChoiceCount = lr.ChoiceCount.GetValue()
		}
	}
	if rh := c.GetRingHashLbConfig(); rh != nil {
		if rh.MinimumRingSize != nil {
			cfg.RingHash.MinRingSize = rh.MinimumRingSize.GetValue()
		}
		if rh.MaximumRingSize != nil {
			cfg.RingHash.MaxRingSize = rh.MaximumRingSize.GetValue()
		}
	}
	if mg := c.GetMaglevLbConfig(); mg != nil && mg.TableSize != nil {
		cfg.Maglev.TableSize = mg.TableSize.GetValue()
	}
	for i, loc := range c.GetLoadAssignment().GetEndpoints() {
		for j, le := range loc.GetLbEndpoints() {
			path := fmt.Sprintf("load_assignment.endpoints[%d].lb_endpoints[%d]", i, j)
			sa := le.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				e.add(path+".endpoint.address", fmt.Errorf("%w: socket_address is required", ErrInvalid))
				continue
			}
			addr, err := socketAddress(sa, c.GetType() == clusterv3.Cluster_STATIC)
			if err != nil {
				e.add(path+".endpoint.address.socket_address", err)
				continue
			}
			ap, perr := netip.ParseAddrPort(addr)
			ep := EndpointConfig{Address: sa.GetAddress(), Port: uint16(sa.GetPortValue()), Weight: 1}
			if perr == nil {
				ep.Address = ap.Addr().String()
			}
			if w := le.GetLoadBalancingWeight(); w != nil {
				if w.GetValue() == 0 {
					e.add(path+".load_balancing_weight", fmt.Errorf("%w: must be at least 1", ErrInvalid))
				}
				ep.Weight = w.GetValue()
			}
			cfg.Endpoints = append(cfg.Endpoints, ep)
		}
	}
	thresholds := c.GetCircuitBreakers().GetThresholds()
	if len(thresholds) > 1 {
		e.add("circuit_breakers.thresholds", fmt.Errorf("%w: one entry (the DEFAULT priority) is supported, found %d", ErrUnsupported, len(thresholds)))
	}
	if len(thresholds) == 1 {
		t := thresholds[0]
		th := DefaultThresholds()
		if t.MaxConnections != nil {
			th.MaxConnections = t.MaxConnections.GetValue()
		}
		if t.MaxPendingRequests != nil {
			th.MaxPendingRequests = t.MaxPendingRequests.GetValue()
		}
		if t.MaxRequests != nil {
			th.MaxRequests = t.MaxRequests.GetValue()
		}
		if t.MaxRetries != nil {
			th.MaxRetries = t.MaxRetries.GetValue()
		}
		cfg.CircuitBreakers = &th
	}
	if c.DnsRefreshRate != nil {
		if c.GetType() == clusterv3.Cluster_STATIC {
			e.add("dns_refresh_rate", fmt.Errorf("%w: applies to STRICT_DNS clusters only", ErrInvalid))
		}
		cfg.DNSRefreshRate = duration(c.DnsRefreshRate.AsDuration(), "dns_refresh_rate", &e)
	}
	for _, key := range slices.Sorted(maps.Keys(c.GetTypedExtensionProtocolOptions())) {
		path := "typed_extension_protocol_options[" + strconv.Quote(key) + "]"
		if key != HTTPProtocolOptionsKey {
			e.add(path, fmt.Errorf("%w: only %s", ErrUnsupported, HTTPProtocolOptionsKey))
			continue
		}
		cfg.ConnPool = translateHTTPProtocolOptions(c.GetTypedExtensionProtocolOptions()[key], path, &e)
	}
	switch c.GetDnsLookupFamily() {
	case clusterv3.Cluster_AUTO:
	case clusterv3.Cluster_V4_ONLY:
		if c.GetType() == clusterv3.Cluster_STATIC {
			e.add("dns_lookup_family", fmt.Errorf("%w: applies to STRICT_DNS clusters only", ErrInvalid))
		}
		cfg.DNSLookupFamily = DNSV4Only
	default:
		e.add("dns_lookup_family", fmt.Errorf("%v is %w (AUTO, V4_ONLY)", c.GetDnsLookupFamily(), ErrUnsupported))
	}
	if len(e.list) == 0 {
		// Envoy's own constraints (protoc-gen-validate rules) not covered above.
		if err := c.ValidateAll(); err != nil {
			e.add("", fmt.Errorf("%w: %v", ErrInvalid, err))
		}
	}
	if len(e.list) == 0 {
		// The typed config's own rules (policy options, ring and table sizes, addresses),
		// mapped back onto the proto's field names.
		for _, err := range flatten(cfg.Validate()) {
			if fe, ok := err.(*FieldError); ok {
				switch fe.Field {
				case "lb_policy":
					fe.Field = lbConfigField(cfg.LBPolicy)
				}
			}
			e.add("", err)
		}
	}
	if len(e.list) > 0 {
		return ClusterConfig{}, errors.Join(located("", fmt.Sprintf("cluster %q", c.GetName()), e.err())...)
	}
	return cfg, nil
}

func lbConfigField(p LBPolicy) string {
	switch p {
	case LeastRequest:
		return "least_request_lb_config"
	case RingHash:
		return "ring_hash_lb_config"
	case Maglev:
		return "maglev_lb_config"
	}
	return "lb_policy"
}
