// Package protocol owns the codec contract every L7 protocol implements (HTTP/1.1, HTTP/2,
// Bolt, Dubbo: one folder each), the protocol-neutral Headers abstraction, and detection of a
// connection's protocol from its first bytes.
//
// Who may call it: the stream manager in pipeline/ drives codecs through these interfaces;
// cmd/strait and user programs register codecs in a Registry. protocol/ knows the reactor
// contract (views, connections, buffers) but no transport backend, and nothing of routing.
//
// # Model
//
// A codec turns one connection's bytes into streams and back. Ping-pong protocols (HTTP/1.1)
// have at most one active stream per direction at a time and answer in order; multiplexed
// protocols (HTTP/2, Bolt, Dubbo) carry many, identified by StreamID. Both are the same
// contract: Decode reports frames (headers, data, trailers) with their stream id to a Sink,
// and Encode* writes frames for a stream to the connection.
//
// # Ownership
//
//   - Headers passed to a Sink are owned by the stream: they reference a header block the
//     codec detached from the read view (no copy on netpoll, one block copy on gnet and
//     stdnet, never one allocation per field) and stay valid until Release.
//   - Body bytes are offered in place: OnData gets the read view with n body bytes at its
//     front and must consume exactly n of them (Skip after writing them on, or Detach to keep
//     them), so a body can go from one connection's read side to another's write side with no
//     user-space copy.
//   - Encode* write to the codec's connection before returning; the slices they are given may
//     be reused afterwards.
//
// All methods of a codec, and all Sink callbacks, run on the connection's executor.
package protocol

import (
	"errors"
	"fmt"

	"github.com/strait-proxy/strait/reactor"
)

// StreamID identifies a stream within one connection (an HTTP/2 stream id, a Bolt or Dubbo
// request id, a sequence number for HTTP/1.1).
type StreamID = uint64

// Pseudo-header names every codec understands. Requests carry :method, :path, :authority and
// :scheme (HTTP/2 semantics); responses carry :status. RPC codecs map their routing key onto
// :path (Bolt: the service class name; Dubbo: "interface/method").
const (
	Method    = ":method"
	Path      = ":path"
	Authority = ":authority"
	Scheme    = ":scheme"
	Status    = ":status"
)

// Headers is a protocol's header block. Names are matched case-insensitively for HTTP.
// Implementations reference the detached header block and keep mutations in an overlay, so
// reading costs no allocation and encoding re-emits the result.
type Headers interface {
	// Get returns the first value of name.
	Get(name string) (string, bool)
	// Range calls fn for every field (pseudo-headers first) until it returns false.
	Range(fn func(name, value string) bool)
	// Set replaces every value of name with value.
	Set(name, value string)
	// Add appends a field.
	Add(name, value string)
	// Del removes every field called name.
	Del(name string)
	// Release returns the header block to its pool; the Headers must not be used afterwards.
	Release()
}

// Sink receives what a codec decoded. A server codec's sink is the stream manager (streams
// are requests); a client codec reports each response to the sink given to NewStream.
type Sink interface {
	// OnHeaders starts a stream (server side) or delivers its response head (client side).
	// end means the stream carries no body or trailers in this direction.
	OnHeaders(id StreamID, h Headers, end bool)
	// OnData offers n body bytes at the front of in; the sink consumes exactly n of them.
	OnData(id StreamID, in reactor.View, n int, end bool)
	// OnTrailers ends the stream's direction with trailers.
	OnTrailers(id StreamID, t Headers)
	// OnReset reports that the stream was reset by the peer or by a stream error.
	OnReset(id StreamID, err error)
}

// Encoder writes one direction of streams to the codec's connection.
type Encoder interface {
	// EncodeHeaders writes a head. end means no body or trailers follow.
	EncodeHeaders(id StreamID, h Headers, end bool) error
	// EncodeData writes body bytes (a vector for writev); end ends the direction.
	EncodeData(id StreamID, p [][]byte, end bool) error
	// EncodeTrailers writes trailers and ends the direction.
	EncodeTrailers(id StreamID, t Headers) error
	// Reset abandons a stream (HTTP/2 RST_STREAM; HTTP/1.1 closes the connection).
	Reset(id StreamID, err error)
}

