package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestHeaderGetAndRange(t *testing.T) {
	b := AppendHeader(nil, "service", "com.Echo:1.0")
	b = AppendHeader(b, "", "empty-key")
	b = AppendHeader(b, "empty-value", "")
	b = AppendHeader(b, []byte("bytes"), []byte{0, 1, 2})
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ k, v string }{{"service", "com.Echo:1.0"}, {"", "empty-key"}, {"empty-value", ""}, {"bytes", "\x00\x01\x02"}} {
		v, ok := h.Get(c.k)
		if !ok || string(v) != c.v {
			t.Errorf("Get(%q) = %q, %v", c.k, v, ok)
		}
	}
	if v, ok := h.Get("empty-value"); v == nil || !ok {
		t.Error("empty value must be non-nil (nil means null)")
	}
	if _, ok := h.Get("missing"); ok {
		t.Error("Get(missing) found something")
	}
	if _, ok := h.Get("servic"); ok {
		t.Error("prefix matched")
	}
	var keys []string
	h.Range(func(k, v []byte) bool { keys = append(keys, string(k)); return true })
	if len(keys) != 4 || keys[0] != "service" || keys[3] != "bytes" {
		t.Fatalf("Range keys %q", keys)
	}
	n := 0
	h.Range(func(k, v []byte) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Range did not stop: %d calls", n)
	}
}

func TestHeaderEmpty(t *testing.T) {
	for _, b := range [][]byte{nil, {}} {
		h, err := ParseHeader(b)
		if err != nil || h.Len() != 0 {
			t.Fatalf("ParseHeader(%v) = %v, %v", b, h, err)
		}
		if _, ok := h.Get(""); ok {
			t.Fatal("empty header has a key")
		}
		h.Range(func(k, v []byte) bool { t.Fatal("Range on empty header called fn"); return false })
	}
	var zero Header
	if _, ok := zero.Get("x"); ok || zero.Len() != 0 || zero.Bytes() != nil {
		t.Fatal("zero Header is not empty")
	}
}

func TestHeaderDuplicateLastWins(t *testing.T) {
	b := AppendHeader(nil, "target", "first")
	b = AppendHeader(b, "other", "x")
	b = AppendHeader(b, "target", "second")
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := h.Get("target"); string(v) != "second" {
		t.Fatalf("Get(target) = %q; sofa-rpc's HashMap keeps the last value", v)
	}
}

func TestHeaderNullValue(t *testing.T) {
	// sofa-bolt-node writes -1 for a null value; sofa-rpc's readString reads it as null.
	b := cat(be32(1), []byte("a"), be32(-1), be32(1), []byte("b"), be32(1), []byte("c"))
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := h.Get("a"); !ok || v != nil {
		t.Fatalf("Get(a) = %v, %v; want nil, true", v, ok)
	}
	if v, ok := h.Get("b"); !ok || string(v) != "c" {
		t.Fatalf("Get(b) = %q, %v", v, ok)
	}
}

func TestHeaderRejectsMalformed(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
	}{
		{"1 byte", []byte{0}},
		{"3 bytes", []byte{0, 0, 0}},
		{"key without value length", cat(be32(1), []byte("k"))},
		{"value length cut short", cat(be32(1), []byte("k"), []byte{0, 0})},
		{"key past end", cat(be32(5), []byte("abc"))},
		{"value past end", cat(be32(1), []byte("k"), be32(2), []byte("v"))},
		{"negative key", cat(be32(-1), be32(0))},
		{"key -2", cat(be32(-2), be32(0))},
		{"value -2", cat(be32(1), []byte("k"), be32(-2))},
		{"key min int32", cat(be32(-1<<31), be32(0))},
		{"value min int32", cat(be32(0), be32(-1<<31))},
		{"key max int32", cat(be32(1<<31-1), be32(0))},
		{"value max int32", cat(be32(0), be32(1<<31-1), []byte("xx"))},
		{"trailing garbage", cat(be32(0), be32(0), []byte{1})},
		{"good pair then bad", cat(be32(1), []byte("k"), be32(1), []byte("v"), be32(0), be32(9))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := ParseHeader(c.b)
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("ParseHeader(%x) = %v, want ErrBadHeader", c.b, err)
			}
			if h.Len() != 0 {
				t.Fatal("bad header returned bytes")
			}
		})
	}
}
