// Package maglev is the MAGLEV load-balancing policy (Google's Maglev consistent hashing,
// weighted as Envoy does it): a lookup table of prime size M is filled from per-host
// permutations, and a request goes to table[hash mod M]. Lookups are O(1); when a host joins
// or leaves, only a small fraction of table entries change owner.
//
// Who may call it: discovery's clusters, through lb.Factory. See README.md.
package maglev

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/bytedance/gopkg/util/xxhash3"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/pipeline"
)

// DefaultTableSize is Envoy's maglev_lb_config.table_size default.
const DefaultTableSize = 65537

// MaxTableSize is Envoy's limit for table_size.
const MaxTableSize = 5000011

// Config is maglev_lb_config.
type Config struct {
	// TableSize is the lookup table size M, a prime; 0 means DefaultTableSize. M should be
	// much larger than the host count (at least 100 times) for even shares.
	TableSize uint64
}

func (c Config) size() uint64 {
	if c.TableSize == 0 {
		return DefaultTableSize
	}
	return c.TableSize
}

// Validate checks the configuration.
func (c Config) Validate() error {
	m := c.size()
	if m > MaxTableSize {
		return fmt.Errorf("%w: maglev table_size %d exceeds %d", lb.ErrInvalidConfig, m, MaxTableSize)
	}
	if !isPrime(m) {
		return fmt.Errorf("%w: maglev table_size %d is not prime", lb.ErrInvalidConfig, m)
	}
	return nil
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// Balancer is an immutable lookup table.
type Balancer struct {
	hosts []pipeline.Host
	table []uint32 // indices into hosts
}

var _ lb.Balancer = (*Balancer)(nil)

// Factory returns an lb.Factory for this policy, or the configuration error.
func Factory(cfg Config) (lb.Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return func(hosts []lb.Endpoint) (lb.Balancer, error) { return New(hosts, cfg) }, nil
}

// New builds the table. Hosts are taken in address order, so the table does not depend on
// the order of the list. Each host's permutation is offset = h mod M, skip = h' mod (M-1) + 1
// with h = xxhash3(address) and h' a second mix of h; a host of weight w claims its next free
// preferred slot w/w_max of the turns (Envoy's weighted fill).
func New(hosts []lb.Endpoint, cfg Config) (*Balancer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := lb.CheckEndpoints(hosts); err != nil {
		return nil, err
	}
	m := cfg.size()
	if uint64(len(hosts)) > m {
		return nil, fmt.Errorf("%w: %d hosts exceed maglev table_size %d", lb.ErrInvalidConfig, len(hosts), m)
	}
	sorted := slices.Clone(hosts)
	slices.SortStableFunc(sorted, func(a, b lb.Endpoint) int { return strings.Compare(a.Host.Address(), b.Host.Address()) })
	type entry struct {
		offset, skip, next uint64
		weight, target     uint64
	}
	entries := make([]entry, len(sorted))
	b := &Balancer{hosts: make([]pipeline.Host, len(sorted)), table: make([]uint32, m)}
	var maxW uint64
	for i, e := range sorted {
		b.hosts[i] = e.Host
		h := xxhash3.HashString(e.Host.Address())
		entries[i] = entry{offset: h % m, skip: lb.Mix64(h)%(m-1) + 1, weight: uint64(e.Weight)}
		maxW = max(maxW, uint64(e.Weight))
	}
	const empty = ^uint32(0)
	for i := range b.table {
		b.table[i] = empty
	}
	for filled, i := uint64(0), 0; filled < m; i = (i + 1) % len(entries) {
		e := &entries[i]
		e.target += e.weight
		if e.target < maxW {
			continue
		}
		e.target -= maxW
		c := (e.offset + e.skip*e.next) % m
		for b.table[c] != empty {
			e.next++
			c = (e.offset + e.skip*e.next) % m
		}
		b.table[c] = uint32(i)
		e.next++
		filled++
	}
	return b, nil
}

// Choose implements lb.Balancer. The key is lb.Hash(ctx) (the request's hash or the
// downstream IP); without one the pick is random. A retry takes the next table entries until
// one belongs to another host.
func (b *Balancer) Choose(ctx *pipeline.LBContext) pipeline.Host {
	key, ok := lb.Hash(ctx)
	if !ok {
		key = rand.Uint64()
	}
	m := uint64(len(b.table))
	i := key % m
	h := b.hosts[b.table[i]]
	if avoid := lb.Avoid(ctx); avoid != nil && h == avoid && len(b.hosts) > 1 {
		for k := uint64(1); k < m; k++ {
			if c := b.hosts[b.table[(i+k)%m]]; c != avoid {
				return c
			}
		}
	}
	return h
}
