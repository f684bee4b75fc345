// Package bolt is Strait's SOFARPC Bolt v1 codec. It has two layers:
//
//   - the wire layer: an allocation-free frame decoder and encoder over []byte (Decode,
//     DecodeHead, AppendHead, ...), the header-map reader and writer, and the small helpers a
//     multiplexing proxy needs (status responses, heartbeats, in-place request id rewriting);
//   - the codec adapter (NewCodec): the protocol.Codec registry entry whose server and client
//     codecs map Bolt connections onto the stream contract of package protocol, with the
//     protocol.Headers implementation Headers.
//
// Who may call it: cmd/strait and user programs register NewCodec in a protocol.Registry; the
// stream manager in pipeline/stream drives the codecs it makes; tests use the wire layer and
// bolttest directly. It knows nothing about transports, routing or Hessian; class names,
// header values and content are opaque bytes here.
//
// # Buffer rules
//
// Decode never copies: every slice in a decoded Frame (Class, Header, Content, Raw) aliases
// the buffer passed to Decode and is valid exactly as long as that buffer is, typically only
// until the transport's OnData returns. Callers that keep a frame longer detach or copy the
// bytes first. The slices are capped (full slice expressions), so appending to one never
// overwrites the bytes that follow it.
//
// Encoders append to a caller-owned []byte and never allocate when it has capacity. AppendHead
// writes the fixed head, class name and header block only, so content can follow as a
// separate vector in a writev without being copied.
//
// The codec adapter copies a command's head part (fixed head, class name, header map) once
// into a pooled block that its Headers reference until Release, and never copies content on
// the common path: content is offered to the sink in the read view as it arrives
// (OnData(id, in, n, end)) and written from the caller's slices. See the README for the
// exceptions (a frame queued behind another one on a shared connection, a non-Bolt request
// without a length).
//
// # Errors
//
// Decode reports three kinds of result besides success:
//   - ErrNeedMore (returned unwrapped, so it costs nothing): the buffer holds a proper prefix
//     of a frame; n is the total number of bytes needed before calling again.
//   - ErrBadHeader (wrapped): the frame is well delimited but its header map is malformed;
//     n is the frame length and the fixed fields (request id, type) are valid, so the caller
//     can skip the frame and answer it with StatusCodecException. A stream error.
//   - Everything else (ErrBadProtocol, ErrUnknownType, ErrUnknownCmdCode, ErrBadLength,
//     ErrTooLarge, wrapped with %w): the byte stream cannot be resynchronised and the
//     connection must be closed. IsFatal tells the two apart.
//
// The codecs return connection errors wrapping protocol.ErrConnection; their encoders return
// stream errors wrapping ErrQueueFull, ErrContentLength, ErrUnknownStream or ErrTooLarge.
package bolt
