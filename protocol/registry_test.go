package protocol

import (
	"bytes"
	"errors"
	"github.com/strait-proxy/strait/reactor"
	"testing"
)

func prefixCodec(name, magic string) Codec {
	return Codec{
		Name: name,
		Detect: func(p []byte) Match {
			n := min(len(p), len(magic))
			if !bytes.Equal(p[:n], []byte(magic[:n])) {
				return No
			}
			if n < len(magic) {
				return NeedMore
			}
			return Yes
		},
		NewServer: func(_ reactor.Conn, _ Sink) ServerCodec { return nil },
	}
}

func TestDetectPicksFirstYesAndWaitsForMore(t *testing.T) {
	a, b := prefixCodec("a", "PRI * HTTP/2.0"), prefixCodec("b", "GET ")
	cands := []Codec{a, b}
	if _, m, err := Detect([]byte("PRI"), cands); m != NeedMore || err != nil {
		t.Fatalf("short prefix: %v %v", m, err)
	}
	if c, m, _ := Detect([]byte("GET /x"), cands); m != Yes || c.Name != "b" {
		t.Fatalf("got %q %v", c.Name, m)
	}
	if _, _, err := Detect([]byte("\x16\x03\x01"), cands); !errors.Is(err, ErrUnknownProtocol) {
		t.Fatalf("tls bytes: %v", err)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	r := NewRegistry()
	if err := r.Register(prefixCodec("a", "x")); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(prefixCodec("a", "y")); err == nil {
		t.Fatal("duplicate accepted")
	}
	if _, ok := r.Lookup("a"); !ok || len(r.Names()) != 1 {
		t.Fatal("lookup")
	}
}
