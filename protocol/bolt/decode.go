package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sentinel errors. All but ErrNeedMore are returned wrapped with %w; match with errors.Is.
var (
	// ErrNeedMore means the buffer holds a proper prefix of a frame. It is returned unwrapped
	// and Decode's n is the total number of bytes needed. Not an error of the stream.
	ErrNeedMore = errors.New("bolt: need more bytes")
	// ErrBadProtocol means the first byte is not ProtocolCode (connection-fatal).
	ErrBadProtocol = errors.New("bolt: not a bolt v1 frame")
	// ErrUnknownType means the command type byte is not request, oneway or response
	// (connection-fatal).
	ErrUnknownType = errors.New("bolt: unknown command type")
	// ErrUnknownCmdCode means the command code is unknown or does not fit the command type
	// (connection-fatal).
	ErrUnknownCmdCode = errors.New("bolt: unknown command code")
	// ErrBadLength means a class, header or content length is negative as the Java peer
	// would read it (connection-fatal).
	ErrBadLength = errors.New("bolt: negative length field")
	// ErrTooLarge means a length is past the configured Limits, or past what the wire can
	// carry when encoding (connection-fatal when decoding).
	ErrTooLarge = errors.New("bolt: length exceeds limit")
	// ErrBadHeader means a header map block is malformed. From Decode it is a stream error:
	// the frame is delimited, n is its length, and its fixed fields are valid.
	ErrBadHeader = errors.New("bolt: malformed header map")
	// ErrBadLimits is returned by Limits.Validate.
	ErrBadLimits = errors.New("bolt: invalid limits")
	// ErrShortFrame is returned when a buffer is too short to hold the field asked for.
	ErrShortFrame = errors.New("bolt: frame too short")
)

// IsFatal reports whether err, returned by Decode, means the connection must be closed: true
// for every non-nil error except ErrNeedMore and ErrBadHeader.
func IsFatal(err error) bool {
	return err != nil && err != ErrNeedMore && !errors.Is(err, ErrBadHeader)
}

// Limits bound what Decode accepts. The zero value of each field selects its default, so the
// zero Limits is the default limits.
type Limits struct {
	// MaxFrame bounds a whole frame, head included. Default 16 MiB. It also bounds the n that
	// Decode returns with ErrNeedMore, so a reader never buffers more than this for a frame.
	MaxFrame int
	// MaxHeader bounds the header map block. Default and maximum MaxWireHeader (32767).
	MaxHeader int
	// MaxClass bounds the class name. Default 1 KiB; maximum MaxWireClass.
	MaxClass int
}

// Default limits.
const (
	DefaultMaxFrame  = 16 << 20
	DefaultMaxHeader = MaxWireHeader
	DefaultMaxClass  = 1 << 10
)

// maxFrameLimit is the largest MaxFrame: the biggest frame the wire can describe.
const maxFrameLimit = RequestHeadLen + MaxWireClass + MaxWireHeader + MaxWireContent

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxFrame == 0 {
		l.MaxFrame = DefaultMaxFrame
	}
	if l.MaxHeader == 0 {
		l.MaxHeader = DefaultMaxHeader
	}
	if l.MaxClass == 0 {
		l.MaxClass = DefaultMaxClass
	}
	return l
}

// Validate reports limits that cannot be used: negative values, values past what the wire
// can carry, or a MaxFrame below the fixed head.
func (l Limits) Validate() error {
	switch {
	case l.MaxFrame < 0 || l.MaxHeader < 0 || l.MaxClass < 0:
		return fmt.Errorf("%w: negative value %+v", ErrBadLimits, l)
	case l.MaxHeader > MaxWireHeader:
		return fmt.Errorf("%w: MaxHeader %d above the wire maximum %d", ErrBadLimits, l.MaxHeader, MaxWireHeader)
	case l.MaxClass > MaxWireClass:
		return fmt.Errorf("%w: MaxClass %d above the wire maximum %d", ErrBadLimits, l.MaxClass, MaxWireClass)
	case l.MaxFrame != 0 && l.MaxFrame < RequestHeadLen:
		return fmt.Errorf("%w: MaxFrame %d below the %d-byte head", ErrBadLimits, l.MaxFrame, RequestHeadLen)
	case uint64(l.MaxFrame) > maxFrameLimit:
		return fmt.Errorf("%w: MaxFrame %d above the wire maximum %d", ErrBadLimits, l.MaxFrame, uint64(maxFrameLimit))
	}
	return nil
}

