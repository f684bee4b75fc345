package protocol

import "strings"

// Field is one header field.
type Field struct {
	Name, Value string
}

// HeaderList is a plain, slice-backed Headers for heads Strait produces itself (local
// replies, direct responses) and for tests. Names compare case-insensitively. Its Release
// only clears it.
type HeaderList struct {
	Fields []Field
}

var _ Headers = (*HeaderList)(nil)

// NewHeaderList returns a list holding the given name, value pairs.
func NewHeaderList(pairs ...string) *HeaderList {
	h := &HeaderList{Fields: make([]Field, 0, len(pairs)/2+4)}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Fields = append(h.Fields, Field{pairs[i], pairs[i+1]})
	}
	return h
}

// Get implements Headers.
func (h *HeaderList) Get(name string) (string, bool) {
	for _, f := range h.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Range implements Headers: pseudo-headers first, then the rest in order.
func (h *HeaderList) Range(fn func(name, value string) bool) {
	for pass := 0; pass < 2; pass++ {
		for _, f := range h.Fields {
			pseudo := strings.HasPrefix(f.Name, ":")
			if pseudo == (pass == 0) && !fn(f.Name, f.Value) {
				return
			}
		}
	}
}

// Set implements Headers.
func (h *HeaderList) Set(name, value string) {
	h.Del(name)
	h.Fields = append(h.Fields, Field{name, value})
}

// Add implements Headers.
func (h *HeaderList) Add(name, value string) { h.Fields = append(h.Fields, Field{name, value}) }

// Del implements Headers.
func (h *HeaderList) Del(name string) {
	out := h.Fields[:0]
	for _, f := range h.Fields {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	clear(h.Fields[len(out):])
	h.Fields = out
}

// Release implements Headers.
func (h *HeaderList) Release() { h.Fields = h.Fields[:0] }
