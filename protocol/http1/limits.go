package http1

import "fmt"

// Limits bound what the parsers accept. The zero value of each field selects its default;
// use WithDefaults then Validate (the constructors do both).
type Limits struct {
	// MaxStartLine is the longest request line or status line, excluding its CRLF and
	// counting any empty lines skipped before a request line. Default 8 KiB. A request line
	// over the limit is ErrStartLineTooLong (414).
	MaxStartLine int
	// MaxHeadBytes is the largest head: start line, field lines and the final empty line,
	// CRLFs included. Default 60 KiB. Over it: ErrHeadTooLarge (431).
	MaxHeadBytes int
	// MaxHeaders is the most field lines in a head or in a trailer section. Default 100.
	// Over it: ErrTooManyHeaders (431).
	MaxHeaders int
	// MaxChunkExtension is the most bytes between a chunk size and its CRLF (whitespace,
	// ';' and extensions). Default 1 KiB. Over it: ErrChunkExtensionTooLong.
	MaxChunkExtension int
	// MaxTrailerBytes is the largest trailer section, CRLFs included. Default 16 KiB.
	// Over it: ErrTrailerTooLarge.
	MaxTrailerBytes int
}

// Defaults for Limits fields.
const (
	DefaultMaxStartLine      = 8 << 10
	DefaultMaxHeadBytes      = 60 << 10
	DefaultMaxHeaders        = 100
	DefaultMaxChunkExtension = 1 << 10
	DefaultMaxTrailerBytes   = 16 << 10

	// maxLimit bounds every byte limit: offsets stay far from overflow and a typo in a
	// config cannot make a connection buffer gigabytes before it is judged.
	maxLimit = 16 << 20
	// maxHeadersLimit bounds MaxHeaders.
	maxHeadersLimit = 10000
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxStartLine == 0 {
		l.MaxStartLine = DefaultMaxStartLine
	}
	if l.MaxHeadBytes == 0 {
		l.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if l.MaxHeaders == 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxChunkExtension == 0 {
		l.MaxChunkExtension = DefaultMaxChunkExtension
	}
	if l.MaxTrailerBytes == 0 {
		l.MaxTrailerBytes = DefaultMaxTrailerBytes
	}
	return l
}

// Validate reports limits that cannot work: negative values, values above 16 MiB (10,000
// for MaxHeaders), or a start line limit that does not leave room for a field line inside
// MaxHeadBytes. Zero fields are valid (they mean the default) and are checked as such.
func (l Limits) Validate() error {
	d := l.WithDefaults()
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxStartLine", d.MaxStartLine},
		{"MaxHeadBytes", d.MaxHeadBytes},
		{"MaxChunkExtension", d.MaxChunkExtension},
		{"MaxTrailerBytes", d.MaxTrailerBytes},
	} {
		if f.v < 0 || f.v > maxLimit {
			return fmt.Errorf("%w: %s = %d, want 0 (default) or 1..%d", ErrInvalidLimits, f.name, f.v, maxLimit)
		}
	}
	if d.MaxHeaders < 0 || d.MaxHeaders > maxHeadersLimit {
		return fmt.Errorf("%w: MaxHeaders = %d, want 0 (default) or 1..%d", ErrInvalidLimits, d.MaxHeaders, maxHeadersLimit)
	}
	// The head holds at least the start line, its CRLF and the final CRLF.
	if d.MaxStartLine+4 > d.MaxHeadBytes {
		return fmt.Errorf("%w: MaxStartLine (%d) must be at least 4 below MaxHeadBytes (%d)", ErrInvalidLimits, d.MaxStartLine, d.MaxHeadBytes)
	}
	return nil
}
