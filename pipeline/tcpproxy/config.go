// Package tcpproxy is the terminal network filter that forwards a downstream connection's
// bytes to an upstream host of a cluster and back (Envoy's envoy.filters.network.tcp_proxy).
//
// Who may call it: the configuration translators build its Config; the listener builds its
// factory through pipeline.NetworkFilterConfig. See README.md.
package tcpproxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/strait-proxy/strait/pipeline"
)

// DefaultIdleTimeout is Envoy's tcp_proxy idle_timeout when the field is absent.
const DefaultIdleTimeout = time.Hour

// ErrInvalidConfig wraps every validation error of this filter.
var ErrInvalidConfig = errors.New("tcp_proxy: invalid configuration")

// Config configures one tcp_proxy filter.
type Config struct {
	// StatPrefix names the filter's counters (Envoy's stat_prefix, required).
	StatPrefix string
	// Cluster is the upstream cluster; exactly one of Cluster and WeightedClusters is set.
	Cluster string
	// WeightedClusters splits connections between clusters by weight.
	WeightedClusters []WeightedCluster
	// IdleTimeout closes both connections when no byte moved in either direction for this
	// long. 0 disables it. Translators set DefaultIdleTimeout when the field is absent.
	IdleTimeout time.Duration
	// MaxConnectAttempts is how many upstream connects are tried (each on a freshly chosen
	// host) before the downstream connection is closed. At least 1.
	MaxConnectAttempts int
	// MaxDownstreamConnectionDuration closes the connection after this long; 0 disables it.
	MaxDownstreamConnectionDuration time.Duration
}

// WeightedCluster is one entry of Config.WeightedClusters.
type WeightedCluster struct {
	Name   string
	Weight uint32
}

var _ pipeline.NetworkFilterConfig = (*Config)(nil)

// Validate implements pipeline.NetworkFilterConfig.
func (c *Config) Validate() error {
	if c.StatPrefix == "" {
		return fmt.Errorf("%w: stat_prefix is required", ErrInvalidConfig)
	}
	if (c.Cluster == "") == (len(c.WeightedClusters) == 0) {
		return fmt.Errorf("%w: exactly one of cluster and weighted_clusters must be set", ErrInvalidConfig)
	}
	var total uint64
	for i, w := range c.WeightedClusters {
		if w.Name == "" {
			return fmt.Errorf("%w: weighted_clusters.clusters[%d]: name is required", ErrInvalidConfig, i)
		}
		if w.Weight == 0 {
			return fmt.Errorf("%w: weighted_clusters.clusters[%d] (%s): weight must be positive", ErrInvalidConfig, i, w.Name)
		}
		total += uint64(w.Weight)
	}
	if total > 1<<32-1 {
		return fmt.Errorf("%w: weighted_clusters: total weight overflows uint32", ErrInvalidConfig)
	}
	if c.MaxConnectAttempts < 1 {
		return fmt.Errorf("%w: max_connect_attempts must be at least 1", ErrInvalidConfig)
	}
	if c.IdleTimeout < 0 || c.MaxDownstreamConnectionDuration < 0 {
		return fmt.Errorf("%w: durations must not be negative", ErrInvalidConfig)
	}
	return nil
}

// ClusterNames lists every cluster the filter may route to.
func (c *Config) ClusterNames() []string {
	if c.Cluster != "" {
		return []string{c.Cluster}
	}
	names := make([]string, len(c.WeightedClusters))
	for i, w := range c.WeightedClusters {
		names[i] = w.Name
	}
	return names
}
