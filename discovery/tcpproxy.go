package discovery

import (
	"fmt"
	"time"

	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/tcpproxy"
)

// TCPProxyTypeURL is Envoy's tcp_proxy filter configuration type.
const TCPProxyTypeURL = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"

// TCPProxyFilter is the built-in tcp_proxy registration, for cmd/strait's ordered list.
func TCPProxyFilter() NetworkFilter {
	return NetworkFilter{TypeURL: TCPProxyTypeURL, Decode: DecodeTCPProxy}
}

// DecodeTCPProxy translates envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy into a
// *tcpproxy.Config. Supported: stat_prefix, cluster, weighted_clusters, idle_timeout
// (absent: tcpproxy.DefaultIdleTimeout; 0s disables), max_connect_attempts (default 1),
// max_downstream_connection_duration. Any other populated field is an error naming it.
func DecodeTCPProxy(a *anypb.Any) (pipeline.NetworkFilterConfig, error) {
	var p tcpproxyv3.TcpProxy
	if err := a.UnmarshalTo(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return TranslateTCPProxy(&p)
}

// TranslateTCPProxy is DecodeTCPProxy on an already decoded message.
func TranslateTCPProxy(p *tcpproxyv3.TcpProxy) (*tcpproxy.Config, error) {
	var l errs
	checkSupported(p.ProtoReflect(), "", &l)
	if len(l.list) > 0 {
		return nil, l.err()
	}
	cfg := &tcpproxy.Config{
		StatPrefix:         p.GetStatPrefix(),
		Cluster:            p.GetCluster(),
		IdleTimeout:        tcpproxy.DefaultIdleTimeout,
		MaxConnectAttempts: 1,
	}
	for i, c := range p.GetWeightedClusters().GetClusters() {
		cfg.WeightedClusters = append(cfg.WeightedClusters, tcpproxy.WeightedCluster{Name: c.GetName(), Weight: c.GetWeight()})
		if c.GetWeight() == 0 {
			l.add(fmt.Sprintf("weighted_clusters.clusters[%d].weight", i), fmt.Errorf("%w: must be at least 1", ErrInvalid))
		}
	}
	if p.IdleTimeout != nil {
		cfg.IdleTimeout = duration(p.IdleTimeout.AsDuration(), "idle_timeout", &l)
	}
	if p.MaxConnectAttempts != nil {
		cfg.MaxConnectAttempts = int(p.MaxConnectAttempts.GetValue())
	}
	if p.MaxDownstreamConnectionDuration != nil {
		cfg.MaxDownstreamConnectionDuration = duration(p.MaxDownstreamConnectionDuration.AsDuration(), "max_downstream_connection_duration", &l)
	}
	if len(l.list) == 0 {
		// Envoy's own constraints (protoc-gen-validate rules), then the filter's.
		if err := p.ValidateAll(); err != nil {
			l.add("", fmt.Errorf("%w: %v", ErrInvalid, err))
		} else if err := cfg.Validate(); err != nil {
			l.add("", err)
		}
	}
	if len(l.list) > 0 {
		return nil, l.err()
	}
	return cfg, nil
}

// duration rejects negative durations (protobuf allows them).
func duration(d time.Duration, field string, l *errs) time.Duration {
	if d < 0 {
		l.add(field, fmt.Errorf("%w: %v is negative", ErrInvalid, d))
		return 0
	}
	return d
}