// Decode decodes the frame at the start of buf into f.
//
// On success n is the frame's length and every slice in f aliases buf. With ErrNeedMore, n
// is the total length buf must reach (at least len(buf)+1, at most lim.MaxFrame) before
// calling again; f is untouched. With an error wrapping ErrBadHeader, n is the frame's length
// and f holds the fixed fields, Class, Content and Raw but an empty Header: skip n bytes and
// answer the request with StatusCodecException. Any other error is connection-fatal and n is
// 0.
//
// Checks run as soon as the bytes they need are present, so garbage is rejected on its
// first bytes rather than after a head's worth. lim is used as if WithDefaults had been
// applied; it is not validated here (call Validate once, at configuration time). Decode does
// not allocate unless it returns a wrapped error, and never panics.
func Decode(buf []byte, f *Frame, lim Limits) (n int, err error) {
	l, err := frameLengths(buf, lim)
	if err != nil {
		return l.need, err
	}
	total := l.headEnd() + l.content
	if len(buf) < total {
		return total, ErrNeedMore
	}
	err = fillFrame(buf, f, l)
	f.Content = buf[l.headEnd():total:total]
	f.Raw = buf[:total:total]
	return total, err
}

// DecodeHead decodes only the head part of the frame at the start of buf: the fixed head,
// class name and header block, everything but the content. It lets a streaming reader hand
// the head on as soon as it arrived and then pass the content through as it comes, never
// buffering a whole frame.
//
// On success n is the head part's length, contentLen the number of content bytes that follow
// it on the wire, and f holds the fixed fields, Class and Header (aliasing buf); f.Content is
// nil and f.Raw covers the head part only. With ErrNeedMore, n is the length buf must reach
// for the head part (at most the fixed head plus lim.MaxClass plus lim.MaxHeader) and f is
// untouched. With an error wrapping ErrBadHeader, n and contentLen are valid and f holds the
// fixed fields and Class but an empty Header: skip n plus contentLen bytes and answer with
// StatusCodecException. Any other error is connection-fatal and n is 0. The limits are those
// of Decode, including MaxFrame for the whole frame, decided from the fixed head. It does not
// allocate unless it returns a wrapped error, and never panics.
func DecodeHead(buf []byte, f *Frame, lim Limits) (n, contentLen int, err error) {
	l, err := frameLengths(buf, lim)
	if err != nil {
		return l.need, 0, err
	}
	end := l.headEnd()
	if len(buf) < end {
		return end, 0, ErrNeedMore
	}
	err = fillFrame(buf, f, l)
	f.Content = nil
	f.Raw = buf[:end:end]
	return end, l.content, err
}

// lengths are a frame's checked length fields.
type lengths struct {
	head, class, header, content int
	// need is Decode's n for an error from frameLengths: the bytes needed with
	// ErrNeedMore, 0 otherwise.
	need int
}

func (l lengths) headEnd() int { return l.head + l.class + l.header }

// frameLengths validates the fixed head at the start of buf and its length fields against
// lim. It returns ErrNeedMore (with need set) while the fixed head is incomplete.
func frameLengths(buf []byte, lim Limits) (lengths, error) {
	head, err := checkStart(buf)
	if err != nil {
		if err == ErrNeedMore {
			return lengths{need: head}, err
		}
		return lengths{}, err
	}
	if len(buf) < head {
		return lengths{need: head}, ErrNeedMore
	}
	// Both layouts end with classLen(2) headerLen(2) contentLen(4). sofa-bolt reads them as a
	// Java short, short and int: a value with the top bit set is negative to it.
	lens := buf[head-8 : head]
	classLen := int(int16(binary.BigEndian.Uint16(lens[0:2])))
	headerLen := int(int16(binary.BigEndian.Uint16(lens[2:4])))
	contentLen := int(int32(binary.BigEndian.Uint32(lens[4:8])))
	if classLen < 0 || headerLen < 0 || contentLen < 0 {
		return lengths{}, fmt.Errorf("%w: class %d, header %d, content %d", ErrBadLength, classLen, headerLen, contentLen)
	}
	lim = lim.WithDefaults()
	if classLen > lim.MaxClass {
		return lengths{}, fmt.Errorf("%w: class name %d bytes, limit %d", ErrTooLarge, classLen, lim.MaxClass)
	}
	if headerLen > lim.MaxHeader {
		return lengths{}, fmt.Errorf("%w: header map %d bytes, limit %d", ErrTooLarge, headerLen, lim.MaxHeader)
	}
	// Compare against the room left rather than summing first, so the sum cannot overflow
	// even where int is 32 bits.
	if contentLen > lim.MaxFrame-head-classLen-headerLen {
		return lengths{}, fmt.Errorf("%w: frame %d bytes, limit %d", ErrTooLarge,
			int64(head)+int64(classLen)+int64(headerLen)+int64(contentLen), lim.MaxFrame)
	}
	return lengths{head: head, class: classLen, header: headerLen, content: contentLen}, nil
}

