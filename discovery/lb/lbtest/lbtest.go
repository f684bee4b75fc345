// Package lbtest holds helpers for load-balancer tests: a minimal pipeline.Host and
// distribution checks. Only tests import it.
package lbtest

import (
	"fmt"
	"math"
	"net"
	"testing"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/pipeline"
)

// Host is a pipeline.Host with a fixed address.
type Host struct {
	Addr  string
	stats pipeline.HostStats
}

// Address implements pipeline.Host.
func (h *Host) Address() string { return h.Addr }

// Stats implements pipeline.Host.
func (h *Host) Stats() *pipeline.HostStats { return &h.stats }

// Hosts returns n hosts 10.0.<i/256>.<i%256>:80 with the given weights (all 1 if weights is
// nil).
func Hosts(n int, weights []uint32) []lb.Endpoint {
	out := make([]lb.Endpoint, n)
	for i := range out {
		w := uint32(1)
		if weights != nil {
			w = weights[i]
		}
		out[i] = lb.Endpoint{Host: &Host{Addr: fmt.Sprintf("10.0.%d.%d:80", i/256, i%256)}, Weight: w}
	}
	return out
}

// Count calls choose n times and counts picks per address.
func Count(n int, choose func(i int) pipeline.Host) map[string]int {
	counts := map[string]int{}
	for i := range n {
		h := choose(i)
		if h == nil {
			counts[""]++
			continue
		}
		counts[h.Address()]++
	}
	return counts
}

// AssertProportional fails t unless counts follow the endpoints' weights within relTol of
// each expected count (plus 4 binomial standard deviations for random policies).
func AssertProportional(t testing.TB, hosts []lb.Endpoint, counts map[string]int, relTol float64) {
	t.Helper()
	var total, sum float64
	for _, c := range counts {
		total += float64(c)
	}
	for _, e := range hosts {
		sum += float64(e.Weight)
	}
	if counts[""] > 0 {
		t.Errorf("%d picks returned no host", counts[""])
	}
	for _, e := range hosts {
		p := float64(e.Weight) / sum
		want := p * total
		tol := relTol*want + 4*math.Sqrt(total*p*(1-p))
		got := float64(counts[e.Host.Address()])
		if math.Abs(got-want) > tol {
			t.Errorf("host %s (weight %d): %v picks, want %.0f ± %.0f", e.Host.Address(), e.Weight, got, want, tol)
		}
	}
}

// TCPAddr returns a client address for hashing tests.
func TCPAddr(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(192, 168, byte(i>>8), byte(i)), Port: 40000 + i%1000}
}
