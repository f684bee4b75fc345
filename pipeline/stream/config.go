package stream

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/strait-proxy/strait/pipeline/router"
)

// ErrInvalidConfig wraps every validation error of the stream manager.
var ErrInvalidConfig = errors.New("stream manager: invalid configuration")

// Dispatch says where a request's decode filter chain and routing run.
type Dispatch uint8

const (
	// DispatchAuto (the default) runs them on the connection's executor unless a configured
	// stream filter may block (it implements BlockingFilter and says so), in which case they
	// run on the request pool. Running CPU-only stages on the executor saves two goroutine
	// hops and their allocations per request; the pool stays what bounds blocking work.
	DispatchAuto Dispatch = iota
	// DispatchPool always runs them as a task on the bounded request pool (pipeline.Deps.Go);
	// a saturated pool pauses reading and sheds the request.
	DispatchPool
	// DispatchInline always runs them on the connection's executor.
	DispatchInline
)

// BlockingFilter is implemented by stream filter configurations whose filters may block
// (call out to a service, wait on a lock): with DispatchAuto their chains run on the pool.
type BlockingFilter interface {
	MayBlock() bool
}

// Defaults (Envoy's where Envoy has one).
const (
	DefaultIdleTimeout       = time.Hour
	DefaultStreamIdleTimeout = 5 * time.Minute
	DefaultBufferLimit       = 1 << 20
	DefaultRetryBufferLimit  = 64 << 10
	DefaultMaxStreams        = 1024
)

// Config configures one stream manager (an HttpConnectionManager, or Strait's RPC proxy).
type Config struct {
	// StatPrefix names the manager's counters.
	StatPrefix string
	// Codecs are the downstream protocols accepted, by registry name, tried in order on the
	// connection's first bytes. With one entry no detection happens.
	Codecs []string
	// UpstreamCodec forces the protocol spoken to upstream hosts, unless a cluster chooses
	// its own (pipeline.ConnPoolOptions.Protocol).
	UpstreamCodec string
	// DefaultUpstreamCodec is spoken to clusters that choose no protocol when UpstreamCodec
	// is empty; empty means the downstream connection's protocol. The HTTP connection
	// manager's translator sets "http1" (Envoy's default); RPC proxies leave it empty.
	DefaultUpstreamCodec string
	// CodecConfigs are this manager's own configurations of its downstream codecs, by codec
	// name (an http2.Config under "http2": the connection manager's
	// http2_protocol_options), applied with protocol.Codec.Configure.
	CodecConfigs map[string]any
	// Route is the inline route table.
	Route *router.Config
	// Filters are the stream filters, in order; routing comes after the last one.
	Filters []NamedFilter
	// IdleTimeout closes a downstream connection with no active stream for this long;
	// 0 disables it.
	IdleTimeout time.Duration
	// StreamIdleTimeout resets a stream when no byte of it moved for this long; 0 means
	// DefaultStreamIdleTimeout and a negative value disables it.
	StreamIdleTimeout time.Duration
	// MaxRequestsPerConnection closes a downstream connection after this many requests
	// (0: unlimited).
	MaxRequestsPerConnection int
	// MaxStreams bounds concurrent streams on one multiplexed downstream connection.
	MaxStreams int
	// BufferLimit bounds request body bytes held for one stream while its upstream is not
	// ready; past it the downstream connection stops being read.
	BufferLimit int
	// RetryBufferLimit bounds the request body kept for replay on routes with a retry
	// policy; a longer body is streamed and not retried.
	RetryBufferLimit int
	// Dispatch selects where decode filters and routing run.
	Dispatch Dispatch
}

// WithDefaults fills zero fields with their defaults.
func (c Config) WithDefaults() Config {
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if c.BufferLimit <= 0 {
		c.BufferLimit = DefaultBufferLimit
	}
	if c.RetryBufferLimit <= 0 {
		c.RetryBufferLimit = DefaultRetryBufferLimit
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	return c
}

// Validate checks the configuration itself; codec names and clusters are checked when the
// factory is built.
func (c *Config) Validate() error {
	if c.StatPrefix == "" {
		return fmt.Errorf("%w: stat_prefix is required", ErrInvalidConfig)
	}
	if len(c.Codecs) == 0 {
		return fmt.Errorf("%w: at least one codec is required", ErrInvalidConfig)
	}
	for name := range c.CodecConfigs {
		if !slices.Contains(c.Codecs, name) {
			return fmt.Errorf("%w: a configuration for codec %q, which the manager does not speak (%v)", ErrInvalidConfig, name, c.Codecs)
		}
	}
	if c.Route == nil {
		return fmt.Errorf("%w: a route table is required", ErrInvalidConfig)
	}
	if err := c.Route.Validate(); err != nil {
		return fmt.Errorf("%w: route_config: %w", ErrInvalidConfig, err)
	}
	for i, f := range c.Filters {
		if f.Config == nil {
			return fmt.Errorf("%w: http_filters[%d] (%s): no configuration", ErrInvalidConfig, i, f.Name)
		}
		if err := f.Config.Validate(); err != nil {
			return fmt.Errorf("http_filters[%d] (%s): %w", i, f.Name, err)
		}
	}
	if c.IdleTimeout < 0 || c.MaxRequestsPerConnection < 0 ||
		c.MaxStreams < 0 || c.BufferLimit < 0 || c.RetryBufferLimit < 0 {
		return fmt.Errorf("%w: negative limits", ErrInvalidConfig)
	}
	return nil
}

// ClusterNames lists the clusters the route table refers to (for dangling-name checks).
func (c *Config) ClusterNames() []string {
	if c.Route == nil {
		return nil
	}
	return c.Route.ClusterNames()
}
