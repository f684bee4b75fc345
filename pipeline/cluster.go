package pipeline

import (
	"net"
	"sync/atomic"
	"time"
)

// ClusterManager resolves cluster names. discovery/ implements it from a configuration
// snapshot; lookups happen per connection or request, so implementations must be cheap and
// safe for concurrent use.
type ClusterManager interface {
	// Cluster returns the named cluster, or nil if it does not exist.
	Cluster(name string) Cluster
}

// Cluster is a set of upstream hosts with a load-balancing policy.
type Cluster interface {
	Name() string
	// ConnectTimeout is the cluster's connect_timeout.
	ConnectTimeout() time.Duration
	// ChooseHost picks a host for one connection or request; nil when no host is available.
	// lb may be nil.
	ChooseHost(lb *LBContext) Host
	// Limits are the cluster's circuit-breaker thresholds and live counters.
	Limits() *CircuitBreaker
}

// Host is one upstream endpoint.
type Host interface {
	// Address is "ip:port" (or "name:port" for DNS clusters resolved elsewhere).
	Address() string
	// Stats are the live counters load balancers read (least request) and the data path writes.
	Stats() *HostStats
}

// LBContext carries what a load balancer may hash on or avoid.
type LBContext struct {
	// DownstreamAddr is the client's address (for source-IP hashing).
	DownstreamAddr net.Addr
	// HashKey is a precomputed hash (of a header, for ring hash and Maglev); HasHash says
	// whether it is set.
	HashKey uint64
	HasHash bool
	// Attempt is 0 for the first try; retries and reconnects increase it and load balancers
	// should avoid returning Previous again when they can.
	Attempt  int
	Previous Host
}

// HostStats are a host's live counters.
type HostStats struct {
	ActiveRequests atomic.Int64
	ActiveConns    atomic.Int64
	TotalConns     atomic.Uint64
	ConnectFails   atomic.Uint64
	TotalRequests  atomic.Uint64
}

// CircuitBreaker holds a cluster's thresholds (Envoy's circuit_breakers, default priority)
// and the live counts they are checked against. Thresholds are fixed for a snapshot; counts
// move with traffic.
type CircuitBreaker struct {
	MaxConnections     int64
	MaxPendingRequests int64
	MaxRequests        int64
	MaxRetries         int64

	Connections     atomic.Int64
	PendingRequests atomic.Int64
	Requests        atomic.Int64
	Retries         atomic.Int64
}

// Envoy's default thresholds.
const (
	DefaultMaxConnections     = 1024
	DefaultMaxPendingRequests = 1024
	DefaultMaxRequests        = 1024
	DefaultMaxRetries         = 3
)

// NewCircuitBreaker returns thresholds with Envoy's defaults for every zero argument.
func NewCircuitBreaker(conns, pending, requests, retries int64) *CircuitBreaker {
	def := func(v, d int64) int64 {
		if v <= 0 {
			return d
		}
		return v
	}
	return &CircuitBreaker{
		MaxConnections:     def(conns, DefaultMaxConnections),
		MaxPendingRequests: def(pending, DefaultMaxPendingRequests),
		MaxRequests:        def(requests, DefaultMaxRequests),
		MaxRetries:         def(retries, DefaultMaxRetries),
	}
}

// TryAcquire increments counter if it is below limit and reports whether it did.
func TryAcquire(counter *atomic.Int64, limit int64) bool {
	for {
		v := counter.Load()
		if v >= limit {
			return false
		}
		if counter.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// ConnPoolSettings is implemented by clusters with upstream connection pool settings
// (Envoy's HttpProtocolOptions); found by type assertion.
type ConnPoolSettings interface {
	ConnPool() ConnPoolOptions
}

// ProtocolDownstream as ConnPoolOptions.Protocol makes a cluster speak the downstream
// connection's protocol (Envoy's use_downstream_protocol_config).
const ProtocolDownstream = "downstream"

// ConnPoolOptions configure the stream manager's upstream connection pools for a cluster.
type ConnPoolOptions struct {
	// Protocol is the upstream codec ("http1", "http2"), ProtocolDownstream for the
	// downstream connection's, or empty for the stream manager's default (the HTTP
	// connection manager's is HTTP/1.1, as Envoy's; an RPC proxy's is its own protocol).
	Protocol string
	// CodecConfigs are the upstream codecs' own configurations, by codec name (an
	// http2.Config under "http2": the cluster's http2_protocol_options), applied with
	// protocol.Codec.Configure when a pool is created. A codec not named keeps the program's
	// configuration.
	CodecConfigs map[string]any
	// MaxRequestsPerConnection retires a connection after this many streams (0: unlimited).
	MaxRequestsPerConnection int
	// IdleTimeout closes a connection that carried no stream for this long; 0 means the
	// stream manager's default and a negative value keeps idle connections open forever.
	IdleTimeout time.Duration
	// MaxConcurrentStreams caps streams per multiplexed connection (0: the codec's limit).
	MaxConcurrentStreams int
}
