package roundrobin

import (
	"sync"
	"testing"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/discovery/lb/lbtest"
	"github.com/strait-proxy/strait/pipeline"
)

func TestEqualWeightsStrictRotation(t *testing.T) {
	hosts := lbtest.Hosts(4, nil)
	b, err := New(hosts)
	if err != nil {
		t.Fatal(err)
	}
	// Any 4 consecutive picks visit every host exactly once.
	for round := range 10 {
		seen := map[string]bool{}
		for range 4 {
			seen[b.Choose(nil).Address()] = true
		}
		if len(seen) != 4 {
			t.Fatalf("round %d visited %d distinct hosts, want 4", round, len(seen))
		}
	}
}

func TestWeightsExactOverAPeriod(t *testing.T) {
	weights := []uint32{5, 1, 3, 1}
	hosts := lbtest.Hosts(4, weights)
	b, _ := New(hosts)
	// Any window of 10 (the sum of weights) consecutive picks matches the weights exactly.
	counts := lbtest.Count(10*7, func(int) pipeline.Host { return b.Choose(nil) })
	for i, e := range hosts {
		if got, want := counts[e.Host.Address()], 7*int(weights[i]); got != want {
			t.Errorf("host %d (weight %d): %d picks, want %d", i, weights[i], got, want)
		}
	}
}

func TestNoHostFallsBehind(t *testing.T) {
	// Smoothness: at every point of the schedule each host has had its weighted share of the
	// picks so far, less than 2 picks ahead or behind, so a heavy host is interleaved with the others
	// rather than served in one burst per period. (Measured: 1.54 for weights 1,1,1,1,9, at most
	// 1.1 over random weights; deadlines k/w instead of (k+1/2)/w reach 2.8.)
	for _, weights := range [][]uint32{{5, 1, 1}, {7, 3, 2, 1}, {1, 1, 1, 1, 9}, {2, 3}, {10, 10, 1}} {
		var sum float64
		for _, w := range weights {
			sum += float64(w)
		}
		w64 := make([]uint64, len(weights))
		for i, w := range weights {
			w64[i] = uint64(w)
		}
		sched := Schedule(w64, MaxSchedule)
		got := make([]float64, len(weights))
		for m := 1; m <= 3*len(sched); m++ {
			got[sched[(m-1)%len(sched)]]++
			for i := range weights {
				share := float64(m) * float64(weights[i]) / sum
				if d := got[i] - share; d > 2 || d < -2 {
					t.Fatalf("weights %v: after %d picks host %d has %v picks, its share is %.2f", weights, m, i, got[i], share)
				}
			}
		}
	}
}

func TestHugeWeightsScaled(t *testing.T) {
	weights := []uint32{4_000_000_000, 1_000_000_000, 7}
	hosts := lbtest.Hosts(3, weights)
	b, _ := New(hosts)
	if len(b.schedule) > MaxSchedule+3 {
		t.Fatalf("schedule has %d entries, want <= %d", len(b.schedule), MaxSchedule+3)
	}
	counts := lbtest.Count(len(b.schedule)*4, func(int) pipeline.Host { return b.Choose(nil) })
	lbtest.AssertProportional(t, hosts[:2], map[string]int{
		hosts[0].Host.Address(): counts[hosts[0].Host.Address()],
		hosts[1].Host.Address(): counts[hosts[1].Host.Address()],
	}, 0.001)
	if counts[hosts[2].Host.Address()] == 0 {
		t.Fatal("a host with a tiny weight is never picked; every host must keep at least one slot")
	}
}

func TestRetryAvoidsPrevious(t *testing.T) {
	b, _ := New(lbtest.Hosts(3, []uint32{100, 1, 1}))
	for range 300 {
		first := b.Choose(nil)
		ctx := &pipeline.LBContext{Attempt: 1, Previous: first}
		if again := b.Choose(ctx); again == first {
			t.Fatalf("retry returned the previous host %s", first.Address())
		}
	}
	one, _ := New(lbtest.Hosts(1, nil))
	h := one.Choose(nil)
	if got := one.Choose(&pipeline.LBContext{Attempt: 1, Previous: h}); got != h {
		t.Fatal("with a single host a retry must still get it")
	}
}

func TestRejectsBadInput(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Fatal("no hosts accepted")
	}
	hosts := lbtest.Hosts(2, []uint32{1, 0})
	if _, err := New(hosts); err == nil {
		t.Fatal("zero weight accepted")
	}
}

func TestConcurrentChoose(t *testing.T) {
	hosts := lbtest.Hosts(3, []uint32{1, 2, 3})
	b, _ := New(hosts)
	var mu sync.Mutex
	total := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := lbtest.Count(6000, func(int) pipeline.Host { return b.Choose(nil) })
			mu.Lock()
			for k, v := range c {
				total[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	// 24000 picks are 4000 whole periods: the shared counter makes the split exact.
	for i, e := range hosts {
		if got, want := total[e.Host.Address()], 4000*(i+1); got != want {
			t.Errorf("host %d: %d picks, want %d", i, got, want)
		}
	}
}

var sink pipeline.Host

func BenchmarkChoose(b *testing.B) {
	bal, _ := New(lbtest.Hosts(16, []uint32{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}))
	var bl lb.Balancer = bal
	b.ReportAllocs()
	for b.Loop() {
		sink = bl.Choose(nil)
	}
}

func BenchmarkChooseParallel(b *testing.B) {
	bal, _ := New(lbtest.Hosts(16, nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var h pipeline.Host
		for pb.Next() {
			h = bal.Choose(nil)
		}
		_ = h
	})
}
