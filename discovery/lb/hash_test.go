package lb_test

import (
	"net"
	"testing"

	"github.com/strait-proxy/strait/discovery/lb"
	"github.com/strait-proxy/strait/pipeline"
)

func TestHashSourceIP(t *testing.T) {
	a := &pipeline.LBContext{DownstreamAddr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 1000}}
	b := &pipeline.LBContext{DownstreamAddr: &net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3").To4(), Port: 2000}}
	c := &pipeline.LBContext{DownstreamAddr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 4), Port: 1000}}
	ka, ok := lb.Hash(a)
	kb, _ := lb.Hash(b)
	kc, _ := lb.Hash(c)
	if !ok || ka != kb {
		t.Fatalf("same IP, other port or form: keys %x and %x differ", ka, kb)
	}
	if ka == kc {
		t.Fatal("different IPs hash alike")
	}
	if k, ok := lb.Hash(&pipeline.LBContext{HashKey: 42, HasHash: true, DownstreamAddr: a.DownstreamAddr}); !ok || k != 42 {
		t.Fatal("HashKey must win over the source address")
	}
	if _, ok := lb.Hash(nil); ok {
		t.Fatal("nil context has no key")
	}
	if _, ok := lb.Hash(&pipeline.LBContext{}); ok {
		t.Fatal("empty context has no key")
	}
	var nilAddr *net.TCPAddr
	if _, ok := lb.Hash(&pipeline.LBContext{DownstreamAddr: nilAddr}); ok {
		t.Fatal("typed nil address has no key")
	}
	u, _ := net.ResolveUnixAddr("unix", "/tmp/x.sock")
	if _, ok := lb.Hash(&pipeline.LBContext{DownstreamAddr: u}); ok {
		t.Fatal("a unix socket address has no IP to hash")
	}
}

func BenchmarkHashSourceIP(b *testing.B) {
	ctx := &pipeline.LBContext{DownstreamAddr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 1000}}
	b.ReportAllocs()
	var s uint64
	for b.Loop() {
		k, _ := lb.Hash(ctx)
		s += k
	}
	_ = s
}
