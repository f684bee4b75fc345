// Package http2 is Strait's HTTP/2 codec (RFC 9113, prior-knowledge h2c): the "http2" entry
// of a protocol.Registry (NewCodec), with its server side (downstream: client streams become
// the sink's streams), its client side (upstream: streams opened with NewStream), and the
// protocol.Headers implementation they report. Frames are read and written with
// golang.org/x/net/http2's Framer and header blocks coded with its hpack package, used as
// they are (wrapped, not forked).
//
// Who may call it: cmd/strait and user programs register NewCodec in their
// protocol.Registry; the stream manager (pipeline/stream) drives the codecs through the
// protocol interfaces, on the connection's executor, and may use the optional StreamFlow
// and FlowSink interfaces for per-stream back-pressure. Nothing here knows a transport
// backend or routing.
//
// # Read views, zero copy
//
// Decode is given a reactor.View valid only during the call. A frame is decoded only when
// all its bytes are in the view (the 9-byte header gives its length, bounded by the
// advertised SETTINGS_MAX_FRAME_SIZE); otherwise Decode returns and waits for more. DATA
// payloads are offered to the sink in place (OnData(id, in, n, end): frame header and pad
// length skipped before, padding after), so a body byte is never copied by the codec on its
// way in. Other frames go through the Framer, which copies their payload once into its read
// buffer. Header blocks (HEADERS + CONTINUATION) are HPACK-decoded fragment by fragment as
// they arrive, each field validated (RFC 9113 8.2, 8.3) and copied once into a pooled block
// that backs the stream's Headers until Release.
//
// # Writes
//
// Encoded frames collect in one outbound buffer, and body slices are referenced, not
// copied: whatever the codec produced while decoding one read (SETTINGS and PING
// acknowledgements, WINDOW_UPDATE, responses the sink wrote synchronously, DATA released by
// the peer's WINDOW_UPDATE) leaves in one Write or Writev when Decode returns, and an
// EncodeData leaves together with any head held before it. Body bytes beyond the peer's
// flow-control windows are queued per stream as owned copies, bounded per stream and per
// connection, and reported through StreamFlow.StreamCongested.
//
// # Errors
//
// A violation is a connection error (GOAWAY with the RFC 9113 code, then Decode returns a
// *ConnError wrapping protocol.ErrConnection) or a stream error (RST_STREAM, and the sink's
// OnReset with a *protocol.StreamError carrying the code), as RFC 9113 section 5.4 says.
// Hardening limits (floods, Rapid Reset, CONTINUATION floods, HPACK abuse) are in Config,
// each with a safe default; see README.md for the table.
package http2
