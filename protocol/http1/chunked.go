package http1

// ChunkedDecoder decodes a chunked body (RFC 9112 7.1) incrementally. It is fed successive
// slices of the connection's bytes and returns chunk data as subslices of them, never
// copying. Between calls it keeps a few integers; it is not safe for concurrent use.
type ChunkedDecoder struct {
	maxExt      int
	trailerMode scanMode
	scan        scanner
	state       chunkState
	size        int64 // size of the current chunk, then bytes of it still to deliver
	digits      int   // hex digits of the current size line
	ext         int   // bytes after the digits on the current size line
	trailers    Headers
}

type chunkState uint8

const (
	stSize    chunkState = iota // in the hex digits of a size line
	stSizeBWS                   // whitespace after the digits, before ';'
	stExt                       // in chunk extensions
	stSizeLF                    // after the CR of a size line
	stData                      // in chunk data
	stDataCR                    // expecting the CR after data
	stDataLF                    // expecting the LF after data
	stTrailer                   // in the trailer section
	stDone
)

// maxChunkDigits bounds the hex digits of a chunk size, leading zeros included: 16 digits
// already exceed any size this decoder accepts (2^63-1).
const maxChunkDigits = 16

// NewChunkedDecoder returns a decoder enforcing MaxChunkExtension, MaxTrailerBytes and
// MaxHeaders (for trailer fields) from l.
func NewChunkedDecoder(l Limits) (*ChunkedDecoder, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	l = l.WithDefaults()
	return &ChunkedDecoder{maxExt: l.MaxChunkExtension, trailerMode: trailerMode(l)}, nil
}

// trailerMode is the scanner configuration for trailer sections under l (defaults applied).
func trailerMode(l Limits) scanMode {
	return scanMode{
		maxBytes:  l.MaxTrailerBytes,
		maxFields: l.MaxHeaders,
		errTooBig: ErrTrailerTooLarge,
	}
}

// Reset prepares the decoder for a new body, keeping the trailer slice's backing array.
func (d *ChunkedDecoder) Reset() {
	*d = ChunkedDecoder{maxExt: d.maxExt, trailerMode: d.trailerMode, trailers: d.trailers[:0]}
}

// start prepares the decoder for a new body under the codec's settings, keeping the trailer
// slice's backing array.
func (d *ChunkedDecoder) start(cfg *codecConfig) {
	*d = ChunkedDecoder{maxExt: cfg.lim.MaxChunkExtension, trailerMode: cfg.trailer, trailers: d.trailers[:0]}
}

// Done reports whether the whole body, trailers included, has been consumed.
func (d *ChunkedDecoder) Done() bool { return d.state == stDone }

// Trailers returns the trailer fields once Done. They are subslices of the input given to
// the Decode call that finished the body and are valid as long as that input.
func (d *ChunkedDecoder) Trailers() Headers { return d.trailers }

