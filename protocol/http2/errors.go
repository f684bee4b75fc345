package http2

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
)

// Sentinel errors. Connection errors are *ConnError values (wrapping protocol.ErrConnection
// and one of these); stream errors reported to sinks are *protocol.StreamError values whose
// Code is the HTTP/2 error code and whose Err wraps one of these.
var (
	// ErrInvalidConfig wraps every Config validation error.
	ErrInvalidConfig = errors.New("http2: invalid configuration")
	// ErrPreface: the connection did not start with the client preface (server side) or a
	// SETTINGS frame (both sides).
	ErrPreface = errors.New("http2: bad connection preface")
	// ErrProtocol: a frame that breaks RFC 9113's framing or stream state rules.
	ErrProtocol = errors.New("http2: protocol error")
	// ErrFrameSize: a frame longer than SETTINGS_MAX_FRAME_SIZE or of the wrong length.
	ErrFrameSize = errors.New("http2: frame size error")
	// ErrFlowControl: the peer sent more than its window allowed, or overflowed ours.
	ErrFlowControl = errors.New("http2: flow control error")
	// ErrCompression: the header block could not be decoded (HPACK state is lost).
	ErrCompression = errors.New("http2: header compression error")
	// ErrStreamClosedByPeer: a frame for a stream the peer had closed.
	ErrStreamClosedByPeer = errors.New("http2: frame on a closed stream")
	// ErrMalformed: a message RFC 9113 8.1.1 calls malformed (pseudo-headers, uppercase
	// names, connection-specific fields, TE other than "trailers", content-length differing
	// from the DATA received, trailers without END_STREAM...).
	ErrMalformed = errors.New("http2: malformed message")
	// ErrHeaderListTooLarge: a decoded header list above MaxHeaderListSize.
	ErrHeaderListTooLarge = errors.New("http2: header list too large")
	// ErrFlood: a hardening limit was exceeded (floods, Rapid Reset, CONTINUATION floods).
	ErrFlood = errors.New("http2: peer exceeded a flood limit")
	// ErrPeerReset: the peer reset the stream (RST_STREAM); the code is in the StreamError.
	ErrPeerReset = errors.New("http2: stream reset by peer")
	// ErrGoAway: the peer sent GOAWAY. Streams above its last stream id are reported with an
	// error wrapping both ErrGoAway and protocol.ErrRefusedStream: nothing of them was
	// processed, so they are safe to retry on another connection.
	ErrGoAway = errors.New("http2: peer sent GOAWAY")
	// ErrPeerClosed: the connection ended while the stream was active.
	ErrPeerClosed = errors.New("http2: connection closed with active streams")
	// ErrStreamState: an Encode call out of order or for a stream that is not open for
	// sending (unknown, finished, reset).
	ErrStreamState = errors.New("http2: encode out of order or for a closed stream")
	// ErrNotReusable: NewStream on a client connection that cannot open more streams (GOAWAY
	// received, connection error, stream ids exhausted).
	ErrNotReusable = errors.New("http2: connection not reusable")
	// ErrStreamLimit: NewStream past the connection's concurrent stream limit.
	ErrStreamLimit = errors.New("http2: concurrent stream limit reached")
	// ErrSendBufferOverflow: more bytes queued for a stream (or a connection) waiting for
	// the peer's window than MaxStreamSendBuffer (MaxConnSendBuffer): the stream is reset.
	ErrSendBufferOverflow = errors.New("http2: send buffer limit exceeded")
	// ErrInvalidHeader: a head to encode with a field HTTP/2 cannot carry (CR, LF or NUL in
	// a value, a name that is not a token, a missing or bad pseudo-header).
	ErrInvalidHeader = errors.New("http2: header field cannot be encoded")
	// ErrBodyLength: more or fewer body bytes encoded than the content-length announced.
	ErrBodyLength = errors.New("http2: body length differs from content-length")
)

// ConnError is a connection error: the codec sent (or tried to send) GOAWAY with Code and
// the connection must close. It matches protocol.ErrConnection and its sentinel with
// errors.Is.
type ConnError struct {
	Code   http2.ErrCode
	Err    error  // one of the sentinels above
	Reason string // detail, also sent as GOAWAY debug data
}

func (e *ConnError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%v: %v (%v)", protocol.ErrConnection, e.Err, e.Code)
	}
	return fmt.Sprintf("%v: %v: %s (%v)", protocol.ErrConnection, e.Err, e.Reason, e.Code)
}

// Unwrap makes errors.Is find protocol.ErrConnection and the sentinel.
func (e *ConnError) Unwrap() []error { return []error{protocol.ErrConnection, e.Err} }

// refusedError wraps a sentinel together with protocol.ErrRefusedStream.
type refusedError struct{ err error }

func (e *refusedError) Error() string {
	return fmt.Sprintf("%v: %v", protocol.ErrRefusedStream, e.err)
}

func (e *refusedError) Unwrap() []error { return []error{protocol.ErrRefusedStream, e.err} }

// streamErr builds the error a sink receives with OnReset.
func streamErr(id protocol.StreamID, code http2.ErrCode, err error) *protocol.StreamError {
	if code == http2.ErrCodeRefusedStream && !errors.Is(err, protocol.ErrRefusedStream) {
		err = &refusedError{err}
	}
	return &protocol.StreamError{ID: id, Code: uint32(code), Err: err}
}

// resetCode maps the reason given to Encoder.Reset onto an RST_STREAM code. Codes carried
// by a *protocol.StreamError are kept when they make sense on another hop (NO_ERROR,
// CANCEL, REFUSED_STREAM); a refused stream is REFUSED_STREAM; anything else is def.
func resetCode(err error, def http2.ErrCode) http2.ErrCode {
	if errors.Is(err, protocol.ErrRefusedStream) {
		return http2.ErrCodeRefusedStream
	}
	var se *protocol.StreamError
	if errors.As(err, &se) {
		switch c := http2.ErrCode(se.Code); c {
		case http2.ErrCodeNo, http2.ErrCodeCancel, http2.ErrCodeRefusedStream:
			return c
		}
	}
	return def
}

// sentinelFor names the sentinel of an error code, for errors the Framer reports as codes.
func sentinelFor(code http2.ErrCode) error {
	switch code {
	case http2.ErrCodeFrameSize:
		return ErrFrameSize
	case http2.ErrCodeFlowControl:
		return ErrFlowControl
	case http2.ErrCodeCompression:
		return ErrCompression
	case http2.ErrCodeStreamClosed:
		return ErrStreamClosedByPeer
	case http2.ErrCodeEnhanceYourCalm:
		return ErrFlood
	}
	return ErrProtocol
}
