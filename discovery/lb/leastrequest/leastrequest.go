// Package leastrequest is the LEAST_REQUEST load-balancing policy: power of N choices. Each
// pick samples choice_count hosts (weighted by load_balancing_weight) and takes the one with
// the fewest active requests per unit of weight, reading HostStats.ActiveRequests. Lock-free.
//
// Who may call it: discovery's clusters, through lb.Factory. See README.md.
package leastrequest

import (
	"fmt"
	"math/rand/v2"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/discovery/lb/internal/alias"
	"github.com/strait-proxy/strait/pipeline"
)

// DefaultChoiceCount is Envoy's least_request_lb_config.choice_count default.
const DefaultChoiceCount = 2

// MaxChoiceCount bounds the number of samples per pick.
const MaxChoiceCount = 100

// Config is least_request_lb_config.
type Config struct {
	// ChoiceCount is how many hosts are sampled per pick; 0 means DefaultChoiceCount.
	ChoiceCount uint32
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.ChoiceCount == 1 || c.ChoiceCount > MaxChoiceCount {
		return fmt.Errorf("%w: least_request choice_count %d: must be between 2 and %d", lb.ErrInvalidConfig, c.ChoiceCount, MaxChoiceCount)
	}
	return nil
}

// Balancer samples hosts and keeps the least loaded.
type Balancer struct {
	hosts   []pipeline.Host
	stats   []*pipeline.HostStats
	weights []uint64
	table   alias.Table
	choices int
}

var _ lb.Balancer = (*Balancer)(nil)

// Factory returns an lb.Factory for this policy, or the configuration error.
func Factory(cfg Config) (lb.Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return func(hosts []lb.Endpoint) (lb.Balancer, error) { return New(hosts, cfg) }, nil
}

// New builds a balancer.
func New(hosts []lb.Endpoint, cfg Config) (*Balancer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := lb.CheckEndpoints(hosts); err != nil {
		return nil, err
	}
	b := &Balancer{
		hosts:   make([]pipeline.Host, len(hosts)),
		stats:   make([]*pipeline.HostStats, len(hosts)),
		weights: make([]uint64, len(hosts)),
		choices: int(cfg.ChoiceCount),
	}
	if b.choices == 0 {
		b.choices = DefaultChoiceCount
	}
	w32 := make([]uint32, len(hosts))
	for i, e := range hosts {
		b.hosts[i] = e.Host
		b.stats[i] = e.Host.Stats()
		b.weights[i] = uint64(e.Weight)
		w32[i] = e.Weight
	}
	b.table = alias.New(w32)
	return b, nil
}

// Choose implements lb.Balancer. Candidates are drawn with probability proportional to their
// weight and compared by active requests divided by weight; ties go to the first draw. So an
// idle cluster is split exactly by weight, and under load the in-flight requests settle in
// proportion to the weights. A retry skips the previous host when it is drawn.
func (b *Balancer) Choose(ctx *pipeline.LBContext) pipeline.Host {
	n := len(b.hosts)
	if n == 1 {
		return b.hosts[0]
	}
	avoid := lb.Avoid(ctx)
	best := -1
	var bestActive uint64
	for range b.choices {
		i := b.table.Pick(rand.Uint64())
		if avoid != nil && b.hosts[i] == avoid {
			i = (i + 1) % n // deterministic neighbour keeps the pick O(1)
			if b.hosts[i] == avoid {
				continue
			}
		}
		active := uint64(max(b.stats[i].ActiveRequests.Load(), 0))
		// active_i/w_i < active_best/w_best, by cross-multiplication (both < 2^63 in
		// practice: active counts fit in 31 bits, weights in 32).
		if best < 0 || active*b.weights[best] < bestActive*b.weights[i] {
			best, bestActive = i, active
		}
	}
	if best < 0 {
		// Every draw hit the previous host and its neighbour was a duplicate of it.
		for k := range n {
			if h := b.hosts[k]; h != avoid {
				return h
			}
		}
		return b.hosts[0]
	}
	return b.hosts[best]
}
