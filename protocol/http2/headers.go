package http2

import (
	"strings"
	"sync"
	"unsafe"

	"github.com/strait-proxy/strait/protocol"
)

// headerBlock is the protocol.Headers of a decoded header block (request head, response head
// or trailers). HPACK gives the fields one at a time; each is copied once into buf, a pooled
// contiguous block, and recorded as offsets. Reading (Get, Range) allocates nothing: the
// strings alias buf (unsafe.String) and are valid until Release. Mutations never touch the
// block: deletions are flags, additions go to an overlay.
//
// Decoded names are lower case (RFC 9113 8.2.1 makes anything else malformed) and
// pseudo-headers come first. On a request, "host" is an alias of ":authority" for Get, Set,
// Add and Del (a decoded Host field is folded into :authority), as in the HTTP/1.1 codec, so
// a filter cannot make the two disagree and either codec can encode the result.
type headerBlock struct {
	buf    []byte
	fields []hfield
	ov     []protocol.Field
	kind   blockKind
	size   int // decoded header list size (RFC 9113 6.5.2 accounting)
}

type blockKind uint8

const (
	kindRequest blockKind = iota + 1
	kindResponse
	kindTrailers
)

// span is a byte range of buf.
type span struct{ off, n int32 }

type hfield struct {
	name, value span
	pseudo      bool
	deleted     bool
}

var _ protocol.Headers = (*headerBlock)(nil)

// maxPooledBlock is the largest buf a released block keeps.
const maxPooledBlock = 16 << 10

var headerBlockPool = sync.Pool{New: func() any {
	return &headerBlock{buf: make([]byte, 0, 512), fields: make([]hfield, 0, 16)}
}}

func newHeaderBlock(kind blockKind) *headerBlock {
	h := headerBlockPool.Get().(*headerBlock)
	h.kind = kind
	return h
}

// add copies a field into the block.
func (h *headerBlock) add(name, value string, pseudo bool) {
	off := int32(len(h.buf))
	h.buf = append(h.buf, name...)
	h.buf = append(h.buf, value...)
	h.fields = append(h.fields, hfield{
		name:   span{off, int32(len(name))},
		value:  span{off + int32(len(name)), int32(len(value))},
		pseudo: pseudo,
	})
}

// addValue appends a value to the block (for joined cookies) and returns its span.
func (h *headerBlock) addValue(v string) span {
	off := int32(len(h.buf))
	h.buf = append(h.buf, v...)
	return span{off, int32(len(v))}
}

func (h *headerBlock) str(s span) string {
	if s.n == 0 {
		return ""
	}
	return unsafe.String(&h.buf[s.off], int(s.n))
}

// index returns the first live block field called name (lower case), or -1.
func (h *headerBlock) index(name string) int {
	for i := range h.fields {
		f := &h.fields[i]
		if !f.deleted && h.str(f.name) == name {
			return i
		}
	}
	return -1
}

// canonical maps a name to the one stored: "host" is ":authority" on requests.
func (h *headerBlock) canonical(name string) string {
	if h.kind == kindRequest && len(name) == 4 && strings.EqualFold(name, "host") {
		return protocol.Authority
	}
	return name
}

// nameIs compares a stored (lower-case) name with name, ASCII case-insensitively.
func (h *headerBlock) nameIs(f *hfield, name string) bool {
	if int(f.name.n) != len(name) {
		return false
	}
	b := h.buf[f.name.off : f.name.off+f.name.n]
	for i := 0; i < len(b); i++ {
		if b[i] != lower(name[i]) {
			return false
		}
	}
	return true
}

// Get implements protocol.Headers.
func (h *headerBlock) Get(name string) (string, bool) {
	name = h.canonical(name)
	for i := range h.fields {
		f := &h.fields[i]
		if !f.deleted && h.nameIs(f, name) {
			return h.str(f.value), true
		}
	}
	for _, f := range h.ov {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Range implements protocol.Headers: pseudo-headers first (block, then overlay), then the
// other fields in wire order, then fields added.
func (h *headerBlock) Range(fn func(name, value string) bool) {
	for pass := 0; pass < 2; pass++ {
		pseudo := pass == 0
		for i := range h.fields {
			f := &h.fields[i]
			if !f.deleted && f.pseudo == pseudo && !fn(h.str(f.name), h.str(f.value)) {
				return
			}
		}
		for _, f := range h.ov {
			if strings.HasPrefix(f.Name, ":") == pseudo && !fn(f.Name, f.Value) {
				return
			}
		}
	}
}

// Set implements protocol.Headers.
func (h *headerBlock) Set(name, value string) {
	name = h.canonical(name)
	h.Del(name)
	h.ov = append(h.ov, protocol.Field{Name: name, Value: value})
}

// Add implements protocol.Headers.
func (h *headerBlock) Add(name, value string) {
	h.ov = append(h.ov, protocol.Field{Name: h.canonical(name), Value: value})
}

// Del implements protocol.Headers.
func (h *headerBlock) Del(name string) {
	name = h.canonical(name)
	for i := range h.fields {
		if f := &h.fields[i]; !f.deleted && h.nameIs(f, name) {
			f.deleted = true
		}
	}
	out := h.ov[:0]
	for _, f := range h.ov {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	clear(h.ov[len(out):])
	h.ov = out
}

// Release implements protocol.Headers: the block goes back to its pool.
func (h *headerBlock) Release() {
	buf := h.buf[:0]
	if cap(buf) > maxPooledBlock {
		buf = nil
	}
	clear(h.ov)
	*h = headerBlock{buf: buf, fields: h.fields[:0], ov: h.ov[:0]}
	headerBlockPool.Put(h)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
