package http1

import (
	"strings"
	"sync"
	"unsafe"

	"github.com/bytedance/gopkg/lang/mcache"

	"github.com/strait-proxy/strait/protocol"
)

// blockHeaders is the protocol.Headers of a head (or trailer section) the codec decoded. The
// wire bytes are copied once, with one memcpy, into a pooled contiguous block (mcache); fields
// are offsets into it. Reading (Get, Range) allocates nothing: the strings alias the block
// (unsafe.String) and are valid until Release. Mutations (Set, Add, Del) never touch the
// block: deletions are flags, additions go to an overlay.
//
// Fields, in the order Range gives them:
//   - requests: ":method", ":scheme" ("http", or "https" for an absolute-form https target),
//     ":authority" (the authority of an absolute- or authority-form target, else the Host
//     header; absent for an HTTP/1.0 request without Host), ":path" (the origin-form target,
//     the path of an absolute-form target ("/" when empty), "*" for OPTIONS *; absent for
//     CONNECT). Responses: ":status" (three digits).
//   - pseudo-headers added to the overlay;
//   - the field lines in wire order, duplicates kept (requests: Host is represented by
//     ":authority" only, not repeated as a field);
//   - regular fields added to the overlay, in the order they were added.
//
// Names match ASCII case-insensitively. On a request, "host" is an alias of ":authority" for
// Get, Set, Add and Del, so a filter cannot make the two disagree.
type blockHeaders struct {
	block  []byte // the head's bytes (mcache); nil when nothing was copied
	kind   blockKind
	fields []blockField
	pseudo [numPseudo]span
	has    uint8 // bit i: pseudo[i] present (and not deleted)
	scheme string
	ov     []protocol.Field // overlay: fields set or added, pseudo-headers included
}

type blockKind uint8

const (
	kindRequest blockKind = iota + 1
	kindResponse
	kindTrailers
)

// span is a byte range of the block.
type span struct{ off, n int32 }

type blockField struct {
	name, value span
	deleted     bool
}

// Pseudo-header slots, in Range order.
const (
	psMethod = iota
	psScheme
	psAuthority
	psPath
	psStatus
	numPseudo
)

var pseudoNames = [numPseudo]string{protocol.Method, protocol.Scheme, protocol.Authority, protocol.Path, protocol.Status}

var _ protocol.Headers = (*blockHeaders)(nil)

var blockHeadersPool = sync.Pool{New: func() any { return new(blockHeaders) }}

// spanOf locates s inside base[lo:] (s must be a subslice of base, or empty).
func spanOf(base []byte, lo int, s []byte) span {
	if len(s) == 0 {
		return span{}
	}
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(s))) - uintptr(unsafe.Pointer(unsafe.SliceData(base))))
	return span{int32(off - lo), int32(len(s))}
}

// newBlock returns pooled headers holding a copy of raw.
func newBlock(kind blockKind, raw []byte) *blockHeaders {
	h := blockHeadersPool.Get().(*blockHeaders)
	h.kind = kind
	if len(raw) > 0 {
		h.block = mcache.Malloc(len(raw))
		copy(h.block, raw)
	}
	return h
}

func (h *blockHeaders) setPseudo(i int, s span) {
	h.pseudo[i] = s
	h.has |= 1 << i
}

// addFields records hs, subslices of base, relative to the block copied from base[lo:].
// Fields named skip (lower case, may be empty) are recorded as deleted.
func (h *blockHeaders) addFields(base []byte, lo int, hs Headers, skip string) {
	for i := range hs {
		h.fields = append(h.fields, blockField{
			name:    spanOf(base, lo, hs[i].Name),
			value:   spanOf(base, lo, hs[i].Value),
			deleted: skip != "" && equalFold(hs[i].Name, skip),
		})
	}
}

// newRequestHeaders copies the request head raw (what Parse consumed) and indexes r, which
// was parsed from raw.
func newRequestHeaders(raw []byte, r *RequestHead) *blockHeaders {
	h := newBlock(kindRequest, raw)
	h.setPseudo(psMethod, spanOf(raw, 0, r.Method))
	h.scheme = "http"
	if r.Form == FormAbsolute && len(r.Target) > 6 && equalFold(r.Target[:6], "https:") {
		h.scheme = "https"
	}
	h.setPseudo(psScheme, span{})
	if r.Authority != nil {
		h.setPseudo(psAuthority, spanOf(raw, 0, r.Authority))
	}
	switch r.Form {
	case FormOrigin:
		h.setPseudo(psPath, spanOf(raw, 0, r.Path))
	case FormAsterisk:
		h.setPseudo(psPath, spanOf(raw, 0, r.Target))
	case FormAbsolute:
		switch {
		case len(r.Path) == 0:
			h.ov = append(h.ov, protocol.Field{Name: protocol.Path, Value: "/"})
		case r.Path[0] == '?':
			h.ov = append(h.ov, protocol.Field{Name: protocol.Path, Value: "/" + string(r.Path)})
		default:
			h.setPseudo(psPath, spanOf(raw, 0, r.Path))
		}
	}
	h.addFields(raw, 0, r.Headers, "host")
	return h
}

