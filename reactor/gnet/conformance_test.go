package gnet

import (
	"testing"

	"github.com/strait-proxy/strait/reactor"
	"github.com/strait-proxy/strait/reactor/reactortest"
)

func TestConformance(t *testing.T) {
	reactortest.Run(t, func(t *testing.T, o reactor.Options) reactor.Transport {
		tr, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	})
}
