package random

import (
	"testing"

	"github.com/strait-proxy/strait/discovery/lb/lbtest"
	"github.com/strait-proxy/strait/pipeline"
)

func TestWeightsRespected(t *testing.T) {
	for _, weights := range [][]uint32{{1, 1, 1, 1}, {1, 2, 3, 4}, {50, 1, 1}} {
		hosts := lbtest.Hosts(len(weights), weights)
		b, err := New(hosts)
		if err != nil {
			t.Fatal(err)
		}
		counts := lbtest.Count(200_000, func(int) pipeline.Host { return b.Choose(nil) })
		lbtest.AssertProportional(t, hosts, counts, 0.01)
	}
}

func TestRetryAvoidsPrevious(t *testing.T) {
	b, _ := New(lbtest.Hosts(2, []uint32{1000, 1}))
	for range 2000 {
		first := b.Choose(nil)
		if b.Choose(&pipeline.LBContext{Attempt: 2, Previous: first}) == first {
			t.Fatalf("retry returned the previous host %s", first.Address())
		}
	}
}

func TestRejectsBadInput(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Fatal("no hosts accepted")
	}
	if _, err := New(lbtest.Hosts(1, []uint32{0})); err == nil {
		t.Fatal("zero weight accepted")
	}
}

var sink pipeline.Host

func BenchmarkChoose(b *testing.B) {
	bal, _ := New(lbtest.Hosts(16, []uint32{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}))
	b.ReportAllocs()
	for b.Loop() {
		sink = bal.Choose(nil)
	}
}
