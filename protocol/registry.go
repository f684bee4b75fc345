package protocol

import (
	"fmt"

	"github.com/strait-proxy/strait/reactor"
)

// Match is a detector's verdict on a connection's first bytes.
type Match uint8

const (
	// No means the bytes are not this protocol.
	No Match = iota
	// Yes means the bytes are this protocol.
	Yes
	// NeedMore means more bytes are needed to decide.
	NeedMore
)

// Codec is one protocol's entry in a Registry: its detector and its codec constructors,
// already bound to the protocol's typed configuration (limits), so one Codec value is built
// once per configuration and shared.
type Codec struct {
	// Name is the protocol's name in configuration ("http1", "http2", "bolt").
	Name string
	// Detect inspects a connection's first bytes.
	Detect func(prefix []byte) Match
	// NewServer makes the downstream codec of a connection; decoded requests go to sink.
	NewServer func(c reactor.Conn, sink Sink) ServerCodec
	// NewClient makes the upstream codec of a connection.
	NewClient func(c reactor.Conn) ClientCodec
	// Configure returns this codec bound to another configuration of the codec's own type
	// (an http2.Config from a listener's or a cluster's http2_protocol_options): limits that
	// differ per listener or per cluster. Fields left zero keep this codec's values. Nil when
	// the codec takes no configuration; an error for a value of the wrong type or an invalid
	// one.
	Configure func(cfg any) (Codec, error)
}

// Registry holds the codecs a program knows, in the order they were registered. cmd/strait
// builds it from one ordered list; user programs add their own the same way.
type Registry struct {
	codecs []Codec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register adds a codec; a duplicate or incomplete entry is an error.
func (r *Registry) Register(c Codec) error {
	if c.Name == "" || c.Detect == nil || c.NewServer == nil {
		return fmt.Errorf("protocol: codec %q needs a name, a detector and a server constructor", c.Name)
	}
	for _, have := range r.codecs {
		if have.Name == c.Name {
			return fmt.Errorf("protocol: codec %q registered twice", c.Name)
		}
	}
	r.codecs = append(r.codecs, c)
	return nil
}

// Lookup returns the named codec.
func (r *Registry) Lookup(name string) (Codec, bool) {
	for _, c := range r.codecs {
		if c.Name == name {
			return c, true
		}
	}
	return Codec{}, false
}

// Names lists the registered codecs in order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.codecs))
	for i, c := range r.codecs {
		out[i] = c.Name
	}
	return out
}

// Detect picks, among candidates (in order), the codec whose detector accepts prefix. It
// returns NeedMore while any candidate needs more bytes and none said Yes, and
// ErrUnknownProtocol when every candidate said No.
func Detect(prefix []byte, candidates []Codec) (Codec, Match, error) {
	pending := false
	for _, c := range candidates {
		switch c.Detect(prefix) {
		case Yes:
			return c, Yes, nil
		case NeedMore:
			pending = true
		}
	}
	if pending {
		return Codec{}, NeedMore, nil
	}
	return Codec{}, No, ErrUnknownProtocol
}
