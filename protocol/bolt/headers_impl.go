package bolt

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/bytedance/gopkg/lang/mcache"

	"github.com/strait-proxy/strait/protocol"
)

// Headers is the protocol.Headers of one Bolt command head (request, oneway or response) as
// the codec reports it to the stream manager. The fixed head, class name and header map block
// are copied once from the read view into one pooled contiguous block; nothing is allocated
// per field, and reading (Get, Range) allocates nothing: the strings alias the block and are
// valid until Release.
//
// Fields, in the order Range gives them:
//   - ":path" (requests and oneways): the class name, which the router matches services on.
//   - ":status" (responses): the Bolt status mapped to HTTP: SUCCESS 200, NO_PROCESSOR 404,
//     SERVER_THREADPOOL_BUSY 503, TIMEOUT 504, CODEC_EXCEPTION 400, anything else 500. The raw
//     status stays available through BoltStatus.
//   - the header map entries, in wire order, duplicates included.
//   - fields added with Add or Set, in the order they were added.
//
// Get returns the LAST value of a duplicated key, as Bolt peers do (sofa-rpc decodes the map
// into a Java HashMap, sofa-bolt-node into an object: the last put wins), so a route decided
// on Get sees what the server will see. Names match exactly first; when no key matches
// exactly, an ASCII case-insensitive match is accepted (Envoy route configurations carry
// lower-case names, Bolt keys are often camelCase).
//
// Mutations (Set, Add, Del) go to an overlay and never touch the block. When a head with an
// empty overlay is forwarded to another Bolt connection it is rewritten (the block copied with
// the new request id), otherwise re-encoded: the block's surviving pairs are copied raw (null
// values stay null), overlay fields are appended, ":path" becomes the class name and ":status"
// the Bolt status (unless it still maps to the same HTTP status, in which case the raw Bolt
// status is kept). Other pseudo-headers (":authority", ...) have no place on the Bolt wire and
// are dropped when encoding.
//
// The raw Bolt fields (kind, codec, version, timeout, status, content length) are available
// to whoever holds a *Headers (found by type assertion on a protocol.Headers), so a Bolt to
// Bolt proxy re-encodes them faithfully.
type Headers struct {
	block      []byte // head part as received (mcache); nil for heads the codec made up
	typ        byte
	cmd        uint16
	version    byte
	id         uint32
	codec      byte
	timeout    int32
	status     Status
	classEnd   int // block[headLen:classEnd] is the class name
	headerEnd  int // block[classEnd:headerEnd] is the header map block
	contentLen int

	ov   []protocol.Field // overlay: fields set or added, pseudo-headers included
	dels []string         // names deleted from the block (and pseudo-headers deleted)
}

var _ protocol.Headers = (*Headers)(nil)

var headersPool = sync.Pool{New: func() any { return new(Headers) }}

// newHeaders copies the head part of a frame (what DecodeHead consumed: head, f's class and
// header block) into a pooled block and returns it as Headers. f must come from DecodeHead on
// head.
func newHeaders(head []byte, f *Frame, contentLen int) *Headers {
	h := headersPool.Get().(*Headers)
	h.block = mcache.Malloc(len(head))
	copy(h.block, head)
	h.setFixed(f)
	h.classEnd = f.HeadLen() + len(f.Class)
	h.headerEnd = h.classEnd + f.Header.Len()
	h.contentLen = contentLen
	return h
}

// newSyntheticResponse returns a response head with no class, header map or content: what a
// client codec reports for a oneway request once it was written.
func newSyntheticResponse(st Status) *Headers {
	h := headersPool.Get().(*Headers)
	h.typ, h.cmd, h.version, h.codec, h.status = TypeResponse, CmdResponse, CommandVersion, CodecHessian2, st
	h.classEnd, h.headerEnd = ResponseHeadLen, ResponseHeadLen
	return h
}

func (h *Headers) setFixed(f *Frame) {
	h.typ, h.cmd, h.version, h.id, h.codec = f.Type, f.CmdCode, f.Version, f.RequestID, f.Codec
	h.timeout, h.status = f.Timeout, f.Status
}

// Kind is the command's kind (request, oneway, response, ...).
func (h *Headers) Kind() Kind { return kindOf(h.typ, h.cmd) }

// RequestID is the request id the head carried on the connection it came from.
func (h *Headers) RequestID() uint32 { return h.id }

// Codec is the serializer id of the class name and content.
func (h *Headers) Codec() byte { return h.codec }

// Version is the ver2 byte.
func (h *Headers) Version() byte { return h.version }

// Timeout is a request's timeout in milliseconds (-1: none); 0 for responses.
func (h *Headers) Timeout() int32 { return h.timeout }

// ContentLength is the number of content bytes that follow the head on the wire.
func (h *Headers) ContentLength() int { return h.contentLen }

