package pipeline

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Stats is the store of named counters and gauges the data path updates. Names follow
// strait_<component>_<name>, with labels inlined Prometheus-style
// (`strait_tcp_proxy_downstream_rx_bytes_total{stat_prefix="x"}`). A counter is looked up once
// when a factory is built and then updated atomically per event. The zero value is not
// usable; a nil *Stats hands out detached counters, so code never needs nil checks.
type Stats struct {
	mu       sync.Mutex
	counters map[string]*atomic.Uint64
	gauges   map[string]*atomic.Int64
}

// NewStats returns an empty store.
func NewStats() *Stats {
	return &Stats{counters: map[string]*atomic.Uint64{}, gauges: map[string]*atomic.Int64{}}
}

// Counter returns the counter with this name, creating it at zero.
func (s *Stats) Counter(name string) *atomic.Uint64 {
	if s == nil {
		return new(atomic.Uint64)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counters[name]
	if !ok {
		c = new(atomic.Uint64)
		s.counters[name] = c
	}
	return c
}

// Gauge returns the gauge with this name, creating it at zero.
func (s *Stats) Gauge(name string) *atomic.Int64 {
	if s == nil {
		return new(atomic.Int64)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gauges[name]
	if !ok {
		g = new(atomic.Int64)
		s.gauges[name] = g
	}
	return g
}

// Sample is one named value.
type Sample struct {
	Name  string
	Value int64
}

// Snapshot returns every counter and gauge, sorted by name.
func (s *Stats) Snapshot() []Sample {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	out := make([]Sample, 0, len(s.counters)+len(s.gauges))
	for n, c := range s.counters {
		out = append(out, Sample{n, int64(c.Load())})
	}
	for n, g := range s.gauges {
		out = append(out, Sample{n, g.Load()})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Value returns the current value of a counter or gauge, and whether it exists.
func (s *Stats) Value(name string) (int64, bool) {
	if s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.counters[name]; ok {
		return int64(c.Load()), true
	}
	if g, ok := s.gauges[name]; ok {
		return g.Load(), true
	}
	return 0, false
}
