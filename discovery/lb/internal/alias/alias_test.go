package alias

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestProportional(t *testing.T) {
	cases := [][]uint32{{1}, {3, 3, 3}, {1, 2, 3, 4}, {100, 1}, {1, 1, 1, 1, 1, 50}, {7, 0x7fffffff}}
	for _, weights := range cases {
		tab := New(weights)
		var sum float64
		for _, w := range weights {
			sum += float64(w)
		}
		const n = 400_000
		counts := make([]int, len(weights))
		rng := rand.New(rand.NewPCG(1, 2))
		for range n {
			counts[tab.Pick(rng.Uint64())]++
		}
		for i, w := range weights {
			want := float64(w) / sum * n
			// 4 standard deviations of a binomial count, plus 0.2% of n for rounding.
			tol := 4*math.Sqrt(want*(1-float64(w)/sum)) + 0.002*n
			if d := float64(counts[i]) - want; d > tol || d < -tol {
				t.Errorf("weights %v: index %d picked %d times, want %.0f ± %.0f", weights, i, counts[i], want, tol)
			}
		}
	}
}

func BenchmarkPick(b *testing.B) {
	tab := New([]uint32{1, 2, 3, 4, 5, 6, 7, 8})
	b.ReportAllocs()
	var s int
	for i := 0; b.Loop(); i++ {
		s += tab.Pick(uint64(i) * 0x9e3779b97f4a7c15)
	}
	_ = s
}