// BoltStatus is a response's Bolt status, with a ":status" set in the overlay applied (see
// the type doc); 0 for requests.
func (h *Headers) BoltStatus() Status {
	if v, ok := h.ovLast(protocol.Status); ok {
		code, err := strconv.Atoi(v)
		if err != nil {
			return StatusServerException
		}
		if code != HTTPStatus(h.status) {
			return StatusFromHTTP(code)
		}
	}
	return h.status
}

func (h *Headers) isRequest() bool { return h.typ == TypeRequest || h.typ == TypeOneway }

func (h *Headers) headLen() int {
	if h.typ == TypeResponse {
		return ResponseHeadLen
	}
	return RequestHeadLen
}

// class is the class name as received.
func (h *Headers) class() string {
	if h.block == nil || h.classEnd <= h.headLen() {
		return ""
	}
	b := h.block[h.headLen():h.classEnd]
	return unsafe.String(&b[0], len(b))
}

func (h *Headers) header() Header {
	if h.block == nil {
		return Header{}
	}
	return Header{b: h.block[h.classEnd:h.headerEnd]}
}

// Get implements protocol.Headers (see the type doc: last duplicate wins).
func (h *Headers) Get(name string) (string, bool) {
	if v, ok := h.ovLast(name); ok {
		return v, true
	}
	if h.deleted(name) {
		return "", false
	}
	if len(name) > 0 && name[0] == ':' {
		return h.pseudo(name)
	}
	v, ok := h.header().lookup(name)
	if !ok || len(v) == 0 {
		return "", ok
	}
	return unsafe.String(&v[0], len(v)), true
}

// pseudo returns a pseudo-header the head itself defines.
func (h *Headers) pseudo(name string) (string, bool) {
	switch {
	case name == protocol.Path && h.isRequest():
		return h.class(), true
	case name == protocol.Status && h.typ == TypeResponse:
		return statusText(HTTPStatus(h.status)), true
	}
	return "", false
}

// Range implements protocol.Headers: pseudo-headers first, then the header map in wire order
// (duplicates included), then added fields.
func (h *Headers) Range(fn func(name, value string) bool) {
	for _, name := range [...]string{protocol.Path, protocol.Status} {
		if v, ok := h.Get(name); ok && !fn(name, v) {
			return
		}
	}
	for _, f := range h.ov {
		if isPseudo(f.Name) && f.Name != protocol.Path && f.Name != protocol.Status && !fn(f.Name, f.Value) {
			return
		}
	}
	stop := false
	h.header().rangeRaw(func(k, v, _ []byte) bool {
		ks := bytesString(k)
		if h.deleted(ks) {
			return true
		}
		if !fn(ks, bytesString(v)) {
			stop = true
			return false
		}
		return true
	})
	if stop {
		return
	}
	for _, f := range h.ov {
		if !isPseudo(f.Name) && !fn(f.Name, f.Value) {
			return
		}
	}
}

// Set implements protocol.Headers.
func (h *Headers) Set(name, value string) {
	h.Del(name)
	h.ov = append(h.ov, protocol.Field{Name: name, Value: value})
}

// Add implements protocol.Headers.
func (h *Headers) Add(name, value string) {
	h.ov = append(h.ov, protocol.Field{Name: name, Value: value})
}