// Decode consumes chunked framing from in and returns at most one run of body bytes:
//
//   - data is a subslice of in (possibly empty) holding the next body bytes;
//   - n is how many bytes of in were consumed: framing, then data, so data is always
//     in[n-len(data):n] (a codec can Skip(n-len(data)) and Detach(len(data)) to keep the
//     body bytes without a copy); the caller drops them and calls again with the rest,
//     plus newer bytes when it has them;
//   - n == 0 without error means the decoder needs more bytes than in holds (in is empty,
//     or the trailer section is incomplete: pass the same unconsumed bytes again, extended).
//
// Once Done, Decode consumes nothing: bytes after the body belong to the next message.
func (d *ChunkedDecoder) Decode(in []byte) (data []byte, n int, err error) {
	i := 0
	for i < len(in) {
		switch d.state {
		case stData:
			k := len(in) - i
			if int64(k) > d.size {
				k = int(d.size)
			}
			d.size -= int64(k)
			if d.size == 0 {
				d.state = stDataCR
			}
			return in[i : i+k : i+k], i + k, nil
		case stSize:
			c := in[i]
			if v, ok := hexVal(c); ok {
				d.digits++
				if d.digits > maxChunkDigits || d.size > (1<<63-1)>>4 {
					return nil, 0, errAt(ErrChunkSizeOverflow, i)
				}
				d.size = d.size<<4 | int64(v)
				i++
				continue
			}
			if d.digits == 0 {
				if c == '\n' {
					return nil, 0, errAt(ErrBareLF, i)
				}
				return nil, 0, errAt(ErrInvalidChunkSize, i)
			}
			switch c {
			case '\r':
				d.state = stSizeLF
			case ';':
				d.state = stExt
			case ' ', '\t':
				d.state = stSizeBWS
			case '\n':
				return nil, 0, errAt(ErrBareLF, i)
			default:
				return nil, 0, errAt(ErrInvalidChunkSize, i)
			}
			if c != '\r' {
				if err := d.countExt(i); err != nil {
					return nil, 0, err
				}
			}
			i++
		case stSizeBWS:
			// chunk-ext = *( BWS ";" ... ): whitespace is allowed only before a ';'.
			c := in[i]
			if err := d.countExt(i); err != nil {
				return nil, 0, err
			}
			switch {
			case c == ';':
				d.state = stExt
			case isOWS(c):
			default:
				return nil, 0, errAt(ErrInvalidChunkExtension, i)
			}
			i++
		case stExt:
			c := in[i]
			switch {
			case c == '\r':
				d.state = stSizeLF
			case c == '\n':
				return nil, 0, errAt(ErrBareLF, i)
			case !isFieldVchar(c):
				return nil, 0, errAt(ErrInvalidChunkExtension, i)
			default:
				if err := d.countExt(i); err != nil {
					return nil, 0, err
				}
			}
			i++
		case stSizeLF:
			if in[i] != '\n' {
				return nil, 0, errAt(ErrBareCR, i)
			}
			i++
			if d.size == 0 {
				d.state = stTrailer
			} else {
				d.state = stData
			}
			d.digits, d.ext = 0, 0
		case stDataCR:
			if in[i] != '\r' {
				return nil, 0, errAt(ErrMissingChunkCRLF, i)
			}
			d.state = stDataLF
			i++
		case stDataLF:
			if in[i] != '\n' {
				return nil, 0, errAt(ErrMissingChunkCRLF, i)
			}
			d.state = stSize
			i++
		case stTrailer:
			t := in[i:]
			end, err := d.scan.scan(t, &d.trailerMode)
			if err != nil {
				if e, ok := err.(*Error); ok {
					e.Offset += i
				}
				return nil, 0, err
			}
			if end == 0 {
				return nil, i, nil
			}
			if err := d.parseTrailers(t[:end], i); err != nil {
				return nil, 0, err
			}
			d.state = stDone
			return nil, i + end, nil
		case stDone:
			return nil, i, nil
		}
	}
	return nil, i, nil
}

// dataLeft is how many bytes of the current chunk's data are still expected, 0 when the
// decoder is not inside chunk data. A codec uses it to offer chunk data straight from its
// read view, without giving the decoder a contiguous copy of the data.
func (d *ChunkedDecoder) dataLeft() int64 {
	if d.state == stData {
		return d.size
	}
	return 0
}

// skipData accounts for k bytes of chunk data consumed by the caller (k <= dataLeft()).
func (d *ChunkedDecoder) skipData(k int) {
	d.size -= int64(k)
	if d.size == 0 {
		d.state = stDataCR
	}
}

func (d *ChunkedDecoder) countExt(i int) error {
	d.ext++
	if d.ext > d.maxExt {
		return errAt(ErrChunkExtensionTooLong, i)
	}
	return nil
}

// parseTrailers parses a complete trailer section; base is its offset in Decode's input.
// Fields that decide framing or routing must not arrive after the body (RFC 9110 6.5.1):
// a recipient that merged them into the head would reinterpret the message.
func (d *ChunkedDecoder) parseTrailers(t []byte, base int) error {
	d.trailers = d.trailers[:0]
	off := 0
	for !(t[off] == '\r' && t[off+1] == '\n') {
		name, value, next, err := parseFieldLine(t, off)
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Offset += base
			}
			return err
		}
		if equalFold(name, "content-length") || equalFold(name, "transfer-encoding") || equalFold(name, "host") {
			return errAt(ErrForbiddenTrailer, base+off)
		}
		d.trailers = append(d.trailers, Header{Name: name, Value: value})
		off = next
	}
	return nil
}

// LengthDecoder delimits a body of known length (Content-Length).
type LengthDecoder struct {
	remaining int64
}

// Reset starts a body of n bytes.
func (d *LengthDecoder) Reset(n int64) { d.remaining = n }

// Remaining is the number of body bytes still expected.
func (d *LengthDecoder) Remaining() int64 { return d.remaining }

// Done reports whether the whole body was consumed.
func (d *LengthDecoder) Done() bool { return d.remaining == 0 }

// Decode returns the prefix of in that belongs to the body (a subslice, consumed in full);
// the bytes after it belong to the next message.
func (d *LengthDecoder) Decode(in []byte) []byte {
	k := len(in)
	if int64(k) > d.remaining {
		k = int(d.remaining)
	}
	d.remaining -= int64(k)
	return in[:k:k]
}
