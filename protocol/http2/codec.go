package http2

import (
	"fmt"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// CodecName is the codec's name in a protocol.Registry and in configuration.
const CodecName = "http2"

// preface is the client connection preface (RFC 9113 3.4).
const preface = http2.ClientPreface

// NewCodec returns the HTTP/2 entry of a protocol.Registry, bound to cfg. cfg should come
// validated (Validate); invalid values are replaced by the defaults so the codec stays
// usable.
func NewCodec(cfg Config) protocol.Codec {
	if cfg.Validate() != nil {
		cfg = Config{}
	}
	cfg = cfg.WithDefaults()
	return protocol.Codec{
		Name:   CodecName,
		Detect: Detect,
		NewServer: func(c reactor.Conn, sink protocol.Sink) protocol.ServerCodec {
			return newServer(c, sink, &cfg)
		},
		NewClient: func(c reactor.Conn) protocol.ClientCodec {
			return newClient(c, &cfg)
		},
		Configure: func(v any) (protocol.Codec, error) {
			var o Config
			switch x := v.(type) {
			case Config:
				o = x
			case *Config:
				o = *x
			default:
				return protocol.Codec{}, fmt.Errorf("%w: %T is not an http2.Config", ErrInvalidConfig, v)
			}
			merged := cfg.Override(o)
			if err := merged.Validate(); err != nil {
				return protocol.Codec{}, err
			}
			return NewCodec(merged), nil
		},
	}
}

// Detect recognises prior-knowledge HTTP/2 (h2c): Yes for the 24-byte client preface,
// NeedMore for a prefix of it, No otherwise.
func Detect(prefix []byte) protocol.Match {
	n := min(len(prefix), len(preface))
	if string(prefix[:n]) != preface[:n] {
		return protocol.No
	}
	if n < len(preface) {
		return protocol.NeedMore
	}
	return protocol.Yes
}

// StreamFlow is implemented by both codecs: per-stream flow control for a stream manager
// that moves bodies between connections. It is the proposed protocol.StreamFlow (see
// README.md, "Back-pressure across the proxy").
//
//   - Send side: bytes encoded with EncodeData beyond the peer's window are queued by the
//     codec as owned copies. StreamCongested reports that; the manager stops consuming the
//     stream's source (withholds its credit, or pauses an HTTP/1 upstream) until the codec
//     calls FlowSink.OnStreamWritable.
//   - Receive side: with a FlowSink, a body byte offered with OnData is returned to the
//     peer's stream window (WINDOW_UPDATE) only when the sink calls Consume for it, so a
//     stream whose destination is congested closes its window and the peer stops sending.
//     Without a FlowSink the codec returns credit as soon as OnData returns.
type StreamFlow interface {
	// StreamCongested reports whether bytes of stream id wait for the peer's window.
	StreamCongested(id protocol.StreamID) bool
	// Consume returns n body bytes of stream id, received with OnData by a FlowSink, to the
	// peer's flow-control window. Bytes of finished streams are ignored.
	Consume(id protocol.StreamID, n int)
}

// FlowSink is a protocol.Sink that takes part in per-stream flow control (the proposed
// protocol.FlowSink): it is told when a congested stream can take bytes again, and it
// returns received body bytes with StreamFlow.Consume itself.
type FlowSink interface {
	protocol.Sink
	// OnStreamWritable runs (on the executor, possibly inside Decode) when the bytes queued
	// for stream id were all written after StreamCongested had reported true.
	OnStreamWritable(id protocol.StreamID)
}

var (
	_ protocol.ServerCodec = (*serverCodec)(nil)
	_ protocol.ClientCodec = (*clientCodec)(nil)
	_ protocol.Flusher     = (*serverCodec)(nil)
	_ protocol.Flusher     = (*clientCodec)(nil)
	_ protocol.EOFHandler  = (*serverCodec)(nil)
	_ protocol.EOFHandler  = (*clientCodec)(nil)
	_ StreamFlow           = (*serverCodec)(nil)
	_ StreamFlow           = (*clientCodec)(nil)
)
