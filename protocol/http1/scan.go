package http1

import "bytes"

// scanner finds the end of a head or trailer section across calls with growing input,
// checking line terminators, size limits and line counts as it goes. It keeps offsets
// only, relative to the first byte of the section, so the bytes may move between calls
// (a transport may copy unconsumed bytes into another buffer); they must not change.
// Every byte is searched once: pos never moves backwards.
//
// Limit checks happen in a fixed order at each LF, and the checks made on an incomplete
// line can only fire when the complete line would fail the same check, so the outcome does
// not depend on how the input was split.
type scanner struct {
	pos   int // next byte to search for LF
	line  int // offset of the current line
	start int // offset of the start line (after skipped empty lines)
	lines int // complete non-empty lines seen
}

type scanMode struct {
	startLine bool // the first line is a start line (heads), not a field line (trailers)
	skipEmpty bool // skip empty lines before the start line (requests)
	maxStart  int
	maxBytes  int
	maxFields int
	errTooBig error
}

func (s *scanner) reset() { *s = scanner{} }

// scan returns the length of the section (through its final CRLF) once in holds all of it,
// 0 while more bytes are needed, or an error.
func (s *scanner) scan(in []byte, m *scanMode) (int, error) {
	if len(in) < s.pos {
		// The caller broke the contract (the input shrank): start over.
		s.reset()
	}
	for {
		i := bytes.IndexByte(in[s.pos:], '\n')
		if i < 0 {
			s.pos = len(in)
			// The line's LF, when it comes, will be at or after len(in).
			if m.startLine && s.lines == 0 && len(in) > m.maxStart+1 {
				return 0, errAt(ErrStartLineTooLong, m.maxStart+1)
			}
			if len(in) >= m.maxBytes {
				return 0, errAt(m.errTooBig, m.maxBytes)
			}
			return 0, nil
		}
		j := s.pos + i
		s.pos = j + 1
		if m.startLine && s.lines == 0 && j > m.maxStart+1 {
			return 0, errAt(ErrStartLineTooLong, m.maxStart+1)
		}
		if j >= m.maxBytes {
			return 0, errAt(m.errTooBig, m.maxBytes)
		}
		if j == 0 || in[j-1] != '\r' {
			return 0, errAt(ErrBareLF, j)
		}
		if j-1 == s.line { // empty line
			if m.startLine && s.lines == 0 {
				if m.skipEmpty {
					s.line, s.start = j+1, j+1
					continue
				}
				return 0, errAt(ErrMalformedStatusLine, j-1)
			}
			return j + 1, nil
		}
		if (!m.startLine || s.lines > 0) && isOWS(in[s.line]) {
			return 0, errAt(ErrObsFold, s.line)
		}
		s.lines++
		fields := s.lines
		if m.startLine {
			fields--
		}
		if fields > m.maxFields {
			return 0, errAt(ErrTooManyHeaders, s.line)
		}
		s.line = j + 1
	}
}
