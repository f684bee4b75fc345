// Package http1 is the HTTP/1.1 wire layer of Strait: a strict RFC 9112 parser for request
// and response heads, the message-framing rules (which body follows a head, whether the
// connection stays open), an incremental chunked-body decoder, and encoders that append
// heads and chunk framing to caller buffers.
//
// It owns bytes-to-structure and structure-to-bytes only. It knows nothing of connections,
// streams or routing: the HTTP/1 codec in protocol/ calls it from a transport callback and
// decides what to do with the results (for example, answer 400 and close on any parse error,
// see StatusCode).
//
// # Read views, not copies
//
// The parsers run on transport read views (reactor.View): bytes valid only during one
// callback. Nothing here copies header bytes. A parsed RequestHead, ResponseHead or trailer
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
// caller's buffer, and only error values allocate.
package http1