// newResponseHeaders copies the response head raw and indexes r, parsed from raw.
func newResponseHeaders(raw []byte, r *ResponseHead) *blockHeaders {
	h := newBlock(kindResponse, raw)
	h.setPseudo(psStatus, span{9, 3}) // "HTTP/1.x SP" is 9 bytes
	h.addFields(raw, 0, r.Headers, "")
	return h
}

// newTrailerHeaders copies the trailer section base[lo:hi] and indexes ts, subslices of it.
func newTrailerHeaders(base []byte, lo, hi int, ts Headers) *blockHeaders {
	h := newBlock(kindTrailers, base[lo:hi])
	h.addFields(base, lo, ts, "")
	return h
}

func (h *blockHeaders) str(s span) string {
	if s.n == 0 {
		return ""
	}
	return unsafe.String(&h.block[s.off], int(s.n))
}

// canonical maps a name to the one stored: "host" is ":authority" on requests.
func (h *blockHeaders) canonical(name string) string {
	if h.kind == kindRequest && len(name) == 4 && strings.EqualFold(name, "host") {
		return protocol.Authority
	}
	return name
}

func pseudoIndex(name string) int {
	for i, n := range pseudoNames {
		if n == name {
			return i
		}
	}
	for i, n := range pseudoNames {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

func (h *blockHeaders) pseudoValue(i int) string {
	if i == psScheme {
		return h.scheme
	}
	return h.str(h.pseudo[i])
}

// nameIs compares a block field's name with name, ASCII case-insensitively.
func (h *blockHeaders) nameIs(f *blockField, name string) bool {
	if int(f.name.n) != len(name) {
		return false
	}
	b := h.block[f.name.off : f.name.off+f.name.n]
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(name[i]) {
			return false
		}
	}
	return true
}

// Get implements protocol.Headers.
func (h *blockHeaders) Get(name string) (string, bool) {
	name = h.canonical(name)
	if len(name) > 0 && name[0] == ':' {
		if i := pseudoIndex(name); i >= 0 && h.has&(1<<i) != 0 {
			return h.pseudoValue(i), true
		}
		return h.getOverlay(name)
	}
	for i := range h.fields {
		f := &h.fields[i]
		if !f.deleted && h.nameIs(f, name) {
			return h.str(f.value), true
		}
	}
	return h.getOverlay(name)
}

func (h *blockHeaders) getOverlay(name string) (string, bool) {
	for _, f := range h.ov {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Range implements protocol.Headers.
func (h *blockHeaders) Range(fn func(name, value string) bool) {
	for i := 0; i < numPseudo; i++ {
		if h.has&(1<<i) != 0 && !fn(pseudoNames[i], h.pseudoValue(i)) {
			return
		}
	}
	for _, f := range h.ov {
		if strings.HasPrefix(f.Name, ":") && !fn(f.Name, f.Value) {
			return
		}
	}
	for i := range h.fields {
		f := &h.fields[i]
		if !f.deleted && !fn(h.str(f.name), h.str(f.value)) {
			return
		}
	}
	for _, f := range h.ov {
		if !strings.HasPrefix(f.Name, ":") && !fn(f.Name, f.Value) {
			return
		}
	}
}

// Set implements protocol.Headers.
func (h *blockHeaders) Set(name, value string) {
	name = h.canonical(name)
	h.Del(name)
	h.ov = append(h.ov, protocol.Field{Name: name, Value: value})
}

// Add implements protocol.Headers.
func (h *blockHeaders) Add(name, value string) {
	h.ov = append(h.ov, protocol.Field{Name: h.canonical(name), Value: value})
}

// Del implements protocol.Headers.
func (h *blockHeaders) Del(name string) {
	name = h.canonical(name)
	if len(name) > 0 && name[0] == ':' {
		if i := pseudoIndex(name); i >= 0 {
			h.has &^= 1 << i
		}
	} else {
		for i := range h.fields {
			if f := &h.fields[i]; !f.deleted && h.nameIs(f, name) {
				f.deleted = true
			}
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

// Release implements protocol.Headers: the block goes back to mcache and h to its pool.
func (h *blockHeaders) Release() {
	if h.block != nil {
		mcache.Free(h.block)
	}
	clear(h.ov)
	*h = blockHeaders{fields: h.fields[:0], ov: h.ov[:0]}
	blockHeadersPool.Put(h)
}