// fillFrame sets f's fixed fields, Class and Header from buf, which holds at least the head
// part l describes. Content and Raw are left to the caller. A malformed header block leaves
// f.Header empty and returns an error wrapping ErrBadHeader.
func fillFrame(buf []byte, f *Frame, l lengths) error {
	classEnd := l.head + l.class
	headerEnd := classEnd + l.header
	*f = Frame{
		Type:      buf[1],
		CmdCode:   binary.BigEndian.Uint16(buf[2:4]),
		Version:   buf[4],
		RequestID: binary.BigEndian.Uint32(buf[requestIDOffset:]),
		Codec:     buf[9],
		Class:     buf[l.head:classEnd:classEnd],
	}
	if f.Type == TypeResponse {
		f.Status = Status(binary.BigEndian.Uint16(buf[10:12]))
	} else {
		f.Timeout = int32(binary.BigEndian.Uint32(buf[10:14]))
	}
	h, err := ParseHeader(buf[classEnd:headerEnd:headerEnd])
	if err != nil {
		return fmt.Errorf("request id %d: %w", f.RequestID, err)
	}
	f.Header = h
	return nil
}

// checkStart validates the protocol code, command type and command code as far as buf holds
// them. It returns the head length (or the minimum head length while the type is unknown)
// with ErrNeedMore when buf is shorter than 4 bytes and consistent so far.
func checkStart(buf []byte) (head int, err error) {
	if len(buf) < 1 {
		return ResponseHeadLen, ErrNeedMore
	}
	if buf[0] != ProtocolCode {
		return 0, fmt.Errorf("%w: protocol code 0x%02x", ErrBadProtocol, buf[0])
	}
	if len(buf) < 2 {
		return ResponseHeadLen, ErrNeedMore
	}
	typ := buf[1]
	switch typ {
	case TypeRequest, TypeOneway:
		head = RequestHeadLen
	case TypeResponse:
		head = ResponseHeadLen
	default:
		return 0, fmt.Errorf("%w: 0x%02x", ErrUnknownType, typ)
	}
	if len(buf) < 4 {
		return head, ErrNeedMore
	}
	if cmd := binary.BigEndian.Uint16(buf[2:4]); kindOf(typ, cmd) == 0 {
		return 0, fmt.Errorf("%w: 0x%04x with command type 0x%02x", ErrUnknownCmdCode, cmd, typ)
	}
	return head, nil
}

// Detect tells whether a connection's first bytes are Bolt v1, for protocol detection: nil
// when the protocol code, command type and command code (the first 4 bytes) are valid,
// ErrNeedMore when prefix is shorter and valid so far, otherwise the error Decode would
// return. It never allocates on nil or ErrNeedMore.
func Detect(prefix []byte) error {
	_, err := checkStart(prefix)
	return err
}

// RequestID returns the request id of the frame at the start of buf, which must hold at least
// the first 9 bytes of a Bolt v1 frame. It does not validate the rest of the head.
func RequestID(buf []byte) (uint32, error) {
	if len(buf) < requestIDOffset+4 {
		return 0, fmt.Errorf("%w: %d bytes", ErrShortFrame, len(buf))
	}
	if buf[0] != ProtocolCode {
		return 0, fmt.Errorf("%w: protocol code 0x%02x", ErrBadProtocol, buf[0])
	}
	return binary.BigEndian.Uint32(buf[requestIDOffset:]), nil
}

// SetRequestID rewrites, in place, the request id of the frame at the start of buf, which
// must hold at least its first 9 bytes. A multiplexing proxy uses it to remap ids without
// re-encoding; nothing else in the frame depends on the id (Bolt v1 has no checksum).
func SetRequestID(buf []byte, id uint32) error {
	if len(buf) < requestIDOffset+4 {
		return fmt.Errorf("%w: %d bytes", ErrShortFrame, len(buf))
	}
	if buf[0] != ProtocolCode {
		return fmt.Errorf("%w: protocol code 0x%02x", ErrBadProtocol, buf[0])
	}
	binary.BigEndian.PutUint32(buf[requestIDOffset:], id)
	return nil
}
