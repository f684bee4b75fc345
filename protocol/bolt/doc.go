// Package bolt is the wire layer of Strait's SOFARPC Bolt v1 codec: an allocation-free frame
// decoder and encoder over []byte, the header-map reader and writer, and the small helpers a
// multiplexing proxy needs (status responses, heartbeats, in-place request id rewriting).
//
// Who may call it: the Bolt codec under protocol/ (which adapts it to the codec/stream
// contract) and tests. It knows nothing about connections, transports, routing or Hessian;
// class names, header values and content are opaque bytes here.
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
package bolt
