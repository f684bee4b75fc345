// Package roundrobin is the ROUND_ROBIN load-balancing policy: hosts in turn, each as often
// as its weight, smoothly interleaved (earliest-deadline-first), lock-free.
//
// Who may call it: discovery's clusters, through lb.Factory. See README.md.
package roundrobin

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/pipeline"
)

// MaxSchedule bounds the precomputed schedule. When the weights, divided by their greatest
// common divisor, sum to more, they are scaled down proportionally (each stays at least 1).
const MaxSchedule = 1 << 16

// Balancer walks a precomputed weighted schedule with one atomic counter.
type Balancer struct {
	hosts    []pipeline.Host
	schedule []uint32 // indices into hosts
	next     atomic.Uint64
}

var _ lb.Balancer = (*Balancer)(nil)

// Factory returns an lb.Factory for this policy.
func Factory() lb.Factory {
	return func(hosts []lb.Endpoint) (lb.Balancer, error) { return New(hosts) }
}

// New builds a balancer. The starting point of the schedule is random, so that many proxies
// started together do not all send their first connections to the same host.
func New(hosts []lb.Endpoint) (*Balancer, error) {
	if err := lb.CheckEndpoints(hosts); err != nil {
		return nil, err
	}
	b := &Balancer{hosts: make([]pipeline.Host, len(hosts))}
	weights := make([]uint64, len(hosts))
	for i, e := range hosts {
		b.hosts[i] = e.Host
		weights[i] = uint64(e.Weight)
	}
	b.schedule = Schedule(weights, MaxSchedule)
	b.next.Store(rand.Uint64N(uint64(len(b.schedule))))
	return b, nil
}

// Choose implements lb.Balancer.
func (b *Balancer) Choose(ctx *pipeline.LBContext) pipeline.Host {
	n := uint64(len(b.schedule))
	i := b.next.Add(1)
	h := b.hosts[b.schedule[i%n]]
	if avoid := lb.Avoid(ctx); avoid != nil && h == avoid && len(b.hosts) > 1 {
		for k := uint64(1); k < n; k++ {
			if c := b.hosts[b.schedule[(i+k)%n]]; c != avoid {
				return c
			}
		}
	}
	return h
}

// Schedule returns one period of the smooth weighted round-robin order over len(weights)
// hosts: host i appears weights[i]/g times (g the greatest common divisor), every
// occurrence placed at its earliest deadline, so heavy hosts are spread out rather than
// bunched (at every prefix of the period each host is less than two picks from its exact
// share). When the period would exceed limit, weights are scaled to fit first.
func Schedule(weights []uint64, limit int) []uint32 {
	g := uint64(0)
	for _, w := range weights {
		g = gcd(g, w)
	}
	var sum uint64
	w := make([]uint64, len(weights))
	for i, x := range weights {
		w[i] = x / g
		sum += w[i]
	}
	if sum > uint64(limit) {
		total := float64(sum)
		sum = 0
		for i := range w {
			// Proportional share of limit, rounded, at least 1.
			v := uint64(float64(w[i])/total*float64(limit) + 0.5)
			w[i] = max(v, 1)
			sum += w[i]
		}
	}
	h := make(edf, len(w))
	for i := range w {
		h[i] = slot{idx: uint32(i), weight: w[i]}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	out := make([]uint32, 0, sum)
	for uint64(len(out)) < sum {
		out = append(out, h[0].idx)
		h[0].next++
		h.down(0)
	}
	return out
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// slot is one host in the earliest-deadline-first heap. Its k-th pick (k from 0) is due at
// (k+1/2)/weight: the half offset (Webster's divisors) keeps every host within two
// pick of its exact share at every point of the period, where deadlines k/weight let a heavy
// host run ahead by several picks.
type slot struct {
	idx    uint32
	weight uint64
	next   uint64 // k of the next pick
}

type edf []slot

func (h edf) less(i, j int) bool {
	// (2next_i+1)/weight_i < (2next_j+1)/weight_j, exactly; ties by index for determinism.
	a, b := (2*h[i].next+1)*h[j].weight, (2*h[j].next+1)*h[i].weight
	if a != b {
		return a < b
	}
	return h[i].idx < h[j].idx
}

// down restores the min-heap order below i.
func (h edf) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
