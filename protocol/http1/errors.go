package http1

import (
	"errors"
	"strconv"
)

// Sentinel errors. Parse and encode failures are *Error values wrapping exactly one of these.
var (
	// Line terminators.
	ErrBareLF = errors.New("http1: LF not preceded by CR")
	ErrBareCR = errors.New("http1: CR not followed by LF")

	// Size limits (see Limits).
	ErrStartLineTooLong = errors.New("http1: start line exceeds limit")
	ErrHeadTooLarge     = errors.New("http1: header section exceeds limit")
	ErrTooManyHeaders   = errors.New("http1: too many header fields")

	// Start line.
	ErrMalformedRequestLine = errors.New("http1: malformed request line")
	ErrInvalidMethod        = errors.New("http1: invalid method token")
	ErrInvalidTarget        = errors.New("http1: invalid request target")
	ErrInvalidVersion       = errors.New("http1: malformed HTTP version")
	ErrUnsupportedVersion   = errors.New("http1: unsupported HTTP version")
	ErrMalformedStatusLine  = errors.New("http1: malformed status line")
	ErrInvalidStatus        = errors.New("http1: invalid status code")
	ErrInvalidReason        = errors.New("http1: invalid reason phrase")

	// Field lines.
	ErrObsFold            = errors.New("http1: line folding (field line starting with whitespace)")
	ErrMissingColon       = errors.New("http1: field line without colon")
	ErrSpaceBeforeColon   = errors.New("http1: whitespace between field name and colon")
	ErrEmptyHeaderName    = errors.New("http1: empty field name")
	ErrInvalidHeaderName  = errors.New("http1: invalid field name")
	ErrInvalidHeaderValue = errors.New("http1: invalid byte in field value")

	// Host.
	ErrMissingHost   = errors.New("http1: missing Host header in HTTP/1.1 request")
	ErrDuplicateHost = errors.New("http1: more than one Host header")
	ErrInvalidHost   = errors.New("http1: invalid Host header")
	ErrHostMismatch  = errors.New("http1: Host header differs from request-target authority")

	// Framing.
	ErrContentLengthWithTransferEncoding = errors.New("http1: both Content-Length and Transfer-Encoding")
	ErrDuplicateContentLength            = errors.New("http1: more than one Content-Length")
	ErrInvalidContentLength              = errors.New("http1: invalid Content-Length")
	ErrUnsupportedTransferEncoding       = errors.New("http1: Transfer-Encoding other than a single chunked")
	ErrDuplicateTransferEncoding         = errors.New("http1: more than one Transfer-Encoding header")
	ErrTransferEncodingHTTP10            = errors.New("http1: Transfer-Encoding in an HTTP/1.0 message")

	// Connection.
	ErrInvalidConnection  = errors.New("http1: invalid Connection header")
	ErrConnectionEndToEnd = errors.New("http1: Connection header names Host or Content-Length")

	// Chunked body.
	ErrInvalidChunkSize      = errors.New("http1: invalid chunk size")
	ErrChunkSizeOverflow     = errors.New("http1: chunk size too large")
	ErrInvalidChunkExtension = errors.New("http1: invalid chunk extension")
	ErrChunkExtensionTooLong = errors.New("http1: chunk extension exceeds limit")
	ErrMissingChunkCRLF      = errors.New("http1: chunk data not followed by CRLF")
	ErrTrailerTooLarge       = errors.New("http1: trailer section exceeds limit")
	ErrForbiddenTrailer      = errors.New("http1: trailer field that affects framing or routing")

	// Configuration.
	ErrInvalidLimits = errors.New("http1: invalid limits")
)

// Error is a parse or encode failure. Err is one ErrXxx sentinel; Offset is the byte offset,
// in the input given to the failing call, at which the problem was found (-1 for encode
// errors, which concern a struct rather than bytes).
type Error struct {
	Err    error
	Offset int
}

func (e *Error) Error() string {
	if e.Offset < 0 {
		return e.Err.Error()
	}
	return e.Err.Error() + " (at byte " + strconv.Itoa(e.Offset) + ")"
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func errAt(err error, off int) error { return &Error{Err: err, Offset: off} }

// StatusCode maps a request parse error to the status a server sends before closing: 414 for
// an over-long request line, 431 for too large or too many headers, 501 for a transfer coding
// other than chunked, 505 for an HTTP version other than 1.0 and 1.1, 400 otherwise. A
// response parse error is the upstream's fault: a proxy answers 502 instead.
func StatusCode(err error) int {
	switch {
	case errors.Is(err, ErrStartLineTooLong):
		return 414
	case errors.Is(err, ErrHeadTooLarge), errors.Is(err, ErrTooManyHeaders):
		return 431
	case errors.Is(err, ErrUnsupportedTransferEncoding):
		return 501
	case errors.Is(err, ErrUnsupportedVersion):
		return 505
	}
	return 400
}
