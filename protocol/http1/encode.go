package http1

import "strconv"

// AppendRequestHead appends h's request line, h.Headers and the final CRLF to dst and
// returns the extended slice. It writes Method, Target and Version as they are (a proxy
// sending upstream typically sets Target to Path, Version to HTTP11, and has already removed
// hop-by-hop fields and set the framing headers it will use). It validates what it writes,
// so a value carrying CR or LF (header injection, for instance from an HTTP/2 peer) cannot
// reach the wire: on error dst is returned unchanged. It allocates only when dst lacks
// capacity.
func AppendRequestHead(dst []byte, h *RequestHead) ([]byte, error) {
	if _, ok := validToken(h.Method); !ok {
		return dst, &Error{Err: ErrInvalidMethod, Offset: -1}
	}
	if !validEncodedTarget(h.Target) {
		return dst, &Error{Err: ErrInvalidTarget, Offset: -1}
	}
	if h.Version != HTTP10 && h.Version != HTTP11 {
		return dst, &Error{Err: ErrUnsupportedVersion, Offset: -1}
	}
	if err := validateHeaders(h.Headers); err != nil {
		return dst, err
	}
	dst = append(dst, h.Method...)
	dst = append(dst, ' ')
	dst = append(dst, h.Target...)
	dst = append(dst, ' ')
	dst = append(dst, h.Version.String()...)
	dst = append(dst, '\r', '\n')
	return appendFields(dst, h.Headers), nil
}

// AppendResponseHead appends h's status line ("HTTP/1.1 200 OK"; the space before an empty
// reason is kept), h.Headers and the final CRLF to dst, validating as AppendRequestHead.
func AppendResponseHead(dst []byte, h *ResponseHead) ([]byte, error) {
	if h.Version != HTTP10 && h.Version != HTTP11 {
		return dst, &Error{Err: ErrUnsupportedVersion, Offset: -1}
	}
	if h.Status < 100 || h.Status > 999 {
		return dst, &Error{Err: ErrInvalidStatus, Offset: -1}
	}
	for _, c := range h.Reason {
		if !isFieldVchar(c) {
			return dst, &Error{Err: ErrInvalidReason, Offset: -1}
		}
	}
	if err := validateHeaders(h.Headers); err != nil {
		return dst, err
	}
	dst = append(dst, h.Version.String()...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(h.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, h.Reason...)
	dst = append(dst, '\r', '\n')
	return appendFields(dst, h.Headers), nil
}

// AppendChunkHeader appends the size line of a chunk of size bytes ("1a2b\r\n"). The caller
// then writes the data (for example as a separate writev element) and AppendChunkEnd.
// size must be positive: a zero-size chunk ends the body (AppendLastChunk); for size <= 0
// dst is returned unchanged.
func AppendChunkHeader(dst []byte, size int) []byte {
	if size <= 0 {
		return dst
	}
	dst = strconv.AppendUint(dst, uint64(size), 16)
	return append(dst, '\r', '\n')
}

// AppendChunkEnd appends the CRLF that closes a chunk's data.
func AppendChunkEnd(dst []byte) []byte { return append(dst, '\r', '\n') }

// AppendLastChunk appends the last-chunk ("0\r\n"), the trailer fields and the final CRLF.
// Trailers are validated like header fields, and Content-Length, Transfer-Encoding and
// Host are refused as trailers (ErrForbiddenTrailer); on error dst is returned unchanged.
func AppendLastChunk(dst []byte, trailers Headers) ([]byte, error) {
	if err := validateHeaders(trailers); err != nil {
		return dst, err
	}
	for _, f := range trailers {
		if equalFold(f.Name, "content-length") || equalFold(f.Name, "transfer-encoding") || equalFold(f.Name, "host") {
			return dst, &Error{Err: ErrForbiddenTrailer, Offset: -1}
		}
	}
	dst = append(dst, '0', '\r', '\n')
	return appendFields(dst, trailers), nil
}

func appendFields(dst []byte, hs Headers) []byte {
	for _, f := range hs {
		dst = append(dst, f.Name...)
		dst = append(dst, ':', ' ')
		dst = append(dst, f.Value...)
		dst = append(dst, '\r', '\n')
	}
	return append(dst, '\r', '\n')
}

// validateHeaders checks names are tokens and values hold only field bytes, without
// leading or trailing whitespace (which a parser would strip, changing the value).
func validateHeaders(hs Headers) error {
	for _, f := range hs {
		if len(f.Name) == 0 {
			return &Error{Err: ErrEmptyHeaderName, Offset: -1}
		}
		if _, ok := validToken(f.Name); !ok {
			return &Error{Err: ErrInvalidHeaderName, Offset: -1}
		}
		v := f.Value
		if len(v) > 0 && (isOWS(v[0]) || isOWS(v[len(v)-1])) {
			return &Error{Err: ErrInvalidHeaderValue, Offset: -1}
		}
		for _, c := range v {
			if !isFieldVchar(c) {
				return &Error{Err: ErrInvalidHeaderValue, Offset: -1}
			}
		}
	}
	return nil
}

// validEncodedTarget accepts what the parser accepts for any form: visible ASCII without
// '#', valid percent-encodings.
func validEncodedTarget(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	_, ok := validPathQuery(t)
	return ok
}
