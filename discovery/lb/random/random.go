// Package random is the RANDOM load-balancing policy: every pick is an independent draw,
// each host with probability proportional to its weight (O(1), alias method), lock-free.
//
// Who may call it: discovery's clusters, through lb.Factory. See README.md.
package random

import (
	"math/rand/v2"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/discovery/lb/internal/alias"
	"github.com/strait-proxy/strait/pipeline"
)

// Balancer draws hosts at random.
type Balancer struct {
	hosts []pipeline.Host
	table alias.Table
}

var _ lb.Balancer = (*Balancer)(nil)

// Factory returns an lb.Factory for this policy.
func Factory() lb.Factory {
	return func(hosts []lb.Endpoint) (lb.Balancer, error) { return New(hosts) }
}

// New builds a balancer.
func New(hosts []lb.Endpoint) (*Balancer, error) {
	if err := lb.CheckEndpoints(hosts); err != nil {
		return nil, err
	}
	b := &Balancer{hosts: make([]pipeline.Host, len(hosts))}
	weights := make([]uint32, len(hosts))
	for i, e := range hosts {
		b.hosts[i] = e.Host
		weights[i] = e.Weight
	}
	b.table = alias.New(weights)
	return b, nil
}

// Choose implements lb.Balancer. A retry redraws (up to four times) while it lands on the
// previous host, then takes the next host in the list, so it never repeats the previous host
// when another exists.
func (b *Balancer) Choose(ctx *pipeline.LBContext) pipeline.Host {
	i := b.table.Pick(rand.Uint64())
	avoid := lb.Avoid(ctx)
	if avoid == nil || len(b.hosts) == 1 {
		return b.hosts[i]
	}
	for range 4 {
		if b.hosts[i] != avoid {
			return b.hosts[i]
		}
		i = b.table.Pick(rand.Uint64())
	}
	for k := range len(b.hosts) {
		if h := b.hosts[(i+k)%len(b.hosts)]; h != avoid {
			return h
		}
	}
	return b.hosts[i] // every entry is the previous host (duplicates)
}
