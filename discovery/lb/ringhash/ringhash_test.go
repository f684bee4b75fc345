package ringhash

import (
	"testing"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/discovery/lb/lbtest"
	"github.com/strait-proxy/strait/pipeline"
)

func keyed(k int) *pipeline.LBContext {
	return &pipeline.LBContext{HashKey: lb.Mix64(uint64(k)), HasHash: true}
}

func TestWeightsRespected(t *testing.T) {
	for _, weights := range [][]uint32{{1, 1, 1, 1}, {1, 2, 3, 4}} {
		hosts := lbtest.Hosts(len(weights), weights)
		// A large ring spreads keys evenly; Envoy's 1024 default gives about ±10%.
		b, err := New(hosts, Config{MinRingSize: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		counts := lbtest.Count(200_000, func(i int) pipeline.Host { return b.Choose(keyed(i)) })
		lbtest.AssertProportional(t, hosts, counts, 0.05)
	}
}

func TestSameKeySameHost(t *testing.T) {
	b, _ := New(lbtest.Hosts(5, nil), Config{})
	for k := range 1000 {
		if b.Choose(keyed(k)) != b.Choose(keyed(k)) {
			t.Fatalf("key %d mapped to two hosts", k)
		}
	}
	// Without a hash key the downstream IP is the key: one client, one host, any port.
	a := &pipeline.LBContext{DownstreamAddr: lbtest.TCPAddr(7)}
	other := *lbtest.TCPAddr(7)
	other.Port++
	c := &pipeline.LBContext{DownstreamAddr: &other}
	if b.Choose(a) != b.Choose(c) {
		t.Fatal("the same client IP mapped to two hosts")
	}
}

// TestAddingAHostMovesFewKeys: with N hosts, adding one moves about 1/(N+1) of the keys, all
// of them to the new host.
func TestAddingAHostMovesFewKeys(t *testing.T) {
	const n, keys = 10, 100_000
	all := lbtest.Hosts(n+1, nil)
	before, _ := New(all[:n], Config{})
	after, _ := New(all, Config{})
	moved, toNew := 0, 0
	for k := range keys {
		x, y := before.Choose(keyed(k)), after.Choose(keyed(k))
		if x != y {
			moved++
			if y == all[n].Host {
				toNew++
			}
		}
	}
	frac := float64(moved) / keys
	t.Logf("adding an 11th host moved %.4f of keys (ideal %.4f), %d of them to the new host", frac, 1.0/(n+1), toNew)
	if frac > 1.0/(n+1)*1.5 || frac < 1.0/(n+1)*0.5 {
		t.Fatalf("%.3f of keys moved, want about %.3f", frac, 1.0/(n+1))
	}
	if toNew != moved {
		t.Fatalf("%d keys moved between old hosts; only the new host may take keys", moved-toNew)
	}
}

func TestRingSizes(t *testing.T) {
	b, _ := New(lbtest.Hosts(3, nil), Config{})
	if b.Size() < DefaultMinRingSize || b.Size() > 2*DefaultMinRingSize {
		t.Fatalf("ring size %d, want between %d and twice that", b.Size(), DefaultMinRingSize)
	}
	b, _ = New(lbtest.Hosts(3, []uint32{1, 1, 1000}), Config{MinRingSize: 1024, MaxRingSize: 4096})
	if b.Size() > 4096 {
		t.Fatalf("ring size %d exceeds the maximum 4096", b.Size())
	}
	if err := (Config{MinRingSize: 10, MaxRingSize: 5}).Validate(); err == nil {
		t.Fatal("min > max accepted")
	}
	if err := (Config{MaxRingSize: MaxRingSize + 1}).Validate(); err == nil {
		t.Fatal("max ring size above the limit accepted")
	}
}

func TestRetryAvoidsPrevious(t *testing.T) {
	b, _ := New(lbtest.Hosts(3, nil), Config{})
	for k := range 1000 {
		first := b.Choose(keyed(k))
		ctx := keyed(k)
		ctx.Attempt, ctx.Previous = 1, first
		if b.Choose(ctx) == first {
			t.Fatalf("key %d: retry returned the previous host", k)
		}
	}
}

var sink pipeline.Host

func BenchmarkChoose(b *testing.B) {
	bal, _ := New(lbtest.Hosts(16, nil), Config{})
	ctx := &pipeline.LBContext{DownstreamAddr: lbtest.TCPAddr(1)}
	b.ReportAllocs()
	for b.Loop() {
		sink = bal.Choose(ctx)
	}
}

func BenchmarkChooseHashKey(b *testing.B) {
	bal, _ := New(lbtest.Hosts(16, nil), Config{})
	ctx := keyed(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ctx.HashKey = uint64(i) * 0x9e3779b97f4a7c15
		sink = bal.Choose(ctx)
	}
}
