package bolt

import (
	"encoding/binary"
	"fmt"
)

// AppendHead appends f's fixed head, class name and header block to dst, announcing
// contentLen bytes of content that the caller writes next (typically as a separate writev
// vector, so it is never copied). f.Content and f.Raw are ignored. The head layout follows
// f.Type; f.Timeout is written for requests and f.Status for responses.
//
// It fails, leaving dst unchanged, when f.Type and f.CmdCode do not form a valid pair
// (ErrUnknownType, ErrUnknownCmdCode), when the class name or header block is longer than
// the wire allows (ErrTooLarge) or when contentLen is negative or above MaxWireContent
// (ErrBadLength, ErrTooLarge). It does not allocate when dst has room.
func AppendHead(dst []byte, f *Frame, contentLen int) ([]byte, error) {
	if f.Type != TypeRequest && f.Type != TypeOneway && f.Type != TypeResponse {
		return dst, fmt.Errorf("%w: 0x%02x", ErrUnknownType, f.Type)
	}
	if kindOf(f.Type, f.CmdCode) == 0 {
		return dst, fmt.Errorf("%w: 0x%04x with command type 0x%02x", ErrUnknownCmdCode, f.CmdCode, f.Type)
	}
	if len(f.Class) > MaxWireClass {
		return dst, fmt.Errorf("%w: class name %d bytes, wire maximum %d", ErrTooLarge, len(f.Class), MaxWireClass)
	}
	if f.Header.Len() > MaxWireHeader {
		return dst, fmt.Errorf("%w: header map %d bytes, wire maximum %d", ErrTooLarge, f.Header.Len(), MaxWireHeader)
	}
	if contentLen < 0 {
		return dst, fmt.Errorf("%w: content %d", ErrBadLength, contentLen)
	}
	if uint64(contentLen) > MaxWireContent {
		return dst, fmt.Errorf("%w: content %d bytes, wire maximum %d", ErrTooLarge, contentLen, MaxWireContent)
	}
	dst = appendFixed(dst, f.Type, f.CmdCode, f.Version, f.RequestID, f.Codec)
	if f.Type == TypeResponse {
		dst = binary.BigEndian.AppendUint16(dst, uint16(f.Status))
	} else {
		dst = binary.BigEndian.AppendUint32(dst, uint32(f.Timeout))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Class)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(f.Header.Len()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(contentLen))
	dst = append(dst, f.Class...)
	return append(dst, f.Header.Bytes()...), nil
}

// AppendFrame appends the whole of f (head, class name, header block and f.Content) to dst.
// Errors are those of AppendHead.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	dst, err := AppendHead(dst, f, len(f.Content))
	if err != nil {
		return dst, err
	}
	return append(dst, f.Content...), nil
}

// AppendHeartbeat appends a heartbeat request with the given id, as sofa-bolt's
// HeartbeatCommand encodes it: version 1, Hessian2 codec, timeout -1, no class, header or
// content.
func AppendHeartbeat(dst []byte, id uint32) []byte {
	dst = appendFixed(dst, TypeRequest, CmdHeartbeat, CommandVersion, id, CodecHessian2)
	dst = binary.BigEndian.AppendUint32(dst, 0xFFFFFFFF) // timeout -1
	return appendEmptyLengths(dst)
}

// AppendHeartbeatAck appends the answer to the heartbeat with the given id, as sofa-bolt's
// HeartbeatAckCommand encodes it: a response with the heartbeat code and StatusSuccess.
func AppendHeartbeatAck(dst []byte, id uint32) []byte {
	return appendStatus(dst, CmdHeartbeat, id, CodecHessian2, StatusSuccess)
}

// AppendStatusResponse appends an RPC response carrying only a status for the request with
// the given id and codec: what sofa-bolt's createExceptionResponse(id, status) sends, and
// what a proxy sends when it sheds or gives up on a request. Use StatusServerThreadpoolBusy
// when shedding load, StatusTimeout when the upstream did not answer in time,
// StatusNoProcessor when no route matched and StatusCodecException for a frame that failed
// with ErrBadHeader. sofa-bolt clients turn these statuses into InvokeServerBusyException,
// InvokeTimeoutException and friends without reading content. Never answer a oneway request.
func AppendStatusResponse(dst []byte, id uint32, codec byte, st Status) []byte {
	return appendStatus(dst, CmdResponse, id, codec, st)
}

func appendStatus(dst []byte, cmd uint16, id uint32, codec byte, st Status) []byte {
	dst = appendFixed(dst, TypeResponse, cmd, CommandVersion, id, codec)
	dst = binary.BigEndian.AppendUint16(dst, uint16(st))
	return appendEmptyLengths(dst)
}

// appendFixed appends the 10 bytes both head layouts share.
func appendFixed(dst []byte, typ byte, cmd uint16, ver byte, id uint32, codec byte) []byte {
	dst = append(dst, ProtocolCode, typ)
	dst = binary.BigEndian.AppendUint16(dst, cmd)
	dst = append(dst, ver)
	dst = binary.BigEndian.AppendUint32(dst, id)
	return append(dst, codec)
}

// appendEmptyLengths appends zero class, header and content lengths.
func appendEmptyLengths(dst []byte) []byte {
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
}
