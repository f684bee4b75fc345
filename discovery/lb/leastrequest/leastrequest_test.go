package leastrequest

import (
	"math/rand/v2"
	"testing"

	"github.com/strait-proxy/strait/discovery/lb/lbtest"
	"github.com/strait-proxy/strait/pipeline"
)

func TestIdleClusterFollowsWeights(t *testing.T) {
	for _, weights := range [][]uint32{{1, 1, 1}, {1, 2, 3, 4}, {10, 1}} {
		hosts := lbtest.Hosts(len(weights), weights)
		b, err := New(hosts, Config{})
		if err != nil {
			t.Fatal(err)
		}
		counts := lbtest.Count(200_000, func(int) pipeline.Host { return b.Choose(nil) })
		lbtest.AssertProportional(t, hosts, counts, 0.01)
	}
}

func TestBusyHostAvoided(t *testing.T) {
	hosts := lbtest.Hosts(4, nil)
	b, _ := New(hosts, Config{ChoiceCount: 2})
	hosts[0].Host.Stats().ActiveRequests.Store(50)
	counts := lbtest.Count(100_000, func(int) pipeline.Host { return b.Choose(nil) })
	// Host 0 wins only when both draws hit it: 1/16 of picks, against 1/4 for random.
	got := float64(counts[hosts[0].Host.Address()]) / 100_000
	if got < 0.05 || got > 0.075 {
		t.Fatalf("busy host got %.3f of picks, want about 1/16", got)
	}
	// With more choices it is drawn alone even less often.
	b5, _ := New(hosts, Config{ChoiceCount: 5})
	counts = lbtest.Count(100_000, func(int) pipeline.Host { return b5.Choose(nil) })
	if got := float64(counts[hosts[0].Host.Address()]) / 100_000; got > 0.002 {
		t.Fatalf("busy host got %.4f of picks with 5 choices, want about 1/1024", got)
	}
}

// TestLoadSettlesByWeight simulates requests that stay in flight: every pick starts a
// request on the chosen host and a random in-flight request finishes. In-flight requests end
// up proportional to the weights.
func TestLoadSettlesByWeight(t *testing.T) {
	weights := []uint32{1, 3}
	hosts := lbtest.Hosts(2, weights)
	b, _ := New(hosts, Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	var inflight []pipeline.Host
	var sum [2]float64
	const steps = 200_000
	for s := range steps {
		h := b.Choose(nil)
		h.Stats().ActiveRequests.Add(1)
		inflight = append(inflight, h)
		if len(inflight) > 40 { // keep about 40 requests in flight
			k := rng.IntN(len(inflight))
			inflight[k].Stats().ActiveRequests.Add(-1)
			inflight[k] = inflight[len(inflight)-1]
			inflight = inflight[:len(inflight)-1]
		}
		if s > steps/2 {
			for i, e := range hosts {
				sum[i] += float64(e.Host.Stats().ActiveRequests.Load())
			}
		}
	}
	ratio := sum[1] / sum[0]
	if ratio < 2.5 || ratio > 3.5 {
		t.Fatalf("average in-flight ratio heavy/light = %.2f, want about 3 (the weight ratio)", ratio)
	}
}

func TestRetryAvoidsPrevious(t *testing.T) {
	b, _ := New(lbtest.Hosts(3, []uint32{100, 1, 1}), Config{})
	for range 2000 {
		first := b.Choose(nil)
		if b.Choose(&pipeline.LBContext{Attempt: 1, Previous: first}) == first {
			t.Fatalf("retry returned the previous host %s", first.Address())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{ChoiceCount: 1}).Validate(); err == nil {
		t.Fatal("choice_count 1 accepted")
	}
	if err := (Config{ChoiceCount: 2}).Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Factory(Config{ChoiceCount: 1000}); err == nil {
		t.Fatal("choice_count 1000 accepted")
	}
}

var sink pipeline.Host

func BenchmarkChoose(b *testing.B) {
	bal, _ := New(lbtest.Hosts(16, []uint32{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}), Config{})
	b.ReportAllocs()
	for b.Loop() {
		sink = bal.Choose(nil)
	}
}
