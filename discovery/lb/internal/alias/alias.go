// Package alias is Vose's alias method: O(1) sampling of an index with probability
// proportional to its weight, from one 64-bit random number. The random and leastrequest
// policies share it; nothing outside discovery/lb may import it.
package alias

import "math"

// Table samples indices 0..n-1 proportionally to the weights it was built from. It is
// immutable, so Pick is safe for concurrent use.
type Table struct {
	// threshold[i] is the probability, scaled to 2^32, of keeping column i; otherwise the
	// pick is alias[i]. nil when every weight is equal (uniform sampling).
	threshold []uint64
	alias     []uint32
	n         uint64
}

// New builds a table. Weights must be positive and len(weights) at most 2^32.
func New(weights []uint32) Table {
	n := len(weights)
	t := Table{n: uint64(n)}
	uniform := true
	var sum float64
	for _, w := range weights {
		uniform = uniform && w == weights[0]
		sum += float64(w)
	}
	if uniform || n < 2 {
		return t
	}
	t.threshold = make([]uint64, n)
	t.alias = make([]uint32, n)
	scaled := make([]float64, n)
	small := make([]int, 0, n)
	large := make([]int, 0, n)
	for i, w := range weights {
		scaled[i] = float64(w) * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.threshold[s] = uint64(math.Round(scaled[s] * (1 << 32)))
		t.alias[s] = uint32(l)
		scaled[l] = scaled[l] + scaled[s] - 1
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What remains is 1 up to rounding error: always keep.
	for _, i := range large {
		t.threshold[i] = 1 << 32
	}
	for _, i := range small {
		t.threshold[i] = 1 << 32
	}
	return t
}

// Pick maps 64 random bits to an index.
func (t *Table) Pick(r uint64) int {
	i := ((r >> 32) * t.n) >> 32 // Lemire's multiply-shift: uniform column
	if t.threshold == nil || uint64(uint32(r)) < t.threshold[i] {
		return int(i)
	}
	return int(t.alias[i])
}

// Len is the number of indices.
func (t *Table) Len() int { return int(t.n) }
