//go:build !race

// The race detector makes sync.Pool drop objects at random, so allocation counts are only
// meaningful without it.

package bolt

import "testing"

// TestCodecsZeroAllocs fails if a change makes the codec's steady state allocate: a request
// and its response through the server codec, the client codec, and both (a proxied call).
func TestCodecsZeroAllocs(t *testing.T) {
	for name, bench := range map[string]func(*testing.B){
		"server": BenchmarkServerCodec, "client": BenchmarkClientCodec, "proxy": BenchmarkProxyBoltToBolt,
	} {
		r := testing.Benchmark(bench)
		if r.N == 0 {
			t.Fatalf("%s: benchmark failed", name)
		}
		if a := r.AllocsPerOp(); a != 0 {
			t.Errorf("%s: %d allocs/op", name, a)
		}
	}
}

func TestHeadersReleaseRecycles(t *testing.T) {
	frame := request(1, "com.Svc", "", "k", "v").bytes(t)
	var f Frame
	n, cl, err := DecodeHead(frame, &f, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		h := newHeaders(frame[:n], &f, cl)
		if v, ok := h.Get("k"); !ok || v != "v" {
			t.Fatal("Get")
		}
		h.Range(func(string, string) bool { return true })
		h.Set("x", "y")
		h.Release()
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per head", allocs)
	}
	// A released head comes back empty.
	h := newHeaders(frame[:n], &f, cl)
	defer h.Release()
	if _, ok := h.Get("x"); ok || len(h.ov) != 0 {
		t.Fatal("overlay survived Release")
	}
}