// ServerCodec is the downstream side of a connection.
type ServerCodec interface {
	Encoder
	// Decode consumes every complete frame at the front of in and reports it to the sink.
	// A returned error is a connection error: the caller closes the connection after
	// Decode had the chance to write a protocol-level answer (400, GOAWAY).
	Decode(in reactor.View) error
	// Drain asks the peer to go away gracefully (HTTP/1.1: Connection: close on the next
	// response; HTTP/2: GOAWAY).
	Drain()
}

// ClientCodec is the upstream side of a connection.
type ClientCodec interface {
	Encoder
	// Decode consumes every complete frame at the front of in and reports it to the sink of
	// the stream it belongs to. A returned error is a connection error.
	Decode(in reactor.View) error
	// NewStream allocates a stream whose response goes to sink.
	NewStream(sink Sink) (StreamID, error)
	// ActiveStreams is the number of streams not yet finished in both directions.
	ActiveStreams() int
	// MaxStreams is how many streams may be active at once (1 for HTTP/1.1).
	MaxStreams() int
	// Reusable reports whether the connection may carry another stream once the active ones
	// finish (false after Connection: close, GOAWAY or a framing error).
	Reusable() bool
}

// StreamError ends one stream; the connection carries on.
type StreamError struct {
	ID   StreamID
	Code uint32 // protocol-specific (an HTTP/2 error code, a Bolt status)
	Err  error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("stream %d: %v (code %d)", e.ID, e.Err, e.Code)
}

func (e *StreamError) Unwrap() error { return e.Err }

// ErrConnection marks errors that end the whole connection. Codecs wrap their connection
// errors with it (errors.Is(err, ErrConnection)).
var ErrConnection = errors.New("protocol: connection error")

// ErrRefusedStream is the reason given to ServerCodec.Reset for a stream refused before any
// processing (too many concurrent streams): safe for the client to retry (HTTP/2
// REFUSED_STREAM, a Bolt busy answer).
var ErrRefusedStream = errors.New("protocol: stream refused")

// ErrUnknownProtocol is returned by detection when the first bytes match no enabled protocol.
var ErrUnknownProtocol = errors.New("protocol: unknown protocol")

// EOFHandler is implemented by client codecs whose responses may end at the peer's FIN
// (an HTTP/1.x body without Content-Length or chunking). The stream manager calls OnEOF when
// the upstream closed its write side, before tearing the connection down.
type EOFHandler interface {
	OnEOF()
}

// Flusher is implemented by codecs that hold encoded bytes back to coalesce writes (an
// HTTP/1.1 response head kept until the first body bytes, so head and body leave in one
// writev). Flush writes whatever is held. The stream manager calls it on the downstream
// codec after each upstream Decode, so held bytes never wait longer than one read.
type Flusher interface {
	Flush() error
}

// FlushQueue is a driver's promise to flush a codec before the callback it is running
// returns. A codec with output ready outside its own Decode (a request encoded while another
// connection's read is decoded, a reset, a response completed by an upstream read) calls
// QueueFlush(itself) instead of writing at once, so everything one read produces for a
// connection leaves in one write. False means no running callback will flush it: write now.
type FlushQueue interface {
	QueueFlush(Flusher) bool
}

// Batcher is implemented by codecs that batch their writes with a driver's FlushQueue. The
// stream manager sets its queue on every codec it creates (and calls Flush on those it
// queued when its read callback returns). A codec may ignore the queue and write at once.
type Batcher interface {
	SetFlushQueue(FlushQueue)
}

// StreamFlow is implemented by codecs with per-stream flow control (HTTP/2). A stream
// manager uses it to hold back one stream's source instead of pausing a connection that
// other streams share.
type StreamFlow interface {
	// StreamCongested reports whether bytes encoded for stream id wait for the peer's
	// flow-control window (the codec holds them as owned copies). The caller should stop
	// taking the stream's source until FlowSink.OnStreamWritable.
	StreamCongested(id StreamID) bool
	// Consume returns n body bytes of stream id, received with Sink.OnData by a FlowSink,
	// to the peer's flow-control window (HTTP/2 WINDOW_UPDATE).
	Consume(id StreamID, n int)
}

// FlowSink is a Sink that takes part in per-stream flow control: a codec implementing
// StreamFlow returns a received body byte to its peer only when the sink calls Consume for
// it, and tells the sink when a stream it reported congested can take bytes again. Sinks
// that are not FlowSinks get every byte returned as soon as OnData returns.
type FlowSink interface {
	Sink
	OnStreamWritable(id StreamID)
}
