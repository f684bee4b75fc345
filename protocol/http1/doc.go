// Package http1 is Strait's HTTP/1.1 protocol: the codec (NewCodec, the "http1" entry of a
// protocol.Registry, with its server and client sides and its protocol.Headers) and the wire
// layer under it: a strict RFC 9112 parser for request and response heads, the
// message-framing rules (which body follows a head, whether the connection stays open), an
// incremental chunked-body decoder, and encoders that append heads and chunk framing to
// caller buffers.
//
// Who may call it: cmd/strait and user programs register NewCodec in their protocol.Registry;
// the stream manager (pipeline/stream) drives the codecs through the protocol interfaces, on
// the connection's executor. The wire layer (parsers, decoders, Append functions) knows
// nothing of connections or streams and may be used on its own.
//
// # The codec
//
// The server side turns a downstream connection's bytes into streams 1, 2, 3... and answers
// them in order: a pipelined request is not decoded before the previous response ended (its
// bytes stay in the transport, reading paused). Bodies are offered in place (OnData with the
// read view), never copied by the codec; a head is copied once into a pooled block that backs
// the stream's Headers. Hostile input gets a 4xx/5xx with Connection: close and a connection
// error, and nothing after it is decoded. Responses are re-framed (Content-Length, chunked,
// or close-delimited for HTTP/1.0), hop-by-hop fields dropped, and a head is held until the
// first body bytes so both leave in one writev (see protocol.Flusher). The client side
// carries one exchange at a time upstream. See README.md for the full behaviour.
//
// # Read views, not copies
//
// The parsers run on transport read views (reactor.View): bytes valid only during one
// callback. The parsers never copy header bytes (the codec copies a complete head once, into
// the pooled block behind its Headers). A parsed RequestHead, ResponseHead or trailer
// list holds subslices of the input it was parsed from and is valid exactly as long as that
// input. Between callbacks the parsers keep only integers (how far they scanned), so a
// connection whose head arrives in pieces costs a few words of state and every byte is
// examined a bounded number of times, however the head is split.
//
// # Strictness
//
// Everything that lets two HTTP implementations disagree on where a message ends (request
// smuggling) is rejected with a distinct sentinel error rather than repaired: see the
// package README for the full list. Errors are *Error values wrapping one ErrXxx sentinel;
// match them with errors.Is.
//
// # Allocation
//
// Parse, Decode and the Append functions do not allocate in steady state: a RequestHead or
// ResponseHead reused across messages keeps its header slice, encoders append to the
// caller's buffer, and only error values allocate. Neither does a codec exchange: heads,
// parse targets and header blocks come from pools, the state of an exchange in progress
// (scanner progress, chunked decoder, encoder scratch buffer and vector) is a pooled object
// a connection holds only while an exchange is in progress, and reading Headers returns
// strings over the block (unsafe.String). An idle connection holds an 80-byte codec.
package http1
