// Package ringhash is the RING_HASH load-balancing policy (Ketama-style consistent hashing,
// as Envoy builds it): every host owns points on a 64-bit ring in proportion to its weight,
// and a request goes to the first point at or after its hash. Adding or removing one of N
// hosts moves only about 1/N of the keys.
//
// Who may call it: discovery's clusters, through lb.Factory. See README.md.
package ringhash

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/bytedance/gopkg/util/xxhash3"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/pipeline"
)

// Envoy's ring_hash_lb_config defaults and limit.
const (
	DefaultMinRingSize = 1024
	DefaultMaxRingSize = 8 * 1024 * 1024
	MaxRingSize        = 8 * 1024 * 1024
)

// Config is ring_hash_lb_config.
type Config struct {
	// MinRingSize is the least number of ring points; 0 means DefaultMinRingSize. More
	// points spread keys more evenly across hosts.
	MinRingSize uint64
	// MaxRingSize caps the ring; 0 means DefaultMaxRingSize.
	MaxRingSize uint64
}

func (c Config) sizes() (lo, hi uint64) {
	lo, hi = c.MinRingSize, c.MaxRingSize
	if lo == 0 {
		lo = DefaultMinRingSize
	}
	if hi == 0 {
		hi = DefaultMaxRingSize
	}
	return lo, hi
}

// Validate checks the configuration.
func (c Config) Validate() error {
	lo, hi := c.sizes()
	if hi > MaxRingSize {
		return fmt.Errorf("%w: ring_hash maximum_ring_size %d exceeds %d", lb.ErrInvalidConfig, hi, MaxRingSize)
	}
	if lo > hi {
		return fmt.Errorf("%w: ring_hash minimum_ring_size %d exceeds maximum_ring_size %d", lb.ErrInvalidConfig, lo, hi)
	}
	return nil
}

// Balancer is an immutable ring.
type Balancer struct {
	hosts  []pipeline.Host
	hashes []uint64 // sorted ring points
	owner  []uint32 // owner[i] indexes hosts for hashes[i]
}

var _ lb.Balancer = (*Balancer)(nil)

// Factory returns an lb.Factory for this policy, or the configuration error.
func Factory(cfg Config) (lb.Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return func(hosts []lb.Endpoint) (lb.Balancer, error) { return New(hosts, cfg) }, nil
}

// New builds the ring. The lightest host gets P points, where P is the least power of two
// that makes the ring at least min_ring_size; host i gets round(P*w_i/w_min) points, hashed
// from "<address>_<k>" with xxhash3. If that exceeds max_ring_size, every count is scaled
// down to fit (at least one point each).
//
// Unlike Envoy, which sizes the ring exactly to min_ring_size, rounding P to a power of two
// keeps every existing host's points unchanged when a host joins or leaves (until the host
// count crosses a power of two), so only the keys of the joining or leaving host move. The
// ring is between one and two times min_ring_size.
func New(hosts []lb.Endpoint, cfg Config) (*Balancer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := lb.CheckEndpoints(hosts); err != nil {
		return nil, err
	}
	lo, hi := cfg.sizes()
	var sum float64
	minW := uint32(math.MaxUint32)
	for _, e := range hosts {
		sum += float64(e.Weight)
		minW = min(minW, e.Weight)
	}
	p := uint64(1)
	for float64(p)*sum/float64(minW) < float64(lo) {
		p <<= 1
	}
	counts := make([]uint64, len(hosts))
	var total uint64
	for i, e := range hosts {
		counts[i] = uint64(math.Round(float64(p) * float64(e.Weight) / float64(minW)))
		total += counts[i]
	}
	if total > hi {
		total = 0
		for i, e := range hosts {
			counts[i] = max(uint64(float64(e.Weight)/sum*float64(hi)), 1)
			total += counts[i]
		}
	}
	b := &Balancer{hosts: make([]pipeline.Host, len(hosts))}
	type point struct {
		hash  uint64
		owner uint32
	}
	points := make([]point, 0, total)
	buf := make([]byte, 0, 64)
	for i, e := range hosts {
		b.hosts[i] = e.Host
		buf = append(buf[:0], e.Host.Address()...)
		buf = append(buf, '_')
		prefix := len(buf)
		for k := range counts[i] {
			buf = strconv.AppendUint(buf[:prefix], k, 10)
			points = append(points, point{xxhash3.Hash(buf), uint32(i)})
		}
	}
	slices.SortFunc(points, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.owner) - int(b.owner)
	})
	b.hashes = make([]uint64, len(points))
	b.owner = make([]uint32, len(points))
	for i, p := range points {
		b.hashes[i], b.owner[i] = p.hash, p.owner
	}
	return b, nil
}

// Size is the number of points on the ring.
func (b *Balancer) Size() int { return len(b.hashes) }

// Choose implements lb.Balancer. The key is lb.Hash(ctx) (the request's hash or the
// downstream IP); without one the pick is random. A retry walks the ring past the previous
// host's points to the next host, as if the previous host had been removed.
func (b *Balancer) Choose(ctx *pipeline.LBContext) pipeline.Host {
	key, ok := lb.Hash(ctx)
	if !ok {
		key = rand.Uint64()
	}
	n := len(b.hashes)
	// First point >= key, wrapping to the start.
	i, _ := slices.BinarySearch(b.hashes, key)
	if i == n {
		i = 0
	}
	h := b.hosts[b.owner[i]]
	if avoid := lb.Avoid(ctx); avoid != nil && h == avoid && len(b.hosts) > 1 {
		for k := 1; k < n; k++ {
			if c := b.hosts[b.owner[(i+k)%n]]; c != avoid {
				return c
			}
		}
	}
	return h
}