// Del implements protocol.Headers. Names compare ASCII case-insensitively.
func (h *Headers) Del(name string) {
	out := h.ov[:0]
	for _, f := range h.ov {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	clear(h.ov[len(out):])
	h.ov = out
	if h.deleted(name) {
		return
	}
	if isPseudo(name) {
		if _, ok := h.pseudo(name); ok {
			h.dels = append(h.dels, name)
		}
		return
	}
	if _, ok := h.header().lookup(name); ok {
		h.dels = append(h.dels, name)
	}
}

// Release implements protocol.Headers: the block goes back to its pool.
func (h *Headers) Release() {
	if h.block != nil {
		mcache.Free(h.block)
	}
	clear(h.ov)
	clear(h.dels)
	*h = Headers{ov: h.ov[:0], dels: h.dels[:0]}
	headersPool.Put(h)
}

func (h *Headers) ovLast(name string) (string, bool) {
	for i := len(h.ov) - 1; i >= 0; i-- {
		if strings.EqualFold(h.ov[i].Name, name) {
			return h.ov[i].Value, true
		}
	}
	return "", false
}

func (h *Headers) deleted(name string) bool {
	for _, d := range h.dels {
		if strings.EqualFold(d, name) {
			return true
		}
	}
	return false
}

// modified reports whether the overlay changes what goes on the wire.
func (h *Headers) modified() bool {
	if len(h.dels) > 0 || h.block == nil {
		return true
	}
	for _, f := range h.ov {
		switch {
		case !isPseudo(f.Name):
			return true
		case f.Name == protocol.Path && h.isRequest(), f.Name == protocol.Status && h.typ == TypeResponse:
			// Setting ":path" or ":status" changes the wire only when the value differs.
			if v, _ := h.pseudo(f.Name); v != f.Value {
				return true
			}
		}
	}
	return false
}

// appendHead appends the head part (fixed head, class name, header block) of this command to
// dst with the given request id, announcing contentLen bytes of content. An unmodified head
// is copied from the block (a rewrite); a modified one is re-encoded from the block's
// surviving pairs and the overlay. It fails, leaving dst unchanged, when the re-encoded class
// name or header block does not fit the wire.
func (h *Headers) appendHead(dst []byte, id uint32, contentLen int) ([]byte, error) {
	if contentLen < 0 || uint64(contentLen) > MaxWireContent {
		return dst, fmt.Errorf("%w: content %d bytes", ErrTooLarge, contentLen)
	}
	if !h.modified() {
		start := len(dst)
		dst = append(dst, h.block...)
		binary.BigEndian.PutUint32(dst[start+requestIDOffset:], id)
		binary.BigEndian.PutUint32(dst[start+h.headLen()-4:], uint32(contentLen))
		return dst, nil
	}
	start := len(dst)
	dst = appendFixed(dst, h.typ, h.cmd, h.version, id, h.codec)
	if h.typ == TypeResponse {
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.BoltStatus()))
	} else {
		dst = binary.BigEndian.AppendUint32(dst, uint32(h.timeout))
	}
	lens := len(dst)
	dst = appendEmptyLengths(dst)
	class := h.class()
	if h.isRequest() {
		class, _ = h.Get(protocol.Path)
	}
	dst = append(dst, class...)
	hstart := len(dst)
	h.header().rangeRaw(func(k, _, raw []byte) bool {
		if !h.deleted(bytesString(k)) {
			dst = append(dst, raw...)
		}
		return true
	})
	for _, f := range h.ov {
		if !isPseudo(f.Name) {
			dst = AppendHeader(dst, f.Name, f.Value)
		}
	}
	hlen := len(dst) - hstart
	if len(class) > MaxWireClass || hlen > MaxWireHeader {
		return dst[:start], fmt.Errorf("%w: class name %d bytes, header map %d bytes", ErrTooLarge, len(class), hlen)
	}
	binary.BigEndian.PutUint16(dst[lens:], uint16(len(class)))
	binary.BigEndian.PutUint16(dst[lens+2:], uint16(hlen))
	binary.BigEndian.PutUint32(dst[lens+4:], uint32(contentLen))
	return dst, nil
}

// HTTPStatus maps a Bolt status to the HTTP status the stream manager and filters see:
// SUCCESS 200, NO_PROCESSOR 404, SERVER_THREADPOOL_BUSY 503, TIMEOUT 504, CODEC_EXCEPTION
// 400, anything else 500.
func HTTPStatus(s Status) int {
	switch s {
	case StatusSuccess:
		return 200
	case StatusNoProcessor:
		return 404
	case StatusServerThreadpoolBusy:
		return 503
	case StatusTimeout:
		return 504
	case StatusCodecException:
		return 400
	}
	return 500
}

// StatusFromHTTP maps an HTTP status (of a local reply, or of a non-Bolt upstream) to the
// Bolt status a Bolt client understands: 2xx SUCCESS; 404 NO_PROCESSOR (no route); 503 and
// 429 SERVER_THREADPOOL_BUSY (overflow, no healthy upstream, shedding, rate limits); 504 and
// 408 TIMEOUT; 400 CODEC_EXCEPTION; anything else SERVER_EXCEPTION.
func StatusFromHTTP(code int) Status {
	switch {
	case code >= 200 && code < 300:
		return StatusSuccess
	case code == 404:
		return StatusNoProcessor
	case code == 503 || code == 429:
		return StatusServerThreadpoolBusy
	case code == 504 || code == 408:
		return StatusTimeout
	case code == 400:
		return StatusCodecException
	}
	return StatusServerException
}

func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 400:
		return "400"
	case 404:
		return "404"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return "500"
}

func isPseudo(name string) bool { return len(name) > 0 && name[0] == ':' }

// bytesString views b as a string without copying; b must not change while it is used.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// lookup is Get with the codec's name rule: the last exact match, else the last ASCII
// case-insensitive one.
func (h Header) lookup(name string) (value []byte, ok bool) {
	var fold []byte
	folded := false
	b := h.b
	for i := 0; i < len(b); {
		k, v, next := pairAt(b, i)
		if len(k) == len(name) {
			if string(k) == name {
				value, ok = v, true
			} else if !ok && strings.EqualFold(bytesString(k), name) {
				fold, folded = v, true
			}
		}
		i = next
	}
	if ok {
		return value, true
	}
	return fold, folded
}

// rangeRaw is Range that also gives each pair's raw bytes (length prefixes included).
func (h Header) rangeRaw(fn func(key, value, raw []byte) bool) {
	b := h.b
	for i := 0; i < len(b); {
		k, v, next := pairAt(b, i)
		if !fn(k, v, b[i:next]) {
			return
		}
		i = next
	}
}
