package stdnet

import (
	"testing"

	"github.com/strait-proxy/strait/reactor"
	"github.com/strait-proxy/strait/reactor/reactortest"
)

func newTestTransport(t *testing.T, o reactor.Options) reactor.Transport {
	tr, err := New(o)
	if err != nil {
		t.Fatalf("stdnet.New: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestConformance(t *testing.T) {
	reactortest.Run(t, newTestTransport)
}
