package bolt

import (
	"encoding/binary"
	"strconv"
)

// Wire constants of Bolt v1 (sofa-bolt RpcProtocol, RpcCommandType, CommandCode, RpcCommandCode).
const (
	// ProtocolCode is the first byte of every Bolt v1 frame. Bolt v2 (0x02) is not supported.
	ProtocolCode byte = 0x01

	// TypeResponse, TypeRequest and TypeOneway are the command types (second byte).
	TypeResponse byte = 0x00
	TypeRequest  byte = 0x01
	TypeOneway   byte = 0x02

	// CmdHeartbeat, CmdRequest and CmdResponse are the command codes (bytes 2-3).
	CmdHeartbeat uint16 = 0x0000
	CmdRequest   uint16 = 0x0001
	CmdResponse  uint16 = 0x0002

	// CommandVersion is the ver2 byte sofa-bolt writes (RpcCommand.version).
	CommandVersion byte = 0x01
	// CodecHessian2 is sofa-bolt's default serializer id; other ids pass through untouched.
	CodecHessian2 byte = 0x01

	// RequestHeadLen and ResponseHeadLen are the fixed head sizes.
	RequestHeadLen  = 22
	ResponseHeadLen = 20

	// MaxWireClass and MaxWireHeader are the largest class-name and header-block lengths a
	// frame can carry: the fields are 16 bits and sofa-bolt reads them as Java shorts, so
	// anything at or above 0x8000 is negative to a Java peer.
	MaxWireClass  = 1<<15 - 1
	MaxWireHeader = 1<<15 - 1
	// MaxWireContent is the largest content length (a Java int).
	MaxWireContent = 1<<31 - 1

	// requestIDOffset is where the 4-byte request id starts in both head layouts.
	requestIDOffset = 5
)

// Kind classifies a frame by its type and command code.
type Kind uint8

// Frame kinds. The zero Kind is not a valid frame.
const (
	// KindRequest is an RPC request that expects a response with the same request id.
	KindRequest Kind = iota + 1
	// KindOneway is an RPC request that gets no response.
	KindOneway
	// KindResponse is an RPC response; RequestID names the request it answers.
	KindResponse
	// KindHeartbeat is a heartbeat request, answered with a KindHeartbeatAck.
	KindHeartbeat
	// KindHeartbeatAck is the answer to a heartbeat.
	KindHeartbeatAck
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindOneway:
		return "oneway"
	case KindResponse:
		return "response"
	case KindHeartbeat:
		return "heartbeat"
	case KindHeartbeatAck:
		return "heartbeat-ack"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// kindOf returns the kind for a type and command code, or 0 for combinations no Bolt peer
// sends (a oneway heartbeat, a request carrying the response code, ...).
func kindOf(typ byte, cmd uint16) Kind {
	switch typ {
	case TypeRequest:
		switch cmd {
		case CmdRequest:
			return KindRequest
		case CmdHeartbeat:
			return KindHeartbeat
		}
	case TypeOneway:
		if cmd == CmdRequest {
			return KindOneway
		}
	case TypeResponse:
		switch cmd {
		case CmdResponse:
			return KindResponse
		case CmdHeartbeat:
			return KindHeartbeatAck
		}
	}
	return 0
}

// Status is a response status (sofa-bolt ResponseStatus).
type Status uint16

// Response statuses. Values outside this list are carried through unchanged.
const (
	StatusSuccess                 Status = 0x00
	StatusError                   Status = 0x01
	StatusServerException         Status = 0x02
	StatusUnknown                 Status = 0x03
	StatusServerThreadpoolBusy    Status = 0x04
	StatusErrorComm               Status = 0x05
	StatusNoProcessor             Status = 0x06
	StatusTimeout                 Status = 0x07
	StatusClientSendError         Status = 0x08
	StatusCodecException          Status = 0x09
	StatusConnectionClosed        Status = 0x10
	StatusServerSerialException   Status = 0x11
	StatusServerDeserialException Status = 0x12
)

// String returns sofa-bolt's name for the status.
func (s Status) String() string {
	switch s {
	case StatusSuccess:
		return "SUCCESS"
	case StatusError:
		return "ERROR"
	case StatusServerException:
		return "SERVER_EXCEPTION"
	case StatusUnknown:
		return "UNKNOWN"
	case StatusServerThreadpoolBusy:
		return "SERVER_THREADPOOL_BUSY"
	case StatusErrorComm:
		return "ERROR_COMM"
	case StatusNoProcessor:
		return "NO_PROCESSOR"
	case StatusTimeout:
		return "TIMEOUT"
	case StatusClientSendError:
		return "CLIENT_SEND_ERROR"
	case StatusCodecException:
		return "CODEC_EXCEPTION"
	case StatusConnectionClosed:
		return "CONNECTION_CLOSED"
	case StatusServerSerialException:
		return "SERVER_SERIAL_EXCEPTION"
	case StatusServerDeserialException:
		return "SERVER_DESERIAL_EXCEPTION"
	}
	return "STATUS(0x" + strconv.FormatUint(uint64(s), 16) + ")"
}

// Frame is one Bolt v1 command. Decode fills it with slices of its input; encoders read it.
type Frame struct {
	// Type is TypeRequest, TypeOneway or TypeResponse.
	Type byte
	// CmdCode is CmdRequest, CmdResponse or CmdHeartbeat.
	CmdCode uint16
	// Version is the ver2 byte (CommandVersion in practice).
	Version byte
	// RequestID pairs a response with its request; unique per connection and direction.
	RequestID uint32
	// Codec is the serializer id of Class and Content (CodecHessian2, ...).
	Codec byte
	// Timeout is the request's timeout in milliseconds; -1 (sofa-bolt's default) means none.
	// Requests only.
	Timeout int32
	// Status is the response status. Responses only.
	Status Status
	// Class is the class name of the content (may be empty).
	Class []byte
	// Header is the header map block.
	Header Header
	// Content is the serialized payload.
	Content []byte
	// Raw is the whole frame as decoded (head through content). Set by Decode, ignored by the
	// encoders; SetRequestID rewrites it in place.
	Raw []byte
}

// Kind classifies f; 0 if its type and command code do not form a valid pair.
func (f *Frame) Kind() Kind { return kindOf(f.Type, f.CmdCode) }

// HeadLen is the length of f's fixed head: RequestHeadLen or ResponseHeadLen.
func (f *Frame) HeadLen() int {
	if f.Type == TypeResponse {
		return ResponseHeadLen
	}
	return RequestHeadLen
}

// IsRequest reports whether f is sent towards a server (request, oneway or heartbeat).
func (f *Frame) IsRequest() bool { return f.Type == TypeRequest || f.Type == TypeOneway }

// ExpectsResponse reports whether the peer owes an answer to f (request or heartbeat).
func (f *Frame) ExpectsResponse() bool { return f.Type == TypeRequest }

// SetRequestID sets f.RequestID and, when f was decoded, rewrites the id inside f.Raw so the
// frame can be forwarded without re-encoding. The bytes under Raw must be writable by the
// caller (see the package doc).
func (f *Frame) SetRequestID(id uint32) {
	f.RequestID = id
	if len(f.Raw) >= requestIDOffset+4 {
		binary.BigEndian.PutUint32(f.Raw[requestIDOffset:], id)
	}
}
