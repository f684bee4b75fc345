package bolt

import (
	"encoding/binary"
	"fmt"
)

// Header is a validated Bolt header map block: repeated (keyLen int32 BE, key, valueLen
// int32 BE, value), the format of sofa-rpc's SimpleMapSerializer. A value length of -1 is a
// null value (sofa-rpc's old writeString and sofa-bolt-node write it); every other negative
// length is rejected.
//
// The zero Header is an empty map. A Header aliases the bytes it was parsed from and never
// copies them.
type Header struct {
	b []byte
}

// ParseHeader validates b as a header map block and returns it as a Header. It fails with an
// error wrapping ErrBadHeader when a length prefix is cut short, negative (other than a -1
// value), or points past the end of the block. It does not allocate on success.
func ParseHeader(b []byte) (Header, error) {
	i := 0
	for i < len(b) {
		klen, next, err := readLen(b, i, false)
		if err != nil {
			return Header{}, fmt.Errorf("%w: key at offset %d: %s", ErrBadHeader, i, err)
		}
		i = next + klen
		vlen, next, err := readLen(b, i, true)
		if err != nil {
			return Header{}, fmt.Errorf("%w: value at offset %d: %s", ErrBadHeader, i, err)
		}
		i = next
		if vlen > 0 {
			i += vlen
		}
	}
	return Header{b: b}, nil
}

// headerLenError is a constant description of a bad length prefix; the caller wraps it.
type headerLenError string

func (e headerLenError) Error() string { return string(e) }

const (
	errShortPrefix = headerLenError("length prefix cut short")
	errNegative    = headerLenError("negative length")
	errPastEnd     = headerLenError("length past the end of the block")
)

// readLen reads the length prefix at b[i:] and checks that the bytes it announces are inside
// b. It returns the length (-1 for a null value when nullOK) and the offset after the prefix.
// The comparison is against the bytes left, so no sum can overflow.
func readLen(b []byte, i int, nullOK bool) (n, next int, err error) {
	if len(b)-i < 4 {
		return 0, 0, errShortPrefix
	}
	n = int(int32(binary.BigEndian.Uint32(b[i:])))
	next = i + 4
	if n < 0 {
		if nullOK && n == -1 {
			return -1, next, nil
		}
		return 0, 0, errNegative
	}
	if n > len(b)-next {
		return 0, 0, errPastEnd
	}
	return n, next, nil
}

// Bytes returns the raw block, for forwarding unchanged.
func (h Header) Bytes() []byte { return h.b }

// Len is the size of the block in bytes.
func (h Header) Len() int { return len(h.b) }

// Range calls fn for each pair in wire order until fn returns false. key and value alias the
// block; value is nil for a null value and empty (non-nil) for an empty one.
func (h Header) Range(fn func(key, value []byte) bool) {
	b := h.b
	for i := 0; i < len(b); {
		k, v, next := pairAt(b, i)
		if !fn(k, v) {
			return
		}
		i = next
	}
}

// Get returns the value of the last pair whose key is key. The last one wins because that is
// what sofa-rpc (Java HashMap.put) and sofa-bolt-node do with duplicates, so a proxy routing
// on Get sees what the server will see. value is nil for a null value.
func (h Header) Get(key string) (value []byte, ok bool) {
	b := h.b
	for i := 0; i < len(b); {
		k, v, next := pairAt(b, i)
		if string(k) == key {
			value, ok = v, true
		}
		i = next
	}
	return value, ok
}

// pairAt decodes the pair at offset i of a block ParseHeader accepted.
func pairAt(b []byte, i int) (key, value []byte, next int) {
	klen := int(binary.BigEndian.Uint32(b[i:]))
	i += 4
	key = b[i : i+klen : i+klen]
	i += klen
	vlen := int(int32(binary.BigEndian.Uint32(b[i:])))
	i += 4
	if vlen < 0 {
		return key, nil, i
	}
	return key, b[i : i+vlen : i+vlen], i + vlen
}

// AppendHeader appends one key/value pair in header map format to dst and returns the
// extended slice. It does not allocate when dst has room. A pair whose key or value is longer
// than MaxWireHeader cannot fit a frame; AppendHead reports the oversized block.
func AppendHeader[S ~string | ~[]byte](dst []byte, key, value S) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(value)))
	return append(dst, value...)
}
